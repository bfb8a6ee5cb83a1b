""""Follow TCP stream": both directions of one connection reassembled in sequence order.

Each direction's bytes are delivered once and in order (retransmitted bytes
are dropped, early segments wait for the gap before them), and the two
directions interleave in the order the bytes became contiguous in the
capture — what each application read, and when. Consecutive bytes in the
same direction merge into one :class:`FollowChunk`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netlens.capture.frames import Tcp, decode
from netlens.textsafe import safe_bytes

if TYPE_CHECKING:
    from netlens.capture.store import PacketStore

_MASK = 0xFFFFFFFF


@dataclass
class FollowChunk:
    """Contiguous bytes sent in one direction (0: client → server, 1: server → client)."""

    direction: int
    data: bytes
    #: Packet numbers that carried these bytes.
    packets: list[int] = field(default_factory=list)


@dataclass
class Follow:
    """A followed stream: its two endpoints and the conversation in order."""

    stream: int
    client: str
    server: str
    chunks: list[FollowChunk]
    #: Bytes never captured (gaps in the sequence space), per direction.
    missing: tuple[int, int] = (0, 0)

    def total(self, direction: int) -> int:
        """Bytes delivered in ``direction``."""
        return sum(len(c.data) for c in self.chunks if c.direction == direction)

    def render(self, limit: int | None = None) -> list[str]:
        """Plain-text lines with a direction marker before each chunk; bytes escaped for the terminal."""
        lines = [f"Follow stream {self.stream}: client {self.client} ⇄ server {self.server}"]
        for chunk in self.chunks:
            arrow = (f"client {self.client} → server {self.server}" if chunk.direction == 0
                     else f"server {self.server} → client {self.client}")
            packets = ", ".join(f"#{p}" for p in chunk.packets[:6]) + (" …" if len(chunk.packets) > 6 else "")
            lines.append(f"── {arrow}: {len(chunk.data)} bytes ({packets})")
            data = chunk.data if limit is None else chunk.data[:limit]
            # Split on real newlines first, then escape: the escape of "\n" must not split.
            lines.extend(safe_bytes(line) for line in data.split(b"\n"))
            if len(data) < len(chunk.data):
                lines.append(f"… ({len(chunk.data) - len(data)} more bytes)")
        lines.append(f"── {self.total(0)} bytes client → server, {self.total(1)} bytes server → client"
                     + (f"; missing from the capture: {self.missing[0]} / {self.missing[1]} bytes"
                        if any(self.missing) else ""))
        return lines


class _Reassembler:
    """In-order delivery of one direction."""

    __slots__ = ("next_seq", "pending", "missing")

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, tuple[bytes, int]] = {}
        self.missing = 0

    def push(self, seq: int, data: bytes, no: int) -> list[tuple[bytes, int]]:
        """Take one segment; return the (bytes, packet) pieces that are now in order."""
        if self.next_seq is None:
            self.next_seq = seq
        out: list[tuple[bytes, int]] = []
        offset = (seq - self.next_seq) & _MASK
        if offset >= 0x80000000:
            overlap = (self.next_seq - seq) & _MASK
            if overlap >= len(data):
                return out
            data, seq = data[overlap:], self.next_seq
        elif offset:
            self.pending.setdefault(seq, (data, no))
            return out
        out.append((data, no))
        self.next_seq = (seq + len(data)) & _MASK
        progressed = True
        while progressed and self.pending:
            progressed = False
            for start in list(self.pending):
                pdata, pno = self.pending[start]
                lag = (self.next_seq - start) & _MASK
                if lag < 0x80000000:
                    del self.pending[start]
                    progressed = True
                    if lag < len(pdata):
                        out.append((pdata[lag:], pno))
                        self.next_seq = (start + len(pdata)) & _MASK
        return out

    def flush(self) -> list[tuple[bytes, int]]:
        """Deliver what still waits after a gap that never filled, counting the gap as missing."""
        out: list[tuple[bytes, int]] = []
        while self.pending:
            assert self.next_seq is not None
            start = min(self.pending, key=lambda s: (s - self.next_seq) & _MASK)  # type: ignore[operator]
            self.missing += (start - self.next_seq) & _MASK
            self.next_seq = start
            data, no = self.pending.pop(start)
            out += self.push(start, data, no)
        return out


def follow(store: PacketStore, stream_id: int) -> Follow:
    """Reassemble both directions of ``stream_id`` from the packets still in the ring."""
    stream = store.stream(stream_id)
    ring = store.ring
    sides = (_Reassembler(), _Reassembler())
    chunks: list[FollowChunk] = []

    def emit(direction: int, pieces: list[tuple[bytes, int]]) -> None:
        for data, no in pieces:
            if chunks and chunks[-1].direction == direction:
                last = chunks[-1]
                last.data += data
                if last.packets[-1] != no:
                    last.packets.append(no)
            else:
                chunks.append(FollowChunk(direction, data, [no]))

    for no in store.stream_packets(stream_id):
        try:
            frame = ring.frame(no)
        except IndexError:
            continue
        tcp = decode(frame, ring.linktype)
        if type(tcp) is not Tcp or not tcp.payload_length:
            continue
        d = 0 if tcp.sport == stream.client_port and tcp.src == stream.client_ip else 1
        data = frame[tcp.payload_offset:tcp.payload_offset + tcp.payload_length]
        emit(d, sides[d].push(tcp.seq, data, no))
    for d in (0, 1):
        emit(d, sides[d].flush())
    return Follow(stream_id, stream.client, stream.server, chunks, (sides[0].missing, sides[1].missing))
