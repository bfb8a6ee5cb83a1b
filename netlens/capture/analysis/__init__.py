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
from netlens.capture.analysis.segment import HALF, KINDS, MASK, QUIET, Segment, after
from netlens.capture.frames import ACK, FIN, RST, SYN, Tcp
from netlens.capture.streams import Direction, Stream

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
    f = stream.dirs[d]
    if tcp.seq == f.next_seq and not _CHECKS[QUIET] and _quiet(stream, f, d, tcp, ts_ns, no):
        return []
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
    # Runs for every packet: ``after`` is written out inline (a call costs more than the comparison).
    f = seg.f
    hole = seg.hole
    if hole is not None:
        _fill(f.holes, hole, seg.seq, seg.end)
    end, nxt = seg.end, seg.nxt
    if nxt is None or 0 < (end - nxt) & MASK < HALF:
        f.next_seq = end
        f.next_ts = seg.ts_ns
    flags = seg.flags
    if flags & ACK:
        ack, last_ack = seg.ack, f.last_ack
        if last_ack is None or 0 < (ack - last_ack) & MASK < HALF:
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
    if seg.seglen == 0 and not seg.control and flags & ACK:
        r = seg.r
        if r.keepalive or r.zwp:
            r.keepalive = False
            r.zwp = False


def _quiet(stream: Stream, f: Direction, d: int, tcp: Tcp, ts_ns: int, no: int) -> bool:
    """The fast path: if the segment is QUIET, take it into the state as :func:`advance` would; else False.

    QUIET (see ``segment.KINDS``): no SYN/FIN/RST, at the next expected byte (the caller checked),
    not an empty repeat of the last ACK, a non-zero window, not a zero-window probe, acknowledging
    nothing beyond what was captured from the peer, and data not ending at the edge of the peer's
    window. No rule runs on such a segment, so most packets of a capture cost neither a
    :class:`Segment` nor a rule call. This is :func:`advance` specialised to that case: change both
    together (``test_the_quiet_fast_path_leaves_the_state_the_full_path_does`` compares them).
    """
    _, _, _, _, _, seq, ack, flags, window, _, _, _, seglen, _ = tcp
    r = stream.dirs[1 - d]
    if not window or flags & (SYN | FIN | RST):
        return False
    acks = flags & ACK
    last_ack = f.last_ack
    if acks and ((seglen == 0 and ack == last_ack) or _after_peer(ack, r.next_seq)):
        return False  # an empty repeat (window update, dup ACK...), or it ACKs what was never captured
    if seglen:
        end = (seq + seglen) & MASK
        peer_ack, peer_window = r.last_ack, r.window_bytes
        if (seglen == 1 and r.window == 0) or (peer_ack is not None and peer_window is not None
                                               and end == (peer_ack + peer_window) & MASK):
            return False  # a zero-window probe, or it fills the peer's window
        f.next_seq = end
        f.next_ts = ts_ns
        f.zwp = False
    if acks:
        if last_ack is None or 0 < (ack - last_ack) & MASK < HALF:
            f.last_ack = ack
            f.dupacks = 0
            stream.last_ack_no[d] = no
        if seglen == 0 and (r.keepalive or r.zwp):
            r.keepalive = False
            r.zwp = False
    f.window = window
    f.window_bytes = window << (stream.scale[d] or 0)
    f.keepalive = False
    return True


def _after_peer(ack: int, peer_next: int | None) -> bool:
    """``ack`` acknowledges beyond everything captured from the peer (``peer_next``)."""
    return peer_next is not None and 0 < (ack - peer_next) & MASK < HALF


def _fill(holes: list[list[int]], hole: list[int], seq: int, end: int) -> None:
    """Remove the filled part of ``hole``; keep what is still missing on either side."""
    holes.remove(hole)
    if after(seq, hole[0]):
        holes.append([hole[0], seq, hole[2]])
    if after(hole[1], end):
        holes.append([end, hole[1], hole[2]])
