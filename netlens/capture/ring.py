"""A bounded, memory-compact store of captured frames, addressed by packet number.

Frames are packed end to end into chunks (one ``bytearray`` per chunk, sealed to
``bytes`` when full) with two ``array`` columns per chunk: the frame's start
offset and its kernel timestamp in nanoseconds. That costs 12 bytes per packet
beyond the frame itself, instead of the ~100 bytes of a Python object per
packet. When the ring is full the oldest *chunk* is evicted whole, so eviction
is O(1) per chunk and packet numbers never shift: packet 1 is the first packet
ever appended (1-based, like Wireshark) and keeps its number until it is gone.

Thread model: one writer (the capture thread, or a pcap reader) appends; any
number of readers read. A single lock guards both; appends hold it for a few
hundred nanoseconds and readers copy what they need out under it.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_right
from collections.abc import Iterator

#: Link-layer type of the frames (pcap LINKTYPE_*); lo and Ethernet are 1.
LINKTYPE_ETHERNET = 1

DEFAULT_MAX_PACKETS = 1_000_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Largest chunk; small enough that evicting one frees a small slice of the ring.
MAX_CHUNK_BYTES = 4 * 1024 * 1024
MAX_CHUNK_PACKETS = 65536


class _Chunk:
    """Consecutive packets: frames concatenated in ``data``, one offset and timestamp each."""

    __slots__ = ("first", "data", "offsets", "stamps")

    def __init__(self, first: int) -> None:
        self.first = first
        self.data: bytearray | bytes = bytearray()
        self.offsets = array("I")
        self.stamps = array("q")

    def __len__(self) -> int:
        return len(self.offsets)

    def span(self, index: int) -> tuple[int, int]:
        """Start and end offsets of the ``index``-th frame of this chunk."""
        offsets = self.offsets
        start = offsets[index]
        end = offsets[index + 1] if index + 1 < len(offsets) else len(self.data)
        return start, end


class PacketRing:
    """Bounded ring of (timestamp, frame) records addressed by absolute packet number.

    ``max_packets`` and ``max_bytes`` bound what is stored (frame bytes, not
    counting the 12-byte per-packet overhead); the oldest packets are evicted
    a chunk at a time (at most 1/16 of the ring) to make room. ``linktype`` is
    the pcap link-layer type of every frame in the ring.
    """

    def __init__(
        self,
        max_packets: int = DEFAULT_MAX_PACKETS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        linktype: int = LINKTYPE_ETHERNET,
    ) -> None:
        if max_packets < 1 or max_bytes < 1:
            raise ValueError("a ring must hold at least one packet and one byte")
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.linktype = linktype
        self._chunk_packets = max(1, min(MAX_CHUNK_PACKETS, max_packets // 16))
        self._chunk_bytes = max(1, min(MAX_CHUNK_BYTES, max_bytes // 16))
        self._lock = threading.Lock()
        self._chunks: list[_Chunk] = []
        self._starts: list[int] = []  # first packet number of each chunk, for bisect
        self._tail: _Chunk | None = None
        #: Packets and bytes that still fit in the bounds and the tail chunk (0: append() works it out).
        self._room_packets = 0
        self._room_bytes = 0
        self._last = 0
        self._count = 0
        self._bytes = 0
        self._evicted = 0
        self._first_ts_ns: int | None = None
        # Original wire length of the rare frames stored truncated (snaplen), by number.
        self._orig: dict[int, int] = {}

    # ------------------------------------------------------------------ writing

    def append(self, ts_ns: int, frame: bytes | bytearray | memoryview, orig_len: int | None = None) -> int:
        """Store one frame captured at ``ts_ns`` (epoch nanoseconds); returns its packet number."""
        size = len(frame)
        with self._lock:
            # The capture thread's per-packet path: one test of the room left (see _make_way), not four.
            if self._room_packets and size <= self._room_bytes:
                chunk = self._tail
                assert chunk is not None
            else:
                chunk = self._make_way(size)
            self._room_packets -= 1
            self._room_bytes -= size
            data = chunk.data
            chunk.offsets.append(len(data))
            data += frame  # the tail chunk's data is a bytearray
            chunk.stamps.append(ts_ns)
            self._last += 1
            self._count += 1
            self._bytes += size
            if self._first_ts_ns is None:
                self._first_ts_ns = ts_ns
            if orig_len is not None and orig_len != size:
                self._orig[self._last] = orig_len
            return self._last

    def _make_way(self, size: int) -> _Chunk:
        """Evict and start a chunk as the bounds require for a frame of ``size`` bytes; returns the tail.

        Also works out the room left after it: how many more packets, and bytes, fit in both the
        ring's bounds and the tail chunk; append() takes the fast path while they do.
        """
        if self._count and (self._count >= self.max_packets or self._bytes + size > self.max_bytes):
            self._make_room(size)
        chunk = self._tail
        if chunk is None or (
            len(chunk.offsets) >= self._chunk_packets
            or (chunk.offsets and len(chunk.data) + size > self._chunk_bytes)
        ):
            chunk = self._new_chunk()
        self._room_packets = min(self.max_packets - self._count, self._chunk_packets - len(chunk.offsets))
        self._room_bytes = min(self.max_bytes - self._bytes, self._chunk_bytes - len(chunk.data))
        if size > self._room_bytes:
            # An oversized frame still goes into an empty ring or chunk; the next append works out again.
            self._room_packets, self._room_bytes = 1, size
        return chunk

    def _new_chunk(self) -> _Chunk:
        if self._tail is not None:
            # Sealing drops bytearray's growth slack (up to 1/8) and makes the chunk immutable.
            self._tail.data = bytes(self._tail.data)
        chunk = _Chunk(self._last + 1)
        self._chunks.append(chunk)
        self._starts.append(chunk.first)
        self._tail = chunk
        return chunk

    def _make_room(self, size: int) -> None:
        while self._chunks and (self._count >= self.max_packets or self._bytes + size > self.max_bytes):
            chunk = self._chunks.pop(0)
            self._starts.pop(0)
            if chunk is self._tail:
                self._tail = None
            self._count -= len(chunk)
            self._bytes -= len(chunk.data)
            self._evicted += len(chunk)
            if self._orig:
                end = chunk.first + len(chunk)
                for no in [n for n in self._orig if n < end]:
                    del self._orig[no]

    def clear(self, renumber: bool = False) -> int:
        """Forget every stored packet; returns how many. ``renumber``: the next packet is number 1 again.

        Without ``renumber`` numbering continues where it was (packets that
        were stored count as evicted). With it, the ring starts afresh,
        relative times included; readers holding old numbers must start over.
        """
        with self._lock:
            forgotten = self._count
            if renumber:
                self._last = 0
                self._evicted = 0
                self._first_ts_ns = None
            else:
                self._evicted += self._count
            self._chunks.clear()
            self._starts.clear()
            self._tail = None
            self._count = 0
            self._bytes = 0
            self._room_packets = self._room_bytes = 0
            self._orig.clear()
            return forgotten

    # ------------------------------------------------------------------ reading

    @property
    def first(self) -> int:
        """Number of the oldest stored packet (``last + 1`` when the ring is empty)."""
        with self._lock:
            return self._chunks[0].first if self._chunks else self._last + 1

    @property
    def last(self) -> int:
        """Number of the newest packet ever appended (0 before the first)."""
        return self._last

    def __len__(self) -> int:
        return self._count

    @property
    def evicted(self) -> int:
        """Packets evicted so far to stay within the bounds."""
        return self._evicted

    @property
    def bytes_stored(self) -> int:
        """Frame bytes currently stored."""
        return self._bytes

    @property
    def first_ts_ns(self) -> int | None:
        """Timestamp of the first packet ever appended: the origin of relative times."""
        return self._first_ts_ns

    def _locate(self, no: int) -> tuple[_Chunk, int]:
        # Caller holds the lock.
        index = bisect_right(self._starts, no) - 1
        if index < 0 or no > self._last:
            if no > self._last:
                raise IndexError(f"there is no packet {no} yet (the last is {self._last})")
            raise IndexError(f"packet {no} was evicted from the ring")
        chunk = self._chunks[index]
        return chunk, no - chunk.first

    def __contains__(self, no: object) -> bool:
        if not isinstance(no, int):
            return False
        with self._lock:
            return bool(self._chunks) and self._chunks[0].first <= no <= self._last

    def frame(self, no: int) -> bytes:
        """The bytes of packet ``no``; IndexError if it was evicted or does not exist yet."""
        return self.record(no)[1]

    def record(self, no: int) -> tuple[int, bytes]:
        """``(ts_ns, frame)`` of packet ``no`` under one lock acquisition.

        What ``_locate`` and ``span`` do, inline: the packet list reads every visible row this way.
        """
        with self._lock:
            index = bisect_right(self._starts, no) - 1
            if index < 0 or no > self._last:
                self._locate(no)  # raises the IndexError that says why
            chunk = self._chunks[index]
            i = no - chunk.first
            offsets, data = chunk.offsets, chunk.data
            frame = data[offsets[i]:offsets[i + 1] if i + 1 < len(offsets) else len(data)]
            # A sealed chunk's slice is bytes already; the tail's is a bytearray (copied to bytes).
            return chunk.stamps[i], frame if type(frame) is bytes else bytes(frame)

    def ts_ns(self, no: int) -> int:
        """Capture time of packet ``no`` in epoch nanoseconds."""
        with self._lock:
            chunk, i = self._locate(no)
            return chunk.stamps[i]

    def ts(self, no: int) -> float:
        """Capture time of packet ``no`` in epoch seconds (the ``time.time()`` clock)."""
        return self.ts_ns(no) / 1e9

    def orig_len(self, no: int) -> int:
        """Length of packet ``no`` on the wire (larger than the stored frame only if it was truncated)."""
        with self._lock:
            chunk, i = self._locate(no)
            start, end = chunk.span(i)
            return self._orig.get(no, end - start)

    def read(self, start: int, stop: int | None = None, limit: int | None = None) -> list[tuple[int, int, bytes]]:
        """``(number, ts_ns, frame)`` for stored packets ``start..stop`` inclusive, oldest first.

        Evicted numbers are skipped; ``limit`` caps how many records one call
        copies out, so a consumer that fell far behind catches up in slices.
        """
        return list(zip(*self.columns(start, stop, limit), strict=True))

    def columns(self, start: int, stop: int | None = None, limit: int | None = None
                ) -> tuple[range, list[int], list[bytes]]:
        """What :meth:`read` returns, as three columns: packet numbers, timestamps (ns) and frames.

        Stored numbers are consecutive, so the numbers are a ``range``. A consumer
        looping over every packet zips them (no tuple kept per packet).
        """
        stamps: list[int] = []
        frames: list[bytes] = []
        with self._lock:
            if not self._chunks:
                return range(start, start), stamps, frames
            stop = self._last if stop is None else min(stop, self._last)
            start = max(start, self._chunks[0].first)
            if limit is not None:
                stop = min(stop, start + limit - 1)
            if start > stop:
                return range(start, start), stamps, frames
            index = bisect_right(self._starts, start) - 1
            no = start
            while no <= stop and index < len(self._chunks):
                chunk = self._chunks[index]
                data, offsets = chunk.data, chunk.offsets
                count = len(offsets)
                i = no - chunk.first
                end_i = min(count, stop - chunk.first + 1)
                # Whole columns at once, one slice per frame: a sealed chunk is bytes already (its
                # slices are the frames); a slice of the tail's bytearray is copied to bytes.
                begins = offsets[i:end_i]
                ends = [*offsets[i + 1:end_i], offsets[end_i] if end_i < count else len(data)]
                if type(data) is bytes:
                    frames += [data[begin:end] for begin, end in zip(begins, ends, strict=True)]
                else:
                    frames += [bytes(data[begin:end]) for begin, end in zip(begins, ends, strict=True)]
                stamps += chunk.stamps[i:end_i]
                no += end_i - i
                index += 1
        return range(start, no), stamps, frames

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        """Every stored packet as ``(number, ts_ns, frame)``, read in slices under the lock."""
        no = self.first
        while True:
            batch = self.read(no, limit=4096)
            if not batch:
                return
            yield from batch
            no = batch[-1][0] + 1

    def memory_bytes(self) -> int:
        """Approximate bytes held by the ring (frames, offset/timestamp columns, chunk objects)."""
        with self._lock:
            total = 0
            for chunk in self._chunks:
                data = chunk.data
                total += data.__sizeof__() + chunk.offsets.__sizeof__() + chunk.stamps.__sizeof__() + 96
            return total
