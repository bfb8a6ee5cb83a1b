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
from netlens.capture.analysis.rules import MAX_HOLES, OUT_OF_ORDER_NS
from netlens.capture.analysis.segment import KINDS, Segment, after
from netlens.capture.frames import ACK, Tcp
from netlens.capture.streams import Stream

__all__ = [
    "MAX_HOLES",
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


def analyze(stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int) -> list[Mark]:
    """Flags for one segment travelling in direction ``d`` of ``stream``; updates the stream's state.

    Returns the marks (usually none). Callers must feed each stream's packets
    in capture order.
    """
    seg = Segment(stream, d, tcp, ts_ns, no)
    marks = []
    for check, name in _CHECKS[seg.kind]:
        detail = check(seg)
        if detail is not None:
            marks.append(Mark(name, detail) if detail else _PLAIN[name])
    advance(seg)
    return marks


def advance(seg: Segment) -> None:
    """What the segment leaves for the next one: next sequence number, last ACK, window, probe state."""
    f, r = seg.f, seg.r
    if seg.goes_back:
        hole = seg.hole
        if hole is not None:
            _fill(f.holes, hole, seg.seq, seg.end)
    end, nxt = seg.end, seg.nxt
    if nxt is None or after(end, nxt):
        f.next_seq = end
        f.next_ts = seg.ts_ns
    ack = seg.ack
    if seg.flags & ACK and (f.last_ack is None or after(ack, f.last_ack)):
        f.last_ack = ack
        f.dupacks = 0
        seg.stream.last_ack_no[seg.d] = seg.no
    f.window = seg.window
    f.window_bytes = seg.window_bytes
    if seg.probe:
        f.zwp = True
    elif seg.seglen or seg.control:
        f.zwp = False
    f.keepalive = seg.keepalive
    if seg.seglen == 0 and not seg.control and (r.keepalive or r.zwp) and seg.flags & ACK:
        r.keepalive = False
        r.zwp = False


def _fill(holes: list[list[int]], hole: list[int], seq: int, end: int) -> None:
    """Remove the filled part of ``hole``; keep what is still missing on either side."""
    holes.remove(hole)
    if after(seq, hole[0]):
        holes.append([hole[0], seq, hole[2]])
    if after(hole[1], end):
        holes.append([end, hole[1], hole[2]])
