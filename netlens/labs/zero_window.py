"""Lab ``zero-window``: a reader that stops; its window closes and the sender probes, backing off."""

from __future__ import annotations

import itertools
import socket

from netlens.capture import PacketSummary
from netlens.labs.checks import gaps_ms, ref, refs
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.server import PauseReading

PAYLOAD = 4 << 20
PROBE_WAIT = 2.4


def connect(ctx: LabContext) -> None:
    sock = ctx.connect()
    ctx.keep("client", sock)
    ctx.keep("client_port", sock.getsockname()[1])
    conn = ctx.server_conn(sock)
    ctx.keep("conn", conn)

    def drain_echo() -> None:
        try:
            while sock.recv(65536):
                pass
        except OSError:
            return

    ctx.background("echo-drain", drain_echo)


def stop_reading(ctx: LabContext) -> None:
    if ctx.variant != "keeps-reading":
        ctx.control(PauseReading(ctx.facts["conn"]))


def flood(ctx: LabContext) -> None:
    sock: socket.socket = ctx.facts["client"]
    sock.setblocking(False)
    sent = 0
    chunk = b"w" * 16384
    while sent < PAYLOAD:
        try:
            sent += sock.send(chunk[: PAYLOAD - sent])
        except BlockingIOError:
            # The send buffer is full: the window stays closed, so stop here.
            break
    ctx.keep("sent", sent)
    ctx.mark("flooded")


def wait_probes(ctx: LabContext) -> None:
    ctx.wait(PROBE_WAIT)
    ctx.kernel("probing")


def _zero(evidence: Evidence) -> Observation:
    server = evidence.facts.get("server_port")
    zero = evidence.find(lambda p: p.sport == server and p.win == 0)
    if zero is None:
        smallest = min((p.win for p in evidence.tcp() if p.sport == server and p.win is not None), default=None)
        return Observation(False, f"the server's smallest window was {smallest}")
    return Observation(True, f"window 0 from the server at +{zero.rel_time:.3f} s", ref(zero))


def _probes(evidence: Evidence) -> Observation:
    client, server = evidence.facts.get("client_port"), evidence.facts.get("server_port")
    zero = evidence.find(lambda p: p.sport == server and p.win == 0)
    if zero is None:
        return Observation(False, "no zero window, so no probes")
    probes: list[PacketSummary] = evidence.all(
        lambda p: p.sport == client and p.no > zero.no and (p.len or 0) <= 1
        and any(m in p.analysis for m in ("zero-window-probe", "keep-alive")))
    gaps = gaps_ms(probes)
    growing = len(gaps) >= 2 and all(b > a * 1.5 for a, b in itertools.pairwise(gaps))
    return Observation(len(probes) >= 3 and growing,
                       f"{len(probes)} probes, gaps {gaps} ms", refs(probes))


def _queues(evidence: Evidence) -> Observation:
    client, server = evidence.facts.get("client_port"), evidence.facts.get("server_port")
    for ts, sock in evidence.sockets(lambda s: s.local_port == client and s.timer is not None
                                     and s.timer.name == "persist"):
        peer = [s for t, s in evidence.sockets(lambda s: s.local_port == server and s.remote_port == client)
                if t == ts]
        recv_q = peer[0].recv_q if peer else None
        return Observation(bool(recv_q), f"client persist timer, {sock.send_q} bytes in its Send-Q; "
                           f"server Recv-Q {recv_q}", f"kernel snapshot at {ts:.3f}")
    return Observation(False, "the client's socket never had a persist timer")


LAB = Lab(
    name="zero-window",
    title="Zero window and persist probes",
    lesson="A receiver that stops reading fills its receive buffer; its advertised window falls to 0 and "
           "the sender must stop. The sender then probes the window with tiny segments at growing "
           "intervals (the persist timer backs off) until the receiver reads again.",
    steps=(
        Step("Connect", "The client connects to the echo server.",
             Watch("connections", "the new connection", {"state": "ESTABLISHED"}), connect),
        Step("The server stops reading", "The server pauses reading this connection: bytes now pile up "
             "in its kernel receive queue (Recv-Q).",
             Watch("connections", "the server's Recv-Q", {"port": "server"}), stop_reading),
        Step("The client keeps sending", f"The client sends up to {PAYLOAD >> 20} MiB. The server's window "
             "shrinks to 0; the client's send buffer fills and send() would block.",
             Watch("packets", "the server's segments with win=0", {"flags": "A"}), flood),
        Step("Persist probes", "Nothing is read, so the client's kernel probes the zero window: one probe, "
             "then again after twice as long, and again.",
             Watch("packets", "the client's probes and their growing gaps", {"port": "client"}), wait_probes),
    ),
    checks=(
        Check("window 0", "the server advertises a zero window", _zero),
        Check("probes back off", "≥ 3 zero-window probes with growing gaps", _probes),
        Check("queues and timer", "client persist timer while the server's Recv-Q holds the bytes", _queues),
    ),
    control="keeps-reading",
    variants={"keeps-reading": "the server never stops reading, so the window never closes"},
    server_mode="echo",
    settle=0.1,
)
