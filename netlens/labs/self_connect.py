"""Lab ``self-connect``: a socket connecting to its own port opens simultaneously, and closes through CLOSING."""

from __future__ import annotations

from netlens.labs.checks import ref, trace_missing
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch

WORDS = b"hello, me"


def connect_to_self(ctx: LabContext) -> None:
    port = ctx.free_port()
    ctx.keep("port", port)
    sock = ctx.tcp_socket()
    if ctx.variant != "other-port":
        # The key step: the source port is the destination port.
        sock.bind((ctx.host, port))
    sock.settimeout(2.0)
    ctx.keep("sock", sock)
    sock.connect((ctx.host, port))
    ctx.kernel("connected")


def talk(ctx: LabContext) -> None:
    sock = ctx.facts["sock"]
    sock.sendall(WORDS)
    ctx.keep("read", sock.recv(64))


def close(ctx: LabContext) -> None:
    ctx.facts["sock"].close()
    ctx.wait(0.1)
    ctx.kernel("closed")


def _simultaneous(evidence: Evidence) -> Observation:
    port = evidence.facts.get("port")
    own = [p for p in evidence.tcp() if p.sport == port and p.dport == port]
    syn = next((p for p in own if p.flags == "S"), None)
    synack = next((p for p in own if p.flags == "SA"), None)
    if syn is None or synack is None:
        return Observation(False, f"{len(own)} packets from port {port} to itself, no SYN and SYN-ACK pair")
    return Observation(True, f"SYN and SYN-ACK both from :{port} to :{port}", ref(syn))


def _echo(evidence: Evidence) -> Observation:
    got = evidence.facts.get("read")
    return Observation(got == WORDS, f"the socket read back {got!r}")


def _kernel_view(evidence: Evidence) -> Observation:
    port = evidence.facts.get("port")
    for ts, sock in evidence.sockets(lambda s: s.local_port == port and s.remote_port == port
                                     and s.state == "ESTABLISHED"):
        return Observation(True, f"one socket {sock.local_addr}:{port} ↔ {sock.remote_addr}:{port} ESTABLISHED",
                           f"kernel snapshot at {ts:.3f}")
    return Observation(False, "no socket connected to itself in sock_diag")


def _states(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no state changes seen by the kernel trace")
    port = evidence.facts.get("port")
    changes = [(no, e) for no, e in evidence.trace_events("state") if port in (e.sport, e.dport)]
    seen = [f"{e.old}→{e.new}" for _, e in changes]
    wanted = ["SYN_SENT→SYN_RECV", "SYN_RECV→ESTABLISHED", "FIN_WAIT1→CLOSING"]
    return Observation(all(w in seen for w in wanted), ", ".join(seen) or "no state change",
                       f"kernel event #{changes[0][0]}" if changes else None)


LAB = Lab(
    name="self-connect",
    title="A socket that connects to itself",
    lesson="Bind a socket to port P and connect it to P: its SYN arrives at itself, so both 'ends' are in "
           "SYN_SENT and see a SYN: that is a simultaneous open (SYN_SENT → SYN_RECV → ESTABLISHED). It is "
           "connected to itself, and its close goes FIN_WAIT1 → CLOSING.",
    steps=(
        Step("Connect to yourself", "The socket binds to a free port and connects to that same port.",
             Watch("packets", "a SYN and a SYN-ACK with the same source and destination port", {"flags": "S"}),
             connect_to_self),
        Step("Talk to yourself", "Whatever it sends, it reads back.",
             Watch("connections", "one row whose local and remote ends are equal", {"state": "ESTABLISHED"}), talk),
        Step("Close", "Its own FIN arrives before the ACK of it: FIN_WAIT1 → CLOSING, then TIME_WAIT.",
             Watch("events", "the kernel's FIN_WAIT1 → CLOSING", {"state": "CLOSING"}), close),
    ),
    checks=(
        Check("simultaneous open", "SYN and SYN-ACK from the port to itself", _simultaneous),
        Check("talks to itself", f"the socket reads back {WORDS!r}", _echo),
        Check("kernel view", "sock_diag shows one socket connected to its own address", _kernel_view),
        Check("state changes", "SYN_SENT→SYN_RECV→ESTABLISHED and FIN_WAIT1→CLOSING in the kernel trace", _states),
    ),
    control="other-port",
    variants={"other-port": "the socket keeps an ephemeral source port: nothing listens, connect() is refused"},
    server_mode=None,
    needs=frozenset({"trace"}),
)
