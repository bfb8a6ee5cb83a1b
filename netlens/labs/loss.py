"""Lab ``loss``: random loss on the path; duplicate ACKs with SACK blocks, and fast retransmit."""

from __future__ import annotations

from netlens.labs.checks import ref, refs, trace_missing
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.labs.steps import connect_reading
from netlens.server import SendBytes

PAYLOAD = 2_000_000
LOSS_PERCENT = 3


def lossy_transfer(ctx: LabContext) -> None:
    if ctx.variant != "no-loss":
        ctx.impair.set_loss(LOSS_PERCENT, toward="client")
    ctx.mark("transfer")
    ctx.control(SendBytes(ctx.facts["conn"], b"L" * PAYLOAD))
    received: list[int] = ctx.facts["received"]
    ctx.wait_for(lambda: received[0] >= PAYLOAD, timeout=8.0)
    ctx.keep("delivered", received[0])
    ctx.keep("dropped", ctx.impair.drops("client").loss)
    ctx.mark("done")


def _dropped(evidence: Evidence) -> Observation:
    # The cause, not only its effects: a busy machine can overflow a veth backlog and
    # make dup ACKs and fast retransmits of its own, which are not this lesson's.
    dropped = evidence.facts.get("dropped", 0)
    return Observation(dropped > 0, f"the loss rule dropped {dropped} frames on their way to the client")


def _dup_acks(evidence: Evidence) -> Observation:
    client = evidence.facts.get("client_port")
    dups = evidence.all(lambda p: p.sport == client and "dup-ack" in p.analysis)
    sacked = [p for p in dups if "SACK" in evidence.tcp_options(p.no)]
    return Observation(len(sacked) >= 3, f"{len(dups)} duplicate ACKs from the client, {len(sacked)} with SACK blocks",
                       refs(sacked[:3]))


def _fast_retransmit(evidence: Evidence) -> Observation:
    server = evidence.facts.get("server_port")
    again = evidence.all(lambda p: p.sport == server and bool(
        {"retransmission", "fast-retransmission"} & set(p.analysis)))
    counted = evidence.counter("TcpExtTCPFastRetrans")
    timeouts = evidence.counter("TcpExtTCPTimeouts")
    return Observation(len(again) >= 3 and counted > timeouts,
                       f"{len(again)} retransmissions in the capture; the kernel counted {counted} fast "
                       f"retransmits and {timeouts} timeouts", ref(again[0]) if again else None)


def _recovery(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no congestion-state change seen by the kernel trace")
    server = evidence.facts.get("server_port")
    states = [(no, e) for no, e in evidence.trace_events("cong-state") if e.sport == server]
    names = sorted({e.state for _, e in states})
    where = f"kernel event #{states[0][0]}" if states else None
    return Observation(any("Recovery" in n or "RECOVERY" in n for n in names),
                       f"congestion states {', '.join(names) or 'none'}", where)


def _delivered(evidence: Evidence) -> Observation:
    got = evidence.facts.get("delivered", 0)
    return Observation(got == PAYLOAD, f"the client received {got} of {PAYLOAD} bytes, in order")


LAB = Lab(
    name="loss",
    title="Random loss: dup ACKs, SACK and fast retransmit",
    lesson="When a segment is lost the receiver keeps ACKing the last byte it has in order (duplicate ACKs) "
           "and says with SACK blocks what it got beyond the hole; after three duplicates the sender resends "
           "the missing segment at once (fast retransmit) and enters Recovery instead of waiting for a timeout.",
    steps=(
        Step("Connect across the wire", "The client, in its own namespace, connects to the echo server over a "
             "veth pair.", Watch("connections", "the new connection", {"state": "ESTABLISHED"}), connect_reading),
        Step("Send through a lossy path", f"{LOSS_PERCENT} % of the frames reaching the client are dropped; the "
             f"server sends {PAYLOAD // 1000} kB.",
             Watch("packets", "Dup ACK rows with SACK, then the Fast Retransmission", {"flags": "A"}),
             lossy_transfer),
    ),
    checks=(
        Check("loss on the path", "the path's loss rule (nftables) drops frames on their way to the client",
              _dropped),
        Check("dup ACKs with SACK", "≥ 3 duplicate ACKs from the client carrying SACK blocks", _dup_acks),
        Check("fast retransmit", "retransmissions in the capture, most of them fast (TcpExtTCPFastRetrans)",
              _fast_retransmit),
        Check("recovery", "the kernel trace shows the sender entering Recovery", _recovery),
        Check("delivered", "every byte arrives, in order", _delivered),
    ),
    control="no-loss",
    variants={"no-loss": "a clean path: nothing lost, nothing to recover"},
    needs=frozenset({"trace"}),
    server_mode="echo",
    network={},
    settle=0.05,
)
