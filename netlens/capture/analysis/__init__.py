"""Wireshark-style TCP analysis flags, each with the rule behind it in one plain sentence.

:func:`analyze_full` builds the per-segment context (:class:`Segment`), runs
every rule of :mod:`netlens.capture.analysis.rules` on it in their fixed order,
then advances the stream's state (:func:`advance`). :func:`analyze`, what the
store calls once per packet in capture order, answers the common segments
itself (a capture duplicate; in-order data or an ACK no rule marks) and hands
the rest to the full path. Both run in O(1).

Where to change what: a rule's decision lives in its function in ``rules.py``
(one function per rule, its sentence and severity in its decorator); facts
several rules share live in ``segment.py``; what a segment leaves behind for
the next one (next sequence number, last ACK, window) lives in :func:`advance`
(and, for the segments no rule marks, in :func:`analyze`: a new rule that can
mark an in-order segment must be excluded in :func:`_quiet` too: the fast-path
test compares both paths packet by packet on random conversations).
"""

from __future__ import annotations

from netlens.capture.analysis import rules as _rules  # registers every rule, in order
from netlens.capture.analysis.marks import RULES, Mark, Rule, Severity, worst
from netlens.capture.analysis.rules import FAST_RETRANSMISSION_NS, OUT_OF_ORDER_NS, copy_detail
from netlens.capture.analysis.segment import (
    DUPLICATE_NO_ID_NS,
    DUPLICATE_NS,
    KINDS,
    MASK,
    Segment,
    after,
    repeats_last_frame,
)
from netlens.capture.frames import ACK, FIN, RST, SYN, Tcp
from netlens.capture.streams import Direction, Stream

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
    "analyze_full",
    "worst",
]

#: Per segment kind, the checks that can apply to it, in the order they run (the order of ``rules.py``).
_CHECKS = {kind: tuple((rule.check, rule.name) for rule in RULES.values() if kind in rule.kinds) for kind in KINDS}
#: The mark of each rule without a detail, made once (most marks have none).
_PLAIN = {name: Mark(name) for name in RULES}
_HALF = 0x80000000
_CONTROL = SYN | FIN | RST
#: ``Mark(*fields)`` without the NamedTuple's Python-level ``__new__`` (a capture duplicate makes one per packet).
_tuple_new = tuple.__new__
del _rules


def analyze(stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int, frame: bytes = b"") -> tuple[Mark, ...]:
    """Flags for one segment travelling in direction ``d`` of ``stream``; updates the stream's state.

    Returns the marks (usually none: the empty tuple, shared). Callers must feed each stream's packets
    in capture order; ``frame`` (the captured bytes) lets capture duplicates be told apart.

    This is the fast path: a capture duplicate is decided first, as the first rule does (it stops
    every other rule and changes no state); a segment no rule marks (see :func:`_quiet`) is taken
    into the state here, as :func:`advance` would, without a :class:`Segment` or a rule call;
    anything else goes to :func:`analyze_full`. Most packets of an ordinary exchange take the fast
    path; ``tests/unit/test_capture_analysis_fastpath.py`` compares both packet by packet, so change
    this and :func:`advance` together.
    """
    _, _, _, _, _, seq, ack, flags, window, offset, _, _, seglen, _, ip_id = tcp
    f = stream.dirs[d]
    dup_ts = f.dup_ts
    if (dup_ts and ip_id == f.dup_id and ts_ns - dup_ts <= (DUPLICATE_NS if ip_id else DUPLICATE_NO_ID_NS)
            and (frame == f.dup_frame or repeats_last_frame(f, ip_id, frame, offset))):
        return (_tuple_new(Mark, ("capture-duplicate", copy_detail(ts_ns - dup_ts))),)
    nxt = f.nextseq
    r = stream.dirs[1 - d]
    if seq != nxt or not nxt or not window or flags & _CONTROL or not _quiet(f, r, seq, ack, flags, seglen):
        return _full(stream, d, tcp, ts_ns, no, frame)
    if seglen:
        f.nextseq = (seq + seglen) & MASK
        f.next_ts = ts_ns
    # The rest of advance() for a segment no rule marked.
    if ack != f.lastack:
        f.nondup_no = no
        f.dupacks = 0
        f.unseen_stale = False
    f.unseen_told = False
    if not f.maxack or seq == f.maxack:
        f.maxack = f.nextseq
    f.window = window
    f.lastack = ack
    f.lastack_ts = ts_ns
    f.last_syn = f.keepalive = f.zwp = False
    f.dup_id = ip_id
    f.dup_frame = frame
    f.dup_offset = offset
    f.dup_ts = ts_ns
    if flags & ACK and not stream.first_rtt and stream.syn_ts:
        stream.first_rtt = ts_ns - stream.syn_ts
    return ()


def _quiet(f: Direction, r: Direction, seq: int, ack: int, flags: int, seglen: int) -> bool:
    """A segment at the next expected sequence number, with a non-zero window and no SYN/FIN/RST, that no rule marks.

    That is: acknowledging nothing unseen; if it carries data, not a zero-window probe (one byte
    into a zero window), not already acknowledged, not ending at the edge of the peer's window; if
    it is empty, not a repeat of this side's last ACK (the window-update, keep-alive-ack, probe-ack
    and dup-ack rules need one).
    """
    maxack = r.maxack
    if flags & ACK and maxack and 0 < (ack - maxack) & MASK < _HALF:
        return False  # acknowledges what was never captured
    if not seglen:
        return ack != f.lastack
    if seglen == 1 and r.window == 0:
        return False  # a zero-window probe
    end = (seq + seglen) & MASK
    peer_ack = r.lastack
    if peer_ack and ((peer_ack - end) & MASK) < _HALF:
        return False  # already acknowledged: the retransmission rules look at it
    # Does it fill the peer's window? Only asked once the peer's scale is known (see peer_window_bytes).
    no_scaling = (r.syn_seen and r.wscale is None) or (f.syn_seen and f.wscale is None)
    if not r.syn_seen and not no_scaling:
        return True
    shift = 0 if no_scaling or r.last_syn else r.wscale or 0
    return end != (peer_ack + (r.window << (shift if shift < 14 else 14))) & MASK


def analyze_full(stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int, frame: bytes = b"") -> tuple[Mark, ...]:
    """:func:`analyze` without its fast path: every rule of the segment's kind runs on a :class:`Segment`."""
    return _full(stream, d, tcp, ts_ns, no, frame)


def _full(stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int, frame: bytes) -> tuple[Mark, ...]:
    seg = Segment(stream, d, tcp, ts_ns, no, frame)
    marks = []
    marked = seg.marked
    for check, name in _CHECKS[seg.kind]:
        detail = check(seg)
        if detail is not None:
            marks.append(Mark(name, detail) if detail else _PLAIN[name])
            marked.append(name)
            if seg.stop:
                return tuple(marks)
    advance(seg)
    return tuple(marks)


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
    f.dup_id, f.dup_frame, f.dup_offset = seg.ip_id, seg.frame, seg.tcp_offset
    f.dup_ts = ts_ns
    if flags & SYN:
        if not flags & ACK:
            stream.syn_ts = ts_ns
    elif flags & ACK and not stream.first_rtt and stream.syn_ts:
        # The handshake's round trip, from the latest SYN to the first plain ACK (Wireshark's initial RTT).
        stream.first_rtt = ts_ns - stream.syn_ts
