""""Follow TCP stream": both directions of one connection reassembled in sequence order.

Each direction's bytes are delivered once and in sequence order, starting
right after the SYN (or at the first segment captured when the handshake was
not): retransmitted bytes are dropped, and a segment that arrives early waits
for the bytes before it, even when those arrive later (reordering). When the
other side acknowledges bytes the capture never held, a gap chunk says
``[N bytes missing]`` and delivery goes on after it; at the end, what still
waits behind a gap nobody acknowledged is delivered the same way. This is
Wireshark's rule ("[N bytes missing in capture file]"), except that Wireshark
drops what still waits at the end. The two directions interleave in the order
the bytes became contiguous in the capture — what each application read, and
when. Consecutive bytes in the same direction merge into one :class:`FollowChunk`.

:func:`follow` works on plain data (the segments, not the store), so it can
run wherever the segments are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netlens.capture.frames import SYN
from netlens.textsafe import safe_bytes

_MASK = 0xFFFFFFFF
_HALF = 0x80000000


@dataclass(frozen=True)
class FollowChunk:
    """Contiguous bytes sent in one direction (0: client → server, 1: server → client), or a gap.

    A gap chunk has no data and ``missing`` > 0: that many bytes were sent
    (the receiver acknowledged them, or later bytes were captured) but the
    capture does not hold them.
    """

    direction: int
    data: bytes
    #: Packet numbers that carried these bytes (for a gap: the packet that revealed it).
    packets: tuple[int, ...]
    missing: int = 0

    def lines(self, limit: int | None = None) -> list[str]:
        """The bytes as terminal-safe text lines (at most ``limit`` bytes, then a line saying how many more)."""
        if self.missing:
            return [f"[{self.missing} bytes missing]"]
        data = self.data if limit is None else self.data[:limit]
        # Split on real newlines first, then escape: the escape of "\n" must not split.
        lines = [safe_bytes(line) for line in data.split(b"\n")]
        if len(data) < len(self.data):
            lines.append(f"… ({len(self.data) - len(data)} more bytes)")
        return lines


@dataclass(frozen=True)
class Follow:
    """A followed stream: its two endpoints and the conversation in order."""

    stream: int
    client: str
    server: str
    chunks: tuple[FollowChunk, ...]
    #: Bytes never captured (gaps in the sequence space), per direction.
    missing: tuple[int, int] = (0, 0)

    def total(self, direction: int) -> int:
        """Bytes delivered in ``direction``."""
        return sum(len(c.data) for c in self.chunks if c.direction == direction)

    def title(self) -> str:
        """``Follow stream 1: client … ⇄ server …``."""
        return f"Follow stream {self.stream}: client {self.client} ⇄ server {self.server}"

    def heading(self, chunk: FollowChunk) -> str:
        """The line above a chunk: who sent it to whom, how many bytes, in which packets."""
        arrow = (f"client {self.client} → server {self.server}" if chunk.direction == 0
                 else f"server {self.server} → client {self.client}")
        packets = ", ".join(f"#{p}" for p in chunk.packets[:6]) + (" …" if len(chunk.packets) > 6 else "")
        if chunk.missing:
            return f"── {arrow}: {chunk.missing} bytes missing from the capture (seen at {packets})"
        return f"── {arrow}: {len(chunk.data)} bytes ({packets})"

    def footer(self) -> str:
        """Totals per direction, and what the capture missed."""
        return (f"── {self.total(0)} bytes client → server, {self.total(1)} bytes server → client"
                + (f"; missing from the capture: {self.missing[0]} / {self.missing[1]} bytes"
                   if any(self.missing) else ""))

    def render(self, limit: int | None = None) -> list[str]:
        """Plain-text lines with a direction marker before each chunk; bytes escaped for the terminal."""
        lines = [self.title()]
        for chunk in self.chunks:
            lines.append(self.heading(chunk))
            lines.extend(chunk.lines(limit))
        lines.append(self.footer())
        return lines


#: One packet of a stream as follow needs it: (packet number, direction, seq, ack, flags, sequence
#: length of its payload (from the IP header), captured payload bytes).
Segment = tuple[int, int, int, int, int, int, bytes]


def follow(stream_id: int, client: str, server: str, segments: Iterable[Segment]) -> Follow:
    """Reassemble the packets ``segments`` (capture order, every packet of the stream) of one stream."""
    sides = (_Side(), _Side())
    chunks: list[tuple[int, bytearray, list[int], int]] = []

    def emit(direction: int, pieces: list[tuple[bytes, int, int]]) -> None:
        for data, no, missing in pieces:
            last = chunks[-1] if chunks else None
            if last is not None and last[0] == direction and not missing and not last[3]:
                last[1].extend(data)
                if last[2][-1] != no:
                    last[2].append(no)
            else:
                chunks.append((direction, bytearray(data), [no], missing))

    for no, direction, seq, ack, flags, length, data in segments:
        other = sides[1 - direction]
        if other.pending:
            # The receiver acknowledging past a gap: those bytes were sent, the capture missed them.
            emit(1 - direction, other.acknowledged(ack, no))
        emit(direction, sides[direction].push(seq + (1 if flags & SYN else 0), length, data, no))
    for direction in (0, 1):
        emit(direction, sides[direction].flush())
    return Follow(stream_id, client, server,
                  tuple(FollowChunk(d, bytes(data), tuple(packets), missing) for d, data, packets, missing in chunks),
                  (sides[0].missing, sides[1].missing))


class _Side:
    """One direction's delivery: the next sequence number and the segments waiting for a gap before them."""

    __slots__ = ("missing", "next", "pending")

    def __init__(self) -> None:
        self.next: int | None = None
        #: Segments that arrived early: (seq, bytes, packet).
        self.pending: list[tuple[int, bytes, int]] = []
        self.missing = 0

    def push(self, seq: int, length: int, data: bytes, no: int) -> list[tuple[bytes, int, int]]:
        """Take one packet's payload; return (bytes, packet, 0) pieces now deliverable, in order."""
        if self.next is None:
            self.next = seq  # the first packet of this direction, data or not, sets where bytes start
        if not data:
            return []
        behind = (self.next - seq) & _MASK
        if 0 < behind < _HALF:
            if behind >= length:
                return []  # a retransmission of delivered bytes
            data, seq, length = data[behind:], self.next, length - behind
            if not data:
                self.next = (self.next + length) & _MASK
                return []
        if seq != self.next:
            self.pending.append((seq, data, no))
            return []
        # The sequence moves by what was sent; a snaplen-cut frame delivers what was captured.
        self.next = (seq + length) & _MASK
        return [(data, no, 0), *self._drain()]

    def _drain(self) -> list[tuple[bytes, int, int]]:
        """Waiting segments that now start at or before the next byte, their new parts, in order."""
        out: list[tuple[bytes, int, int]] = []
        moved = True
        while moved and self.pending:
            moved = False
            for entry in list(self.pending):
                seq, data, no = entry
                assert self.next is not None
                behind = (self.next - seq) & _MASK
                if behind < _HALF:
                    self.pending.remove(entry)
                    moved = True
                    if behind < len(data):
                        out.append((data[behind:], no, 0))
                        self.next = (seq + len(data)) & _MASK
        return out

    def acknowledged(self, ack: int, no: int) -> list[tuple[bytes, int, int]]:
        """The peer acknowledged ``ack``: a gap before a waiting segment below it was sent but not captured."""
        out: list[tuple[bytes, int, int]] = []
        while self.pending and self.next is not None:
            lowest = min(seq for seq, _, _ in self.pending)
            gap = (lowest - self.next) & _MASK
            if not 0 < (ack - lowest) & _MASK < _HALF or gap >= _HALF:
                break
            out += self._skip_to(lowest, gap, no)
        return out

    def _skip_to(self, lowest: int, gap: int, no: int) -> list[tuple[bytes, int, int]]:
        self.missing += gap
        self.next = lowest
        return [(b"", no, gap), *self._drain()]

    def flush(self) -> list[tuple[bytes, int, int]]:
        """At the end: what still waits behind gaps, each gap said as missing bytes."""
        out: list[tuple[bytes, int, int]] = []
        while self.pending and self.next is not None:
            lowest = min(self.pending, key=lambda entry: (entry[0] - self.next) & _MASK)  # type: ignore[operator]
            gap = (lowest[0] - self.next) & _MASK
            if gap >= _HALF:
                self.pending.remove(lowest)
                continue
            out += self._skip_to(lowest[0], gap, lowest[2])
        return out
