"""Packet-list rows stay what one pass of the analysis makes of them, however they are read.

The store works out what a row needs of its stream once between two updates
(``PacketStore._sides``): these tests read rows between small updates, one by
one and in screens, and after the ring evicted older packets, and check every
row against a store that analysed the same packets in one go.
"""

from __future__ import annotations

from support.synth import Conversation

from netlens.capture import PacketRing, PacketStore
from netlens.capture.summary import PacketSummary


def _echo_mid_stream(ring: PacketRing | None = None) -> Conversation:
    """An echo stream captured without its handshake (each side's ISN is learnt from its first segment, so
    the relative numbers of earlier rows change as the analysis goes on), requests of varied sizes (some
    echoed in two pieces, some two echoed in one), then a second stream with a handshake."""
    conv = Conversation(ring, isn=(0xFFFFFF00, 77), step_ns=125_000)
    for size in (5, 17, 1, 40, 3):
        request = bytes(range(0x41, 0x41 + size))
        conv.client(request)
        if size > 10:
            conv.server(request[:7])
            conv.server(request[7:])
        else:
            conv.server(request)
    conv.client(b"ab")
    conv.client(b"cd")
    conv.server(b"abcd")
    conv.client(b"not echoed")
    conv.server(b"something else")
    conv.close()
    second = Conversation(conv.ring, client=("127.0.0.1", 50001), start_ns=conv.now + 1_000_000)
    second.handshake(wscale=(7, 5))
    second.client(b"x" * 60)
    second.server(b"x" * 60)
    second.close()
    return conv


def _one_pass(conv: Conversation, last: int) -> list[PacketSummary]:
    """Rows 1..last by a store that analyses packets 1..last in one update."""
    ring = PacketRing(linktype=conv.ring.linktype)
    for _no, ts_ns, frame in conv.ring.read(1, last):
        ring.append(ts_ns, frame)
    store = PacketStore(ring)
    store.update(limit=None)
    return store.summaries(1, last)


def test_rows_read_between_updates_are_those_of_one_pass() -> None:
    conv = _echo_mid_stream()
    store = PacketStore(conv.ring)
    total = conv.ring.last
    assert total == 28
    described = set()
    for analysed in range(1, total + 1):
        store.update(limit=1)
        expected = _one_pass(conv, analysed)
        # A screen, then each row alone, then the screen again: the same rows every time.
        assert store.summaries(1, analysed) == expected
        assert [store.summary(no) for no in range(1, analysed + 1)] == expected
        assert store.summaries(1, analysed) == expected
        described |= {row.info for row in expected if row.info.startswith("echo of")}
    # The stream's own numbers, once both sides' first segments were seen (Wireshark's, mid-stream: from 1).
    rows = store.summaries(1, total)
    assert [(row.seq, row.ack) for row in rows[:3]] == [(1, 1), (1, 6), (6, 6)]
    # Echoes of one request, of part of one, and of two at once were all named.
    assert {"echo of 5 bytes from #1, 0.125 ms later", "echo of 7 bytes from #3, 0.125 ms later",
            "echo of 10 bytes from #3, 0.250 ms later", "echo of 4 bytes from #13–#14, 0.125 ms later",
            "echo of 60 bytes from #24, 1.000 ms later"} <= described
    assert (rows[15].info, rows[16].info) == ("'not echoed'", "'something else'")
    assert rows[24].win == 16384  # the second stream's window scale (5), once its handshake was analysed


def test_rows_are_the_same_after_the_ring_evicts_older_packets() -> None:
    conv = _echo_mid_stream()
    reference = _one_pass(conv, conv.ring.last)
    # Appended to a ring of 8 packets and analysed a few at a time, rows read after every step: each row,
    # once analysed, stays the one-pass row while it is stored, though the ring forgets the first stream.
    ring = PacketRing(max_packets=8)
    store = PacketStore(ring)
    seen: dict[int, PacketSummary] = {}
    for no, ts_ns, frame in conv.ring.read(1):
        ring.append(ts_ns, frame)
        if no % 3 and no != conv.ring.last:
            continue
        store.update(limit=None)
        for row in store.summaries(store.first, store.last):
            assert seen.setdefault(row.no, row) == row
    assert store.first == 21 and not any(stream.id == 1 for stream in store.streams())
    assert store.summaries(store.first, store.last) == reference[store.first - 1:]
    assert set(seen) == set(range(1, conv.ring.last + 1))
