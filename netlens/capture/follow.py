""""Follow TCP stream": both directions of one connection reassembled in sequence order.

Each direction's bytes are delivered once and in order (retransmitted bytes
are dropped, early segments wait for the gap before them), and the two
directions interleave in the order the bytes became contiguous in the
capture — what each application read, and when. Consecutive bytes in the
same direction merge into one :class:`FollowChunk`.

:func:`follow` works on plain data (the segments, not the store), so it can
run wherever the segments are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netlens.capture.reassembly import InOrder, Piece
from netlens.textsafe import safe_bytes


@dataclass(frozen=True)
class FollowChunk:
    """Contiguous bytes sent in one direction (0: client → server, 1: server → client)."""

    direction: int
    data: bytes
    #: Packet numbers that carried these bytes.
    packets: tuple[int, ...]

    def lines(self, limit: int | None = None) -> list[str]:
        """The bytes as terminal-safe text lines (at most ``limit`` bytes, then a line saying how many more)."""
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


def follow(stream_id: int, client: str, server: str, segments: Iterable[tuple[int, int, int, bytes]]) -> Follow:
    """Reassemble ``(no, direction, seq, payload)`` segments (capture order) of one stream."""
    sides = (InOrder(), InOrder())
    chunks: list[tuple[int, bytearray, list[int]]] = []

    def emit(direction: int, pieces: list[Piece]) -> None:
        for _seq, data, no in pieces:
            if chunks and chunks[-1][0] == direction:
                last = chunks[-1]
                last[1].extend(data)
                if last[2][-1] != no:
                    last[2].append(no)
            else:
                chunks.append((direction, bytearray(data), [no]))

    for no, direction, seq, data in segments:
        emit(direction, sides[direction].push(seq, data, no))
    for direction in (0, 1):
        emit(direction, sides[direction].flush())
    return Follow(stream_id, client, server,
                  tuple(FollowChunk(d, bytes(data), tuple(packets)) for d, data, packets in chunks),
                  (sides[0].missing, sides[1].missing))
