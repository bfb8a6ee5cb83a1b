"""Lab ``framing``: TCP carries a byte stream, not messages; sends and recvs do not line up."""

from __future__ import annotations

import socket

from netlens.labs.checks import refs
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.server import PauseReading, ResumeReading

FIRST, SECOND = b"first,", b"second"
BIG = 300_000


def two_sends(ctx: LabContext) -> None:
    sock = ctx.connect(options={(socket.IPPROTO_TCP, socket.TCP_NODELAY): 1})
    ctx.keep("client", sock)
    ctx.keep("client_port", sock.getsockname()[1])
    conn = ctx.server_conn(sock)
    # The server looks away while both sends arrive: they wait together in its receive queue.
    ctx.control(PauseReading(conn))
    ctx.mark("two-sends")
    if ctx.variant == "one-send":
        sock.sendall(FIRST + SECOND)
    else:
        sock.sendall(FIRST)
        ctx.wait(0.02)
        sock.sendall(SECOND)
    ctx.wait(0.05)
    ctx.control(ResumeReading(conn))
    sock.recv(len(FIRST + SECOND), socket.MSG_WAITALL)
    ctx.wait(0.05)


def one_big_send(ctx: LabContext) -> None:
    sock: socket.socket = ctx.facts["client"]
    ctx.mark("big-send")
    received = bytearray()

    def read_echo() -> None:
        while len(received) < BIG:
            chunk = sock.recv(65536)
            if not chunk:
                return
            received.extend(chunk)

    reader = ctx.background("echo-reader", read_echo)
    sock.sendall(b"z" * BIG)
    reader.join(5.0)
    ctx.keep("echoed", len(received))
    ctx.mark("big-done")


def _two_segments(evidence: Evidence) -> Observation:
    port = evidence.facts.get("client_port")
    data = [p for p in evidence.between("two-sends", "big-send") if p.sport == port and (p.len or 0) > 0]
    sizes = [p.len for p in data]
    return Observation(sizes == [len(FIRST), len(SECOND)], f"segments of {sizes} bytes", refs(data))


def _one_recv(evidence: Evidence) -> Observation:
    if not evidence.reached("big-send"):
        return Observation(False, "the lab did not get that far")
    start, end = evidence.mark("two-sends"), evidence.mark("big-send")
    recvs = [(no, e) for no, e in evidence.server_events("recv") if start <= e.ts < end]
    sizes = [getattr(e, "nbytes", 0) for _, e in recvs]
    return Observation(sizes == [len(FIRST + SECOND)], f"server recv() calls returned {sizes} bytes",
                       f"server event #{recvs[0][0]}" if recvs else None)


def _many_recvs(evidence: Evidence) -> Observation:
    if not evidence.reached("big-done"):
        return Observation(False, "the big send did not finish")
    start, end = evidence.mark("big-send"), evidence.mark("big-done")
    recvs = [(no, e) for no, e in evidence.server_events("recv") if start <= e.ts < end]
    sizes = [getattr(e, "nbytes", 0) for _, e in recvs]
    ok = len(recvs) >= 2 and sum(sizes) == BIG
    largest = max(sizes, default=0)
    return Observation(ok, f"one send of {BIG} bytes, {len(recvs)} server recv() calls, largest {largest}",
                       f"server event #{recvs[0][0]}" if recvs else None)


LAB = Lab(
    name="framing",
    title="A byte stream, not messages",
    lesson="TCP delivers bytes in order, not the pieces they were written in: two sends can arrive as one "
           "recv, and one send as many. That is why the search protocol starts with a length header.",
    steps=(
        Step("Two sends, one recv", "The client sends 'first,' and 'second' as two segments while the "
             "server is not reading. When it reads again, one recv() returns both: the boundary is gone.",
             Watch("events", "the server's single recv of 12 bytes", {"event": "recv"}), two_sends),
        Step("One send, many recvs", f"The client sends {BIG} bytes in one call. They travel as several "
             "segments and the server's recv() returns them in pieces.",
             Watch("events", "the many recv rows for one send", {"event": "recv"}), one_big_send),
    ),
    checks=(
        Check("two segments", "the two sends travel as two segments (6 and 6 bytes)", _two_segments),
        Check("one recv", "the server reads both in one recv() of 12 bytes", _one_recv),
        Check("many recvs", f"one send of {BIG} bytes needs several server recv() calls", _many_recvs),
    ),
    control="one-send",
    variants={"one-send": "the client writes both words in one send, so there is one segment"},
    server_mode="echo",
)
