"""The packet ring: stable 1-based numbers, eviction by packets and bytes, range reads, threads, memory."""

from __future__ import annotations

import threading
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.synth import tcp_frame

from netlens.capture.ring import PacketRing


def frame_of(no: int, size: int = 100) -> bytes:
    return no.to_bytes(4, "big") * (size // 4)


def test_numbers_start_at_one_and_read_back() -> None:
    ring = PacketRing()
    assert (ring.first, ring.last, len(ring)) == (1, 0, 0)
    for no in range(1, 11):
        assert ring.append(1_000 * no, frame_of(no)) == no
    assert (ring.first, ring.last, len(ring)) == (1, 10, 10)
    assert ring.frame(7) == frame_of(7)
    assert ring.ts_ns(7) == 7_000 and ring.ts(7) == 7e-6
    assert ring.record(3) == (3_000, frame_of(3))
    assert [no for no, _, _ in ring.read(4, 6)] == [4, 5, 6]
    assert [no for no, _, _ in ring.read(8)] == [8, 9, 10]
    assert [no for no, _, _ in ring.read(2, limit=2)] == [2, 3]
    assert ring.read(11) == []
    with pytest.raises(IndexError, match="no packet 11 yet"):
        ring.frame(11)


def test_eviction_by_packets_keeps_numbers_stable() -> None:
    ring = PacketRing(max_packets=64, max_bytes=1 << 30)
    for no in range(1, 201):
        ring.append(no, frame_of(no))
        assert len(ring) <= 64
    assert ring.last == 200 and ring.evicted == 200 - len(ring)
    assert len(ring) >= 64 - 64 // 16  # at most one chunk short of full
    assert ring.frame(200) == frame_of(200) and ring.frame(ring.first) == frame_of(ring.first)
    with pytest.raises(IndexError, match="evicted"):
        ring.frame(1)
    assert 1 not in ring and 200 in ring
    assert [no for no, _, _ in ring.read(1, 500)] == list(range(ring.first, 201))


def test_eviction_by_bytes() -> None:
    ring = PacketRing(max_packets=10_000, max_bytes=16_000)
    for no in range(1, 1001):
        ring.append(no, frame_of(no, 200))
        assert ring.bytes_stored <= 16_000
    assert ring.bytes_stored >= 16_000 - 1_000 - 200
    assert ring.frame(1000) == frame_of(1000, 200)
    assert ring.evicted == 1000 - len(ring)


def test_frames_larger_than_a_chunk_and_truncated_lengths() -> None:
    ring = PacketRing(max_packets=100, max_bytes=1 << 20)
    big = bytes(range(256)) * 300  # 76,800 bytes, larger than the 64 KiB chunk target
    ring.append(1, b"small")
    ring.append(2, big, orig_len=100_000)
    ring.append(3, b"after")
    assert ring.frame(2) == big and ring.orig_len(2) == 100_000 and ring.orig_len(1) == 5
    assert ring.frame(3) == b"after"


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 120), st.integers(1, 4000),
       st.lists(st.one_of(st.just(0), st.integers(1, 99), st.integers(100, 3000)), max_size=300))
def test_bounds_hold_for_any_frame_sizes(max_packets: int, max_bytes: int, sizes: list[int]) -> None:
    """Empty, small and oversized frames in any order: the ring stays in its bounds (one frame larger
    than the whole budget is kept alone) and keeps the newest frames, in order, under their numbers."""
    ring = PacketRing(max_packets=max_packets, max_bytes=max_bytes)
    appended = []
    for no, size in enumerate(sizes, 1):
        frame = bytes([no % 256]) * size
        assert ring.append(no, frame) == no
        appended.append(frame)
        assert 1 <= len(ring) <= max_packets and ring.last == no and ring.evicted == no - len(ring)
        assert ring.bytes_stored <= max_bytes or len(ring) == 1
        assert [frame for _, _, frame in ring.read(ring.first)] == appended[ring.first - 1:]
        # Eviction goes a chunk (at most a sixteenth of the bounds) at a time, and only when needed.
        kept = appended[ring.first - 1:]
        assert ring.first == 1 or len(kept) + max(1, max_packets // 16) + 1 > max_packets \
            or sum(map(len, kept)) + max(1, max_bytes // 16) + 3000 > max_bytes


def test_clear_keeps_numbering() -> None:
    ring = PacketRing()
    ring.append(1, b"a")
    ring.clear()
    assert len(ring) == 0 and ring.first == 2 and ring.evicted == 1
    assert ring.append(2, b"b") == 2 and list(ring) == [(2, 2, b"b")]


def test_one_writer_many_reads_stay_consistent() -> None:
    ring = PacketRing(max_packets=5_000, max_bytes=1 << 30)
    total = 20_000
    problems: list[str] = []

    def write() -> None:
        for no in range(1, total + 1):
            ring.append(no, frame_of(no, 40))

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive() or ring.last < total:
        last = ring.last
        for no, ts, frame in ring.read(max(1, last - 100), last):
            if ts != no or frame != frame_of(no, 40):
                problems.append(f"packet {no} has ts {ts} and the wrong bytes")
        if problems or not writer.is_alive():
            break
    writer.join(30)
    assert not problems, problems[:3]
    assert ring.last == total and ring.frame(total) == frame_of(total, 40)


def test_memory_overhead_per_packet_is_small() -> None:
    frame = tcp_frame(payload=b"x" * 32)
    count = 100_000
    ring = PacketRing(max_packets=count, max_bytes=1 << 30)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for no in range(count):
        ring.append(no, frame)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    overhead = used / count - len(frame)
    # 8-byte timestamp + 4-byte offset, plus the unsealed tail chunk's slack.
    assert overhead < 24, f"{overhead:.1f} bytes per packet beyond the frame"
    assert ring.memory_bytes() >= count * len(frame)
