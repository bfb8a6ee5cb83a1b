"""Lab ``half-close``: shutdown(SHUT_WR) sends a FIN one way while data still flows back."""

from __future__ import annotations

import socket

from netlens.labs.checks import has_flags, ref
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.server import PauseReading, ResumeReading, SendBytes

LATE_WORDS = b"still flowing back after your FIN"


def talk(ctx: LabContext) -> None:
    sock = ctx.connect()
    ctx.keep("client_port", sock.getsockname()[1])
    ctx.keep("client", sock)
    sock.sendall(b"hello")
    sock.recv(64)
    ctx.keep("conn", ctx.server_conn(sock))


def shut(ctx: LabContext) -> None:
    sock: socket.socket = ctx.facts["client"]
    # The server stops reading, so it has not seen the FIN yet: its socket sits in CLOSE_WAIT.
    ctx.control(PauseReading(ctx.facts["conn"]))
    if ctx.variant == "full-close":
        sock.close()
    else:
        sock.shutdown(socket.SHUT_WR)
    ctx.wait(0.1)
    ctx.kernel("half-closed")


def answer(ctx: LabContext) -> None:
    ctx.control(SendBytes(ctx.facts["conn"], LATE_WORDS))
    sock: socket.socket = ctx.facts["client"]
    try:
        ctx.keep("late", sock.recv(64))
    except OSError as exc:
        ctx.keep("late", f"{type(exc).__name__}".encode())


def finish(ctx: LabContext) -> None:
    ctx.control(ResumeReading(ctx.facts["conn"]))
    ctx.wait(0.1)


def _fin(evidence: Evidence) -> Observation:
    port = evidence.facts.get("client_port")
    fin = evidence.find(lambda p: has_flags(p, "F") and p.sport == port)
    return Observation(True, f"FIN from the client :{port}", ref(fin)) if fin else \
        Observation(False, "no FIN from the client")


def _states(evidence: Evidence) -> Observation:
    snap = evidence.snapshot("half-closed")
    if snap is None:
        return Observation(False, "the lab never reached the half-closed snapshot")
    port, server = evidence.facts.get("client_port"), evidence.facts.get("server_port")
    client = next((s.state for s in snap.sockets if s.local_port == port), "gone")
    peer = next((s.state for s in snap.sockets if s.local_port == server and s.remote_port == port), "gone")
    return Observation(client == "FIN_WAIT2" and peer == "CLOSE_WAIT",
                       f"client {client}, server side {peer}", f"kernel snapshot at {snap.ts:.3f}")


def _late_data(evidence: Evidence) -> Observation:
    port = evidence.facts.get("client_port")
    fin = evidence.find(lambda p: has_flags(p, "F") and p.sport == port)
    late = evidence.find(lambda p: p.dport == port and (p.len or 0) > 0 and fin is not None and p.no > fin.no)
    got = evidence.facts.get("late", b"")
    ok = late is not None and got == LATE_WORDS
    seen = f"{late.len} bytes from the server after the FIN; the client read {got!r}" if late else \
        f"no data from the server after the client's FIN; the client read {got!r}"
    return Observation(ok, seen, ref(late) if late else None)


LAB = Lab(
    name="half-close",
    title="Half-close: FIN one way, data the other",
    lesson="shutdown(SHUT_WR) sends a FIN and closes only the sending half: the peer reads end-of-file "
           "but may keep sending, and the client keeps reading. close() would give up both directions.",
    steps=(
        Step("Talk", "The client sends hello to the echo server and reads it back.",
             Watch("packets", "the data rows both ways", {"flags": "PA"}), talk),
        Step("Shut the writing half", "The client calls shutdown(SHUT_WR): its kernel sends a FIN. The "
             "server's kernel ACKs it; the server application has not read it yet.",
             Watch("connections", "client FIN_WAIT2, server CLOSE_WAIT", {"state": "CLOSE_WAIT"}), shut),
        Step("Data still flows back", "The server sends more bytes; the half-closed client still reads them.",
             Watch("packets", "the server's data after the client's FIN", {"flags": "PA"}), answer),
        Step("Finish", "The server reads the end-of-file and closes its side too.",
             Watch("events", "the server's peer-fin and closed events", {"event": "closed"}), finish),
    ),
    checks=(
        Check("FIN", "the client's shutdown(SHUT_WR) sends a FIN", _fin),
        Check("half-closed states", "client FIN_WAIT2 while the server side is CLOSE_WAIT", _states),
        Check("data after FIN", "the server's bytes after the FIN reach the client", _late_data),
    ),
    control="full-close",
    variants={"full-close": "the client calls close() instead of shutdown(): it can no longer read"},
    server_mode="echo",
)
