"""Lab ``abort``: SO_LINGER 0, and close() with unread data, both end a connection with RST."""

from __future__ import annotations

import socket
import struct

from netlens.labs.checks import has_flags, ref, trace_missing
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.server import CloseConnection, PauseReading

UNREAD = b"x" * 1000


def unread(ctx: LabContext) -> None:
    sock = ctx.connect()
    ctx.keep("port_a", sock.getsockname()[1])
    conn = ctx.server_conn(sock)
    if ctx.variant != "graceful":
        ctx.control(PauseReading(conn))
    sock.sendall(UNREAD)
    ctx.wait(0.1)
    if ctx.variant == "graceful":
        sock.recv(len(UNREAD), socket.MSG_WAITALL)
    ctx.mark("close-unread")
    ctx.control(CloseConnection(conn))
    try:
        ctx.keep("read_a", repr(sock.recv(65536)))
    except OSError as exc:
        ctx.keep("read_a", type(exc).__name__)


def linger(ctx: LabContext) -> None:
    sock = ctx.connect()
    ctx.keep("port_b", sock.getsockname()[1])
    ctx.server_conn(sock)
    if ctx.variant != "graceful":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ctx.mark("close-linger")
    sock.close()
    ctx.wait(0.1)


def _rst_unread(evidence: Evidence) -> Observation:
    port = evidence.facts.get("port_a")
    rst = evidence.find(lambda p: has_flags(p, "R") and p.dport == port, evidence.between("close-unread"))
    seen = evidence.facts.get("read_a")
    ok = rst is not None and seen == "ConnectionResetError"
    return Observation(ok, f"{'RST' if rst else 'no RST'} from the server; the client's recv() gave {seen}",
                       ref(rst) if rst else None)


def _rst_linger(evidence: Evidence) -> Observation:
    port = evidence.facts.get("port_b")
    rst = evidence.find(lambda p: has_flags(p, "R") and p.sport == port, evidence.between("close-linger"))
    fin = evidence.find(lambda p: has_flags(p, "F") and p.sport == port, evidence.between("close-linger"))
    if rst is None:
        return Observation(False, f"the client closed with {'a FIN' if fin else 'nothing'}", ref(fin) if fin else None)
    return Observation(fin is None, f"the client closed with {rst.flags}{' after a FIN' if fin else ', no FIN'}",
                       ref(rst))


def _reasons(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no resets seen by the kernel trace")
    port_a, port_b = evidence.facts.get("port_a"), evidence.facts.get("port_b")
    sent = evidence.trace_events("reset-sent")
    unread = next(((no, e) for no, e in sent if e.dport == port_a), None)
    linger = next(((no, e) for no, e in sent if e.sport == port_b), None)
    ok = unread is not None and unread[1].reason == "TCP_ABORT_ON_CLOSE" and linger is not None
    seen = (f"server's reset (unread data): {unread[1].reason if unread else 'none'}; "
            f"client's reset (SO_LINGER 0): {linger[1].reason if linger else 'none'}")
    return Observation(ok, seen, f"kernel event #{unread[0]}" if unread else None)


LAB = Lab(
    name="abort",
    title="Aborting a connection: RST instead of FIN",
    lesson="close() normally sends FIN and lets queued data go first. Two things turn it into an RST that "
           "throws data away: closing while received data is still unread, and SO_LINGER with a zero timeout.",
    steps=(
        Step("Close with unread data", "The client sends 1000 bytes; the server has stopped reading, then "
             "closes. Its kernel cannot pretend the bytes were delivered, so it sends RST, and the client's "
             "next recv() fails with ECONNRESET.",
             Watch("packets", "the RST from the server's port", {"flags": "R"}), unread),
        Step("SO_LINGER 0", "A second client sets SO_LINGER to (on, 0 s) and closes: no FIN, an RST at once, "
             "and nothing left in TIME_WAIT.",
             Watch("packets", "the RST from the client's port", {"flags": "R"}), linger),
    ),
    checks=(
        Check("close with unread data", "RST from the server; the client's recv() raises ConnectionResetError",
              _rst_unread),
        Check("SO_LINGER 0", "the client's close() sends RST and no FIN", _rst_linger),
        Check("reset reasons", "the kernel trace shows the server's reset with reason TCP_ABORT_ON_CLOSE, "
              "and the client's reset", _reasons),
    ),
    control="graceful",
    variants={"graceful": "the server reads everything and the client closes normally: FINs, no RST"},
    server_mode="echo",
    needs=frozenset({"trace"}),
)
