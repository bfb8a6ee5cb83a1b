"""In-order delivery of one direction's bytes: retransmitted bytes once, early segments after their gap.

Shared by the application-protocol seam (bounded: a direction that never
fills its gap gives up) and "Follow TCP stream" (unbounded, with a final
flush that counts what was never captured).
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_HALF = 0x80000000

#: One contiguous piece: (sequence number of its first byte, bytes, packet that carried them).
Piece = tuple[int, bytes, int]


class InOrder:
    """Sequence-ordered delivery of one direction of a stream.

    ``max_segments``/``max_bytes`` bound what waits for a gap; past either,
    :attr:`overflowed` turns True, the waiting segments are dropped and
    :meth:`push` delivers nothing more.
    """

    __slots__ = ("next_seq", "pending", "pending_bytes", "max_segments", "max_bytes", "overflowed", "dropped",
                 "missing")

    def __init__(self, next_seq: int | None = None, max_segments: int | None = None,
                 max_bytes: int | None = None) -> None:
        #: Sequence number of the next byte to deliver (None: the first segment decides).
        self.next_seq = next_seq
        #: Segments that arrived early, by their first sequence number: (bytes, packet).
        self.pending: dict[int, tuple[bytes, int]] = {}
        self.pending_bytes = 0
        self.max_segments = max_segments
        self.max_bytes = max_bytes
        self.overflowed = False
        #: Packets whose waiting segments were dropped when it overflowed.
        self.dropped: list[int] = []
        #: Bytes skipped by :meth:`flush` (never captured).
        self.missing = 0

    def push(self, seq: int, data: bytes, no: int) -> list[Piece]:
        """Take one segment (``seq`` is its first byte); return the pieces now deliverable, in order."""
        if self.overflowed or not data:
            return []
        if self.next_seq is None:
            self.next_seq = seq
        offset = (seq - self.next_seq) & _MASK
        if offset >= _HALF:  # starts before what was delivered: keep only the new tail
            overlap = (self.next_seq - seq) & _MASK
            if overlap >= len(data):
                return []
            data, seq = data[overlap:], self.next_seq
        elif offset:  # a gap: hold the segment until the bytes before it arrive
            self._hold(seq, data, no)
            return []
        out: list[Piece] = [(seq, data, no)]
        self.next_seq = (seq + len(data)) & _MASK
        # Segments that waited for this one may now be next in line.
        while self.pending:
            piece = self._take_next()
            if piece is None:
                break
            out.append(piece)
            self.next_seq = (piece[0] + len(piece[1])) & _MASK
        return out

    def _hold(self, seq: int, data: bytes, no: int) -> None:
        if seq in self.pending:
            return
        self.pending[seq] = (data, no)
        self.pending_bytes += len(data)
        too_many = self.max_segments is not None and len(self.pending) > self.max_segments
        if too_many or (self.max_bytes is not None and self.pending_bytes > self.max_bytes):
            self.overflowed = True
            self.dropped = self.waiting_packets()
            self.pending.clear()
            self.pending_bytes = 0

    def _take_next(self) -> Piece | None:
        """The waiting segment that starts at or before the next byte (its new part), or None."""
        assert self.next_seq is not None
        for seq in list(self.pending):
            data, no = self.pending[seq]
            lag = (self.next_seq - seq) & _MASK
            if lag < _HALF:  # starts at or before next_seq
                del self.pending[seq]
                self.pending_bytes -= len(data)
                if lag < len(data):
                    return self.next_seq, data[lag:], no
        return None

    def waiting_packets(self) -> list[int]:
        """Packets whose segments wait for a gap to fill."""
        return [no for _, no in self.pending.values()]

    def flush(self) -> list[Piece]:
        """Deliver what still waits after gaps that never filled, counting the gaps in :attr:`missing`."""
        out: list[Piece] = []
        while self.pending:
            next_seq = self.next_seq
            assert next_seq is not None
            start = min(self.pending, key=lambda s: (s - next_seq) & _MASK)
            self.missing += (start - next_seq) & _MASK
            self.next_seq = start
            data, no = self.pending.pop(start)
            self.pending_bytes -= len(data)
            out += self.push(start, data, no)
        return out
