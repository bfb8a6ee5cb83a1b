"""Lab ``rto-backoff``: a blackholed path; the retransmission timer fires at doubling intervals, cwnd 1."""

from __future__ import annotations

import itertools

from netlens.capture import PacketSummary
from netlens.labs.checks import gaps_ms, refs, trace_missing
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.labs.steps import connect_reading
from netlens.server import SendBytes

PAYLOAD = 20_000
BLACKOUT_S = 1.7


def blackhole(ctx: LabContext) -> None:
    if ctx.variant != "no-blackhole":
        ctx.impair.set_blackhole(True, toward="client")
    ctx.mark("blackhole")
    ctx.control(SendBytes(ctx.facts["conn"], b"r" * PAYLOAD))
    ctx.wait(BLACKOUT_S)
    ctx.kernel("blackholed")


def restore(ctx: LabContext) -> None:
    ctx.impair.set_blackhole(False, toward="client")
    ctx.mark("restored")
    received: list[int] = ctx.facts["received"]
    ctx.wait_for(lambda: received[0] >= PAYLOAD, timeout=2.5)
    ctx.keep("delivered", received[0])


def _retransmissions(evidence: Evidence) -> list[PacketSummary]:
    server = evidence.facts.get("server_port")
    data = [p for p in evidence.between("blackhole", "restored") if p.sport == server and (p.len or 0) > 0]
    if not data:
        return []
    first = data[0]
    return [p for p in data if p.seq == first.seq]


def _backoff(evidence: Evidence) -> Observation:
    sends = _retransmissions(evidence)
    gaps = gaps_ms(sends)
    doubling = len(gaps) >= 3 and all(1.6 <= b / a <= 2.5 for a, b in itertools.pairwise(gaps) if a > 0)
    return Observation(doubling, f"the first segment sent {len(sends)} times, gaps {gaps} ms", refs(sends))


def _cwnd(evidence: Evidence) -> Observation:
    snap = evidence.snapshot("blackholed")
    server, client = evidence.facts.get("server_port"), evidence.facts.get("client_port")
    sock = next((s for s in snap.sockets if s.local_port == server and s.remote_port == client), None) if snap else None
    if snap is None or sock is None or sock.tcp_info is None:
        return Observation(False, "no kernel view of the server's socket during the blackout")
    timer = sock.timer
    cwnd = sock.tcp_info.snd_cwnd
    seen = f"cwnd {cwnd}, timer {timer.name if timer else 'none'} with {timer.retrans if timer else 0} retransmissions"
    return Observation(cwnd == 1 and timer is not None and timer.name == "on" and timer.retrans >= 2, seen,
                       f"kernel snapshot at {snap.ts:.3f}")


def _trace(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no retransmission seen by the kernel trace")
    server = evidence.facts.get("server_port")
    fired = [(no, e) for no, e in evidence.trace_events("retransmit") if e.sport == server]
    return Observation(len(fired) >= 3, f"{len(fired)} retransmit events on the server's socket",
                       f"kernel event #{fired[0][0]}" if fired else None)


def _delivered(evidence: Evidence) -> Observation:
    got = evidence.facts.get("delivered", 0)
    return Observation(got == PAYLOAD, f"the client received {got} of {PAYLOAD} bytes after the path came back")


LAB = Lab(
    name="rto-backoff",
    title="Retransmission timeout and exponential backoff",
    lesson="When no ACK comes back, the sender's retransmission timer fires (at least 200 ms on Linux), "
           "resends the oldest segment, collapses cwnd to 1 and doubles the timeout each time: 0.2 s, 0.4, 0.8...",
    steps=(
        Step("Connect across the wire", "The client, in its own namespace, connects to the echo server over a "
             "veth pair.", Watch("connections", "the new connection", {"state": "ESTABLISHED"}), connect_reading),
        Step("Cut the path", f"Every frame toward the client is now dropped on arrival; the server sends "
             f"{PAYLOAD} bytes. No ACK returns: the server retransmits at doubling intervals.",
             Watch("packets", "the same seq sent again and again, gaps doubling", {"port": "server"}), blackhole),
        Step("Restore the path", "The next retransmission gets through; the ACK restarts the flow.",
             Watch("connections", "cwnd growing again, the retransmission timer gone", {"port": "server"}),
             restore),
    ),
    checks=(
        Check("backoff", "≥ 4 transmissions of the same segment, each gap about twice the last", _backoff),
        Check("cwnd 1", "during the blackout: cwnd 1 and the retransmission timer on", _cwnd),
        Check("kernel retransmits", "≥ 3 retransmit events on the server's socket in the kernel trace", _trace),
        Check("delivered", "all bytes arrive once the path is back", _delivered),
    ),
    control="no-blackhole",
    variants={"no-blackhole": "the path stays open: nothing to retransmit"},
    needs=frozenset({"trace"}),
    server_mode="echo",
    network={},
    settle=0.05,
)
