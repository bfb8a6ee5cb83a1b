"""Lab ``keepalive``: an idle connection, and the probes TCP keepalive sends to see the peer is there."""

from __future__ import annotations

import socket

from netlens.labs.checks import gaps_ms, refs
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch

IDLE_S = 1
INTERVAL_S = 1


def connect(ctx: LabContext) -> None:
    options = {}
    if ctx.variant != "no-keepalive":
        # Seconds instead of the default two hours: the per-socket options beat the sysctls.
        options = {(socket.SOL_SOCKET, socket.SO_KEEPALIVE): 1,
                   (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE): IDLE_S,
                   (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL): INTERVAL_S,
                   (socket.IPPROTO_TCP, socket.TCP_KEEPCNT): 5}
    sock = ctx.connect(options=options)
    ctx.keep("client_port", sock.getsockname()[1])
    sock.sendall(b"are you there?")
    sock.recv(64)
    ctx.mark("idle")


def idle(ctx: LabContext) -> None:
    ctx.wait(IDLE_S + 2.3 * INTERVAL_S)
    ctx.kernel("idled")


def _probes(evidence: Evidence) -> Observation:
    port = evidence.facts.get("client_port")
    probes = evidence.all(lambda p: p.sport == port and "keep-alive" in p.analysis)
    answers = evidence.all(lambda p: p.dport == port and "keep-alive-ack" in p.analysis)
    return Observation(len(probes) >= 2 and len(answers) >= len(probes),
                       f"{len(probes)} keep-alive probes {gaps_ms(probes)} ms apart, {len(answers)} answered",
                       refs(probes))


def _timer(evidence: Evidence) -> Observation:
    port = evidence.facts.get("client_port")
    for ts, sock in evidence.sockets(lambda s: s.local_port == port and s.timer is not None
                                     and s.timer.name == "keepalive"):
        assert sock.timer is not None
        return Observation(True, f"keepalive timer, {sock.timer.expires_ms} ms to the next probe",
                           f"kernel snapshot at {ts:.3f}")
    return Observation(False, "the client's socket never showed a keepalive timer")


def _counter(evidence: Evidence) -> Observation:
    count = evidence.counter("TcpExtTCPKeepAlive")
    return Observation(count >= 2, f"TcpExtTCPKeepAlive rose by {count}", "counters")


LAB = Lab(
    name="keepalive",
    title="Keepalive probes on an idle connection",
    lesson="An idle TCP connection sends nothing, so a vanished peer goes unnoticed. SO_KEEPALIVE makes the "
           "kernel send an empty probe (one byte behind) after an idle time, and again at an interval; the "
           "peer's ACK proves it is alive.",
    steps=(
        Step("Connect with keepalive", f"The client turns on SO_KEEPALIVE with {IDLE_S} s idle and "
             f"{INTERVAL_S} s interval (the defaults are 2 hours and 75 s), then talks once.",
             Watch("connections", "the client's keepalive timer", {"port": "client"}), connect),
        Step("Stay idle", "Nobody sends anything. After the idle time the client's kernel probes, the "
             "server's kernel answers, and the timer starts again.",
             Watch("packets", "the Keep-Alive probes and their ACKs", {"port": "client"}), idle),
    ),
    checks=(
        Check("probes", "≥ 2 keep-alive probes from the client, each answered", _probes),
        Check("timer", "sock_diag shows the client's keepalive timer", _timer),
        Check("counter", "TcpExtTCPKeepAlive counts the probes", _counter),
    ),
    control="no-keepalive",
    variants={"no-keepalive": "SO_KEEPALIVE stays off: the idle connection stays silent"},
    server_mode="echo",
    settle=0.05,
)
