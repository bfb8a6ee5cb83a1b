"""Wireshark's per-segment bookkeeping: ACK RTT, bytes in flight and the calculated window.

Wireshark keeps, per direction, the list of segments sent and not yet
acknowledged (at most 10,000). An ACK whose number equals the end of a listed
segment gives that segment's RTT (``tcp.analysis.ack_rtt``, reported on the
ACK); an ACK past a segment removes it; an ACK inside one trims its start.
After a data segment, ``tcp.analysis.bytes_in_flight`` is the span from the
lowest unacknowledged byte to the highest listed one, unless a gap was seen
in that direction since the other side last acknowledged anything. This
module reproduces those rules step by step (the order matters: a segment is
listed before its own ACK field is applied to the other direction) so the
numbers agree with tshark to the nanosecond.

Retransmissions are listed too (Wireshark does), so ``ack_rtt`` can time an
ACK against the original transmission. Karn's rule is applied where RTT is
*estimated*: :attr:`FlightResult.karn` says whether the timed segment was a
retransmission, and :mod:`netlens.capture.stats.series` skips those samples.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import NamedTuple

from netlens.capture.frames import ACK, FIN, RST, SYN

_MASK = 0xFFFFFFFF
#: Wireshark stops listing segments past this many unacknowledged ones (TCP_MAX_UNACKED_SEGMENTS).
MAX_UNACKED = 10_000
#: Window-scale states, as Wireshark keeps them: not known yet, known to be off.
SCALE_UNKNOWN = -1
SCALE_OFF = -2
_MAX_SHIFT = 14


def seq_after(a: int, b: int) -> bool:
    """True if sequence number ``a`` comes after ``b`` (modulo 2**32, RFC 1982)."""
    return 0 < ((a - b) & _MASK) < 0x80000000


class Unacked:
    """One listed segment: its sequence span, packet number, time and whether it was resent."""

    __slots__ = ("seq", "nextseq", "no", "ts_ns", "resent")

    def __init__(self, seq: int, nextseq: int, no: int, ts_ns: int, resent: bool) -> None:
        self.seq = seq
        self.nextseq = nextseq
        self.no = no
        self.ts_ns = ts_ns
        self.resent = resent


class FlowState:
    """What one side of a connection has sent, as the RTT and flight rules need it."""

    __slots__ = ("base", "nextseq", "window", "lastack", "win_scale", "valid_bif", "unacked", "acked_up_to",
                 "sack_bytes", "keys", "longest")

    def __init__(self) -> None:
        #: The sequence number relative numbers count from (SYN's seq, or one before the first seen).
        self.base: int | None = None
        #: One past the highest sequence number sent (None before any segment).
        self.nextseq: int | None = None
        self.window: int | None = None
        self.lastack: int | None = None
        #: Own window-scale shift (>= 0), or SCALE_UNKNOWN / SCALE_OFF.
        self.win_scale = SCALE_UNKNOWN
        #: False after a gap in this direction, until the other side acknowledges something.
        self.valid_bif = True
        #: Segments sent and not yet acknowledged, oldest first.
        self.unacked: list[Unacked] = []
        #: Highest acknowledgment number the other side sent for this direction.
        self.acked_up_to: int | None = None
        #: Bytes this side's latest segment reported as SACKed (its first three blocks).
        self.sack_bytes = 0
        #: ``unacked`` is kept sorted by relative end (ties in the order sent), ``keys`` holds those ends.
        self.keys: list[int] = []
        #: Longest segment listed so far: bounds where a straddling segment can sit in the sorted list.
        self.longest = 1

    def rel(self, value: int) -> int:
        """``value`` relative to this side's base (unsigned, as Wireshark's flight arithmetic)."""
        return (value - (self.base or 0)) & _MASK

    def list_segment(self, segment: Unacked) -> None:
        """Add a segment to the unacknowledged list (sorted by end; equal ends stay in sending order)."""
        key = self.rel(segment.nextseq)
        index = bisect_right(self.keys, key)
        self.keys.insert(index, key)
        self.unacked.insert(index, segment)
        self.longest = max(self.longest, (segment.nextseq - segment.seq) & _MASK)

    def lowest_seq(self) -> int:
        """The lowest relative start among listed segments.

        A segment starting lower than the first one's start ends within ``longest``
        of it, so only that prefix of the sorted list needs looking at.
        """
        rel = self.rel
        bound = bisect_right(self.keys, rel(self.unacked[0].seq) + self.longest)
        return min(rel(segment.seq) for segment in self.unacked[:max(1, bound)])


class FlightResult(NamedTuple):
    """What the rules say about one packet."""

    #: Nanoseconds from the segment this packet acknowledges to this packet (None: not an RTT sample).
    ack_rtt_ns: int | None
    #: Packet number of that segment.
    acked_no: int | None
    #: True if the timed segment had been sent before (Karn: no RTT estimate from it).
    karn: bool
    #: Bytes sent and not acknowledged after this data segment (None for segments without data).
    bytes_in_flight: int | None
    #: The window field times the sender's scale factor (Wireshark's ``tcp.window_size``).
    window_bytes: int
    #: The segment resends sequence space already sent (retransmission, fast or spurious, out of order).
    resent: bool


def note_syn(fwd: FlowState, rev: FlowState, flags: int, wscale: int | None) -> None:
    """Record a SYN's window-scale option; scaling holds only if both SYNs carry it (RFC 7323)."""
    if wscale is not None:
        fwd.win_scale = min(wscale, _MAX_SHIFT)
    if fwd.win_scale == SCALE_UNKNOWN:
        fwd.win_scale = rev.win_scale = SCALE_OFF
    elif flags & ACK and rev.win_scale == SCALE_OFF:
        fwd.win_scale = SCALE_OFF


def window_bytes(fwd: FlowState, flags: int, window: int) -> int:
    """The advertised window in bytes: SYNs are never scaled, unknown scales are not guessed."""
    if flags & SYN or fwd.win_scale < 0:
        return window
    return window << fwd.win_scale


def _is_keepalive(fwd: FlowState, seq: int, seglen: int, flags: int) -> bool:
    return (seglen <= 1 and fwd.nextseq is not None and seq == (fwd.nextseq - 1) & _MASK
            and not flags & (SYN | FIN | RST))


def _apply_ack(rev: FlowState, ack: int, ts_ns: int) -> tuple[int | None, int | None, bool]:
    """Apply an ACK to the other side's list, with Wireshark's outcome.

    Wireshark walks its list newest first: a segment ending exactly at the ACK
    gives the RTT (an older copy of the same span overwrites a newer one, so the
    first transmission wins) and goes; one ending before it goes; one the ACK
    falls inside is trimmed to start at the ACK. The sorted list gets the same
    result by bisection.
    """
    unacked, keys = rev.unacked, rev.keys
    if seq_after(unacked[0].nextseq, ack):
        cut = 0  # every listed segment ends after the ACK
    elif not seq_after(unacked[-1].nextseq, ack):
        cut = len(unacked)
    else:
        cut = bisect_right(keys, rev.rel(ack))
    result: tuple[int | None, int | None, bool] = (None, None, False)
    if cut:
        first_equal = bisect_left(keys, rev.rel(ack), 0, cut)
        if first_equal < cut and unacked[first_equal].nextseq == ack:
            timed = unacked[first_equal]
            result = (ts_ns - timed.ts_ns, timed.no, timed.resent)
        del unacked[:cut]
        del keys[:cut]
    if unacked:
        bound = bisect_right(keys, rev.rel(ack) + rev.longest)
        for segment in unacked[:bound]:
            if seq_after(ack, segment.seq):
                segment.seq = ack
    return result


def _in_flight(fwd: FlowState, rev: FlowState, flags: int) -> int | None:
    first, last = fwd.lowest_seq(), fwd.keys[-1]
    # What the receiver reported SACKed is delivered, not in flight (unsigned, as Wireshark computes it).
    in_flight = (last - first - rev.sack_bytes) & _MASK
    if not 0 < in_flight < 2_000_000_000:
        return None
    # SYN and FIN occupy one sequence number but no byte.
    return in_flight - 1 if flags & (SYN | FIN) else in_flight


def note_sack(fwd: FlowState, blocks: list[tuple[int, int]]) -> None:
    """Remember the SACK blocks this side sent, as Wireshark does for bytes in flight.

    Wireshark stores at most three blocks (a fourth is counted but not kept),
    and only those of the side's latest segment: a segment without SACK clears them.
    """
    fwd.sack_bytes = sum((right - left) & _MASK for left, right in blocks[:3])


def _note_bases(fwd: FlowState, rev: FlowState, seq: int, ack: int, flags: int) -> None:
    """Relative numbers count from the SYN (or one before the first segment seen), the ACK's from ack - 1."""
    if fwd.base is None:
        fwd.base = seq if flags & SYN else (seq - 1) & _MASK
    if flags & ACK:
        if rev.base is None:
            rev.base = (ack - 1) & _MASK
        rev.valid_bif = True


def _is_resent(fwd: FlowState, seq: int, seglen: int, flags: int) -> bool:
    """Sequence space sent before (retransmission, fast or spurious, out of order): Wireshark's first test."""
    occupies = seglen or flags & (SYN | FIN)
    return bool(occupies and fwd.nextseq is not None and seq_after(fwd.nextseq, seq)
                and not _is_keepalive(fwd, seq, seglen, flags))


def _advance(fwd: FlowState, seq: int, seglen: int, flags: int, no: int, ts_ns: int, resent: bool,
             zero_window_probe: bool) -> None:
    """List the segment (if it occupies sequence space) and move the side's highest sequence number."""
    nextseq = (seq + seglen) & _MASK
    if (seglen or flags & (SYN | FIN)) and len(fwd.unacked) < MAX_UNACKED:
        if flags & (SYN | FIN):
            nextseq = (nextseq + 1) & _MASK
        fwd.list_segment(Unacked(seq, nextseq, no, ts_ns, resent))
    if (fwd.nextseq is None or seq_after(nextseq, fwd.nextseq)) and not zero_window_probe:
        fwd.nextseq = nextseq


def analyze_flight(fwd: FlowState, rev: FlowState, seq: int, ack: int, flags: int, window: int,
                   seglen: int, no: int, ts_ns: int) -> FlightResult:
    """Apply one segment sent by ``fwd``'s side (``rev`` is the other side); see the module doc."""
    _note_bases(fwd, rev, seq, ack, flags)
    zero_window_probe = seglen == 1 and seq == fwd.nextseq and rev.window == 0
    if (not zero_window_probe and fwd.nextseq is not None and seq_after(seq, fwd.nextseq)
            and not flags & RST):
        fwd.valid_bif = False  # a gap: Wireshark stops counting until the other side ACKs again
    resent = _is_resent(fwd, seq, seglen, flags)
    _advance(fwd, seq, seglen, flags, no, ts_ns, resent, zero_window_probe)
    fwd.window = window
    fwd.lastack = ack
    rtt, acked, karn = _apply_ack(rev, ack, ts_ns) if rev.unacked else (None, None, False)
    if flags & ACK and (rev.acked_up_to is None or seq_after(ack, rev.acked_up_to)):
        rev.acked_up_to = ack
    in_flight = _in_flight(fwd, rev, flags) if seglen and fwd.unacked and fwd.valid_bif else None
    return FlightResult(rtt, acked, karn, in_flight, window_bytes(fwd, flags, window), resent)
