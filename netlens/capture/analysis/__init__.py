"""Wireshark-style TCP analysis flags, each with the rule behind it in one plain sentence.

:func:`analyze` builds the per-segment context (:class:`Segment`), runs every
rule of :mod:`netlens.capture.analysis.rules` on it in their fixed order, then
advances the stream's state (:func:`advance`). It runs once per packet, in
capture order, in O(1) (the list of sequence gaps per direction is bounded).

Where to change what: a rule's decision lives in its function in ``rules.py``
(one function per rule, its sentence and severity in its decorator); facts
several rules share live in ``segment.py``; what a segment leaves behind for
the next one (next sequence number, last ACK, window) lives in :func:`advance`.
"""

from __future__ import annotations

from netlens.capture.analysis import rules as _rules  # registers every rule, in order
from netlens.capture.analysis.marks import RULES, Mark, Rule, Severity, worst
from netlens.capture.analysis.rules import FAST_RETRANSMISSION_NS, OUT_OF_ORDER_NS
from netlens.capture.analysis.segment import DUPLICATE_NS, KINDS, Segment, after
from netlens.capture.frames import ACK, FIN, SYN, Tcp
from netlens.capture.streams import Stream

__all__ = [
    "DUPLICATE_NS",
    "FAST_RETRANSMISSION_NS",
    "OUT_OF_ORDER_NS",
    "RULES",
    "Mark",
    "Rule",
    "Segment",
    "Severity",
    "advance",
    "analyze",
    "worst",
]

#: Per segment kind, the checks that can apply to it, in the order they run (the order of ``rules.py``).
_CHECKS = {kind: tuple((rule.check, rule.name) for rule in RULES.values() if kind in rule.kinds) for kind in KINDS}
#: The mark of each rule without a detail, made once (most marks have none).
_PLAIN = {name: Mark(name) for name in RULES}
del _rules


def analyze(stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int, frame: bytes = b"") -> list[Mark]:
    """Flags for one segment travelling in direction ``d`` of ``stream``; updates the stream's state.

    Returns the marks (usually none). Callers must feed each stream's packets
    in capture order; ``frame`` (the captured bytes) lets capture duplicates be told apart.
    """
    seg = Segment(stream, d, tcp, ts_ns, no, frame)
    marks = []
    marked = seg.marked
    for check, name in _CHECKS[seg.kind]:
        detail = check(seg)
        if detail is not None:
            marks.append(Mark(name, detail) if detail else _PLAIN[name])
            marked.append(name)
            if seg.stop:
                return marks
    advance(seg)
    return marks


def advance(seg: Segment) -> None:
    """What the segment leaves for the next one: next sequence number, last ACK, window, probe state.

    Wireshark's bookkeeping, in its order: the run of duplicate ACKs ends when
    the acknowledgment number changes; a gap the peer acknowledged may be marked
    again once this side sent anything but a duplicate ACK; the next expected sequence number only
    moves forward (a zero-window probe does not move it); the highest byte the
    peer may acknowledge follows contiguous data; the last ACK, its time and the
    window are this segment's, whatever they are.
    """
    f, stream = seg.f, seg.stream
    flags, ts_ns, ack = seg.flags, seg.ts_ns, seg.ack
    if ack != f.lastack:
        f.nondup_no = seg.no
        f.dupacks = 0
        f.unseen_stale = False
    if "dup-ack" not in seg.marked:
        f.unseen_told = False
    probe = "zero-window-probe" in seg.marked
    nextseq = seg.end if seg.seglen or flags & (SYN | FIN) else seg.seq
    if (not f.nextseq or after(nextseq, f.nextseq)) and not probe:
        f.nextseq = nextseq
        f.next_ts = ts_ns
    if (not f.maxack or seg.seq == f.maxack) and not probe:
        f.maxack = f.nextseq
    f.window = seg.window
    f.lastack = ack
    f.lastack_ts = ts_ns
    f.last_syn = bool(flags & SYN)
    f.keepalive = "keep-alive" in seg.marked
    f.zwp = probe
    f.dup_key = seg.dup_key
    f.dup_ts = ts_ns
    if flags & SYN:
        if not flags & ACK:
            stream.syn_ts = ts_ns
    elif flags & ACK and not stream.first_rtt and stream.syn_ts:
        # The handshake's round trip, from the latest SYN to the first plain ACK (Wireshark's initial RTT).
        stream.first_rtt = ts_ns - stream.syn_ts
