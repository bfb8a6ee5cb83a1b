"""The small per-segment context every analysis rule reads: one TCP segment against its stream's state.

Built once per packet; the facts several rules share (is this a keep-alive,
a pure repeat of the last ACK, does it go back in the sequence space) are
computed here once, so each rule reads as the sentence it implements.
"""

from __future__ import annotations

from netlens.capture.frames import ACK, FIN, RST, SYN, Tcp
from netlens.capture.streams import Direction, Stream

MASK = 0xFFFFFFFF
_HALF = 0x80000000

#: Segment kinds, exactly one per segment: data going forward, empty (a pure ACK or window
#: change), SYN/FIN/RST going forward, anything going back in the sequence space.
DATA, EMPTY, CONTROL, BACK = "data", "empty", "control", "back"
KINDS = (DATA, EMPTY, CONTROL, BACK)


def after(a: int, b: int) -> bool:
    """Sequence number ``a`` is after ``b`` (mod 2**32)."""
    return 0 < ((a - b) & MASK) < _HALF


class Segment:
    """One segment travelling in direction ``d`` of ``stream``, before the stream's state takes it in.

    ``f`` is the sending direction's state, ``r`` the receiving one's (what
    the other side sent). Numbers are raw (absolute) sequence numbers.
    """

    __slots__ = (
        "stream", "d", "f", "r", "no", "ts_ns", "flags", "seq", "ack", "window", "seglen", "control", "end",
        "window_bytes", "nxt", "probe", "keepalive", "repeat", "goes_back", "kind", "hole",
    )

    def __init__(self, stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int) -> None:
        self.stream = stream
        self.d = d
        f: Direction = stream.dirs[d]
        r: Direction = stream.dirs[1 - d]
        self.f, self.r = f, r
        self.no, self.ts_ns = no, ts_ns
        flags = self.flags = tcp.flags
        seq = self.seq = tcp.seq
        self.ack = tcp.ack
        window = self.window = tcp.window
        seglen = self.seglen = tcp.payload_length
        control = self.control = flags & (SYN | FIN | RST)
        #: One past the segment's last sequence number (SYN and FIN count one each).
        self.end = (seq + seglen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & MASK
        #: The advertised window in bytes (the SYN's is never scaled).
        self.window_bytes = window if flags & SYN else window << (stream.scale[d] or 0)
        #: The next sequence number expected from this sender (None before its first segment).
        self.nxt = f.next_seq
        self._shared_facts()
        #: Which kind of segment this is, for the rules that look only at some kinds (see KINDS).
        self.kind = BACK if self.goes_back else CONTROL if control else DATA if seglen else EMPTY
        #: For a segment going back: the gap it falls in (``[start, end, ts_ns of the segment that
        #: skipped it]``), if any.
        self.hole = self._find_hole() if self.goes_back else None

    def _shared_facts(self) -> None:
        """The facts several rules read, computed once."""
        f, r, nxt, seq, seglen, control, flags = self.f, self.r, self.nxt, self.seq, self.seglen, self.control, \
            self.flags
        #: One byte at the next sequence number while the peer advertises a zero window.
        self.probe = seglen == 1 and nxt is not None and seq == nxt and r.window == 0 and not control
        #: At most one byte, one below the next expected sequence number.
        self.keepalive = seglen <= 1 and not control and nxt is not None and seq == (nxt - 1) & MASK
        #: An empty ACK at the next sequence number repeating this side's last acknowledgment.
        self.repeat = (seglen == 0 and not control and bool(flags & ACK) and nxt is not None and seq == nxt
                       and f.last_ack is not None and self.ack == f.last_ack)
        #: The segment carries sequence space (data, SYN or FIN) starting before the next expected byte.
        self.goes_back = ((seglen > 0 or bool(flags & (SYN | FIN))) and nxt is not None
                          and 0 < (nxt - seq) & MASK < _HALF and not self.keepalive)

    def _find_hole(self) -> list[int] | None:
        seq, end = self.seq, self.end
        for hole in self.f.holes:
            if not after(hole[0], seq) and not after(end, hole[1]) and end != seq:
                return hole
        return None

    @property
    def acked_already(self) -> bool:
        """The receiver had acknowledged everything this segment carries (SYNs excepted)."""
        last_ack = self.r.last_ack
        return last_ack is not None and not after(self.end, last_ack) and not self.flags & SYN

    @property
    def answers_dupacks(self) -> bool:
        """The receiver sent two or more duplicate ACKs asking for exactly this segment's start."""
        return self.r.dupacks >= 2 and self.seq == self.r.last_ack
