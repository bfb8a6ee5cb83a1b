"""Lab ``linger``: SO_LINGER with a timeout makes close() wait for the peer, then give up with RST."""

from __future__ import annotations

import socket
import struct
import time

from netlens.labs.checks import has_flags, ref, trace_missing
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.server import PauseReading

LINGER_S = 1
PAYLOAD = 4 << 20


def fill(ctx: LabContext) -> None:
    sock = ctx.connect()
    ctx.keep("client", sock)
    ctx.keep("client_port", sock.getsockname()[1])
    ctx.control(PauseReading(ctx.server_conn(sock)))
    sock.setblocking(False)
    sent = 0
    # Until the server's window is 0 and our send buffer is full: data that can never be delivered.
    while sent < PAYLOAD:
        try:
            sent += sock.send(b"z" * 65536)
        except BlockingIOError:
            break
    sock.setblocking(True)
    ctx.wait(0.2)


def close_lingering(ctx: LabContext) -> None:
    sock: socket.socket = ctx.facts["client"]
    if ctx.variant != "no-linger":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, LINGER_S))
    ctx.mark("close")
    started = time.perf_counter()
    sock.close()
    ctx.keep("close_s", round(time.perf_counter() - started, 3))
    ctx.wait(0.1)
    ctx.kernel("closed", owners=True)


def _blocked(evidence: Evidence) -> Observation:
    took = evidence.facts.get("close_s")
    if took is None:
        return Observation(False, "close() never ran")
    return Observation(LINGER_S * 0.9 <= took <= LINGER_S + 0.5, f"close() returned after {took} s")


def _orphan(evidence: Evidence) -> Observation:
    snap = evidence.snapshot("closed")
    port = evidence.facts.get("client_port")
    sock = next((s for s in snap.sockets if s.local_port == port), None) if snap else None
    if snap is None or sock is None:
        return Observation(False, "the client's socket is gone from sock_diag after close()")
    owned = "no owner" if not sock.owners else f"owned by {len(sock.owners)} process(es)"
    return Observation(sock.state == "FIN_WAIT1" and bool(sock.send_q),
                       f"{sock.state}, {sock.send_q} bytes still in its Send-Q, {owned}",
                       f"kernel snapshot at {snap.ts:.3f}")


def _no_rst(evidence: Evidence) -> Observation:
    port = evidence.facts.get("client_port")
    rst = evidence.find(lambda p: has_flags(p, "R") and p.sport == port, evidence.between("close"))
    if not evidence.trace:
        return trace_missing(evidence, "no kernel trace to confirm")
    resets = [no for no, e in evidence.trace_events("reset-sent") if e.sport == port]
    return Observation(rst is None and not resets, "no RST on the wire, none in the kernel trace" if rst is None
                       and not resets else "the client sent an RST", ref(rst) if rst else None)


LAB = Lab(
    name="linger",
    title="SO_LINGER with a timeout",
    lesson="close() normally returns at once and the kernel delivers what is queued in the background. With "
           f"SO_LINGER set to (on, {LINGER_S} s), close() waits until the peer has acknowledged everything, or the "
           "time is up. Linux then returns and keeps trying as an orphan socket (no RST: that takes a zero "
           "linger time, see the abort lab).",
    steps=(
        Step("Fill the pipe", "The server stops reading; the client sends until the window is 0 and its own "
             "send buffer is full.", Watch("connections", "the client's Send-Q", {"port": "client"}), fill),
        Step("Close with SO_LINGER", f"close() now blocks for {LINGER_S} s: nothing can be delivered. Then it "
             "returns, and the socket stays in the kernel, owned by nobody, still holding the data.",
             Watch("connections", "the client's FIN_WAIT1 row with its Send-Q", {"state": "FIN_WAIT1"}),
             close_lingering),
    ),
    checks=(
        Check("close() blocks", f"close() returns after about {LINGER_S} s", _blocked),
        Check("orphan keeps the data", "after close() the socket lives on in FIN_WAIT1 with its Send-Q", _orphan),
        Check("no reset", "Linux does not abort when the linger time runs out: no RST", _no_rst),
    ),
    control="no-linger",
    variants={"no-linger": "no SO_LINGER: close() returns at once and the kernel keeps trying"},
    server_mode="echo",
    needs=frozenset({"trace"}),
    settle=0.05,
)
