"""The small per-segment context every analysis rule reads: one TCP segment against its stream's state.

Built once per packet; the facts several rules share (is this a keep-alive,
a pure repeat of the last ACK, does it go back in the sequence space) are
computed here once, so each rule reads as the sentence it implements.
"""

from __future__ import annotations

from netlens.capture.frames import ACK, FIN, RST, SYN, Tcp
from netlens.capture.streams import Direction, Stream

MASK = 0xFFFFFFFF
HALF = 0x80000000

#: Segment kinds, exactly one per segment, so each rule runs only where it can apply (its
#: decorator names its kinds; a test runs every rule on every segment and checks that none fires
#: outside them): SYN/FIN/RST going forward, anything going back in the sequence space, a segment
#: starting beyond the next expected byte, a keep-alive, an empty repeat of this side's last ACK;
#: then the common rest: data or an empty ACK at the next expected byte (or a direction's first
#: segment), QUIET when it also advertises a non-zero window, acknowledges nothing beyond what was
#: captured from the peer and (data) does not end at the edge of the peer's window. QUIET is the
#: fast path: no rule runs on it.
CONTROL, BACK, AHEAD, KEEPALIVE, REPEAT, DATA, EMPTY, QUIET = "control", "back", "ahead", "keep-alive", \
    "repeat", "data", "empty", "quiet"
KINDS = (QUIET, DATA, EMPTY, REPEAT, KEEPALIVE, AHEAD, CONTROL, BACK)


def after(a: int, b: int) -> bool:
    """Sequence number ``a`` is after ``b`` (mod 2**32)."""
    return 0 < ((a - b) & MASK) < HALF


class Segment:
    """One segment travelling in direction ``d`` of ``stream``, before the stream's state takes it in.

    ``f`` is the sending direction's state, ``r`` the receiving one's (what
    the other side sent). Numbers are raw (absolute) sequence numbers.
    """

    __slots__ = (
        "stream", "d", "f", "r", "no", "ts_ns", "flags", "seq", "ack", "window", "seglen", "control", "end",
        "window_bytes", "nxt", "probe", "keepalive", "repeat", "goes_back", "kind", "hole", "acked_already",
        "answers_dupacks",
    )

    def __init__(self, stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int) -> None:
        # Runs for every packet: fields are unpacked at once and ``after`` is written out inline.
        _, _, _, _, _, seq, ack, flags, window, _, _, _, seglen, _ = tcp
        self.stream, self.d, self.no, self.ts_ns = stream, d, no, ts_ns
        dirs = stream.dirs
        f: Direction = dirs[d]
        r: Direction = dirs[1 - d]
        self.f, self.r = f, r
        self.flags, self.seq, self.ack, self.window, self.seglen = flags, seq, ack, window, seglen
        self.control = flags & (SYN | FIN | RST)
        #: One past the segment's last sequence number (SYN and FIN count one each).
        self.end = (seq + seglen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & MASK
        #: The advertised window in bytes (the SYN's is never scaled).
        self.window_bytes = window if flags & SYN else window << (stream.scale[d] or 0)
        #: The next sequence number expected from this sender (None before its first segment).
        nxt = self.nxt = f.next_seq
        #: For a segment going back: the gap it falls in (``[start, end, ts_ns of the segment that
        #: skipped it]``), if any.
        self.hole: list[int] | None = None
        #: For a segment going back (else False): the receiver had acknowledged everything it
        #: carries (SYNs excepted); the receiver sent two or more duplicate ACKs asking for its start.
        self.acked_already = self.answers_dupacks = False
        #: Filled in by the classification below.
        self.probe = self.keepalive = self.repeat = self.goes_back = False
        back = 0 if nxt is None else (nxt - seq) & MASK
        if back == 0:
            self._at_next(nxt is not None)
        else:
            self._elsewhere(back)

    def _at_next(self, expected: bool) -> None:
        """Classify a segment at the next expected byte (``expected``), or a direction's first segment."""
        seglen, control, flags, f, r = self.seglen, self.control, self.flags, self.f, self.r
        #: One byte at the next sequence number while the peer advertises a zero window.
        self.probe = seglen == 1 and expected and r.window == 0 and not control
        #: An empty ACK at the next sequence number repeating this side's last acknowledgment.
        repeat = self.repeat = (seglen == 0 and not control and expected and bool(flags & ACK)
                                and self.ack == f.last_ack)
        self.kind = CONTROL if control else REPEAT if repeat else DATA if seglen else EMPTY

    def _elsewhere(self, back: int) -> None:
        """Classify a segment that does not start at the next expected byte (``back``: how far before it)."""
        seglen, control, flags = self.seglen, self.control, self.flags
        #: At most one byte, one below the next expected sequence number.
        keepalive = self.keepalive = seglen <= 1 and not control and back == 1
        #: The segment carries sequence space (data, SYN or FIN) starting before the next expected byte.
        goes_back = self.goes_back = (seglen > 0 or bool(flags & (SYN | FIN))) and back < HALF and not keepalive
        self.kind = (BACK if goes_back else CONTROL if control else AHEAD if back > HALF
                     else KEEPALIVE if keepalive else DATA if seglen else EMPTY)
        if goes_back:
            r = self.r
            if self.f.holes:
                self.hole = self._find_hole()
            last_ack = r.last_ack
            self.acked_already = (last_ack is not None and not 0 < (self.end - last_ack) & MASK < HALF
                                  and not flags & SYN)
            self.answers_dupacks = r.dupacks >= 2 and self.seq == last_ack

    def _find_hole(self) -> list[int] | None:
        seq, end = self.seq, self.end
        for hole in self.f.holes:
            if not after(hole[0], seq) and not after(end, hole[1]) and end != seq:
                return hole
        return None
