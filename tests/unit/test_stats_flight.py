"""The Wireshark rules behind ACK RTT, bytes in flight and the calculated window, segment by segment."""

from __future__ import annotations

from netlens.capture.frames import ACK, FIN, PSH, SYN
from netlens.capture.stats.flight import (
    SCALE_OFF,
    FlowState,
    analyze_flight,
    note_sack,
    note_syn,
    seq_after,
    window_bytes,
)
from netlens.capture.stats.series import estimate

MS = 1_000_000


def _handshake() -> tuple[FlowState, FlowState]:
    client, server = FlowState(), FlowState()
    note_syn(client, server, SYN, 7)
    analyze_flight(client, server, 1000, 0, SYN, 64240, 0, 1, 0)
    note_syn(server, client, SYN | ACK, 7)
    analyze_flight(server, client, 5000, 1001, SYN | ACK, 65160, 0, 2, 50 * MS)
    analyze_flight(client, server, 1001, 5001, ACK, 502, 0, 3, 51 * MS)
    return client, server


def test_syn_ack_times_the_syn_and_the_window_is_scaled_after_the_handshake() -> None:
    client, server = FlowState(), FlowState()
    note_syn(client, server, SYN, 7)
    first = analyze_flight(client, server, 1000, 0, SYN, 64240, 0, 1, 0)
    assert first.window_bytes == 64240  # a SYN's window is never scaled
    note_syn(server, client, SYN | ACK, 7)
    synack = analyze_flight(server, client, 5000, 1001, SYN | ACK, 65160, 0, 2, 50 * MS)
    assert (synack.ack_rtt_ns, synack.acked_no) == (50 * MS, 1)
    ack = analyze_flight(client, server, 1001, 5001, ACK, 502, 0, 3, 51 * MS)
    assert ack.ack_rtt_ns == 1 * MS and ack.acked_no == 2
    assert ack.window_bytes == 502 << 7


def test_scaling_is_off_when_one_syn_lacks_the_option() -> None:
    client, server = FlowState(), FlowState()
    note_syn(client, server, SYN, 7)
    note_syn(server, client, SYN | ACK, None)
    assert client.win_scale == server.win_scale == SCALE_OFF
    assert window_bytes(client, ACK, 1000) == 1000


def test_one_ack_for_two_segments_times_the_one_it_ends_at_and_flight_counts_unacked_bytes() -> None:
    client, server = _handshake()
    one = analyze_flight(client, server, 1001, 5001, ACK | PSH, 502, 1000, 4, 60 * MS)
    two = analyze_flight(client, server, 2001, 5001, ACK | PSH, 502, 1000, 5, 61 * MS)
    assert (one.bytes_in_flight, two.bytes_in_flight) == (1000, 2000)
    ack = analyze_flight(server, client, 5001, 3001, ACK, 509, 0, 6, 111 * MS)
    assert (ack.ack_rtt_ns, ack.acked_no) == (50 * MS, 5)
    assert client.unacked == []


def test_a_partial_ack_trims_the_segment_and_gives_no_rtt() -> None:
    client, server = _handshake()
    analyze_flight(client, server, 1001, 5001, ACK, 502, 1000, 4, 60 * MS)
    partial = analyze_flight(server, client, 5001, 1501, ACK, 509, 0, 5, 110 * MS)
    assert partial.ack_rtt_ns is None
    assert client.unacked[0].seq == 1501
    more = analyze_flight(client, server, 2001, 5001, ACK, 502, 100, 6, 111 * MS)
    assert more.bytes_in_flight == 600


def test_a_retransmission_is_listed_and_the_ack_times_the_first_copy_karn_flags_it() -> None:
    client, server = _handshake()
    analyze_flight(client, server, 1001, 5001, ACK, 502, 1000, 4, 60 * MS)
    again = analyze_flight(client, server, 1001, 5001, ACK, 502, 1000, 5, 260 * MS)
    assert again.resent
    ack = analyze_flight(server, client, 5001, 2001, ACK, 509, 0, 6, 300 * MS)
    assert ack.acked_no == 4 and ack.ack_rtt_ns == 240 * MS
    assert ack.karn is False  # the first copy was timed, so Wireshark's value is not a Karn sample...
    assert again.resent  # ...but the estimate skips it through the series (see karn_samples)


def test_fin_counts_one_sequence_number_but_no_byte_in_flight() -> None:
    client, server = _handshake()
    last = analyze_flight(client, server, 1001, 5001, ACK | FIN, 502, 300, 4, 60 * MS)
    assert last.bytes_in_flight == 300
    ack = analyze_flight(server, client, 5001, 1302, ACK, 509, 0, 5, 110 * MS)
    assert ack.acked_no == 4


def test_sack_blocks_of_the_receivers_latest_segment_are_not_in_flight() -> None:
    client, server = _handshake()
    for index in range(4):
        analyze_flight(client, server, 1001 + 1000 * index, 5001, ACK, 502, 1000, 4 + index, 60 * MS)
    note_sack(server, [(2001, 4001)])
    analyze_flight(server, client, 5001, 1001, ACK, 509, 0, 8, 110 * MS)
    sent = analyze_flight(client, server, 5001, 5001, ACK, 502, 1000, 9, 111 * MS)
    assert sent.bytes_in_flight == 5000 - 2000
    note_sack(server, [])
    analyze_flight(server, client, 5001, 1001, ACK, 509, 0, 10, 112 * MS)
    sent = analyze_flight(client, server, 6001, 5001, ACK, 502, 1000, 11, 113 * MS)
    assert sent.bytes_in_flight == 6000


def test_a_gap_stops_bytes_in_flight_until_the_other_side_acks() -> None:
    client, server = _handshake()
    analyze_flight(client, server, 1001, 5001, ACK, 502, 1000, 4, 60 * MS)
    gap = analyze_flight(client, server, 3001, 5001, ACK, 502, 1000, 5, 61 * MS)
    assert gap.bytes_in_flight is None
    analyze_flight(server, client, 5001, 2001, ACK, 509, 0, 6, 110 * MS)
    after = analyze_flight(client, server, 4001, 5001, ACK, 502, 1000, 7, 111 * MS)
    # 3001..5000: counted from the lowest listed segment, so bytes never captured are not in flight.
    assert after.bytes_in_flight == 2000


def test_sequence_comparison_wraps() -> None:
    assert seq_after(5, 0xFFFFFFF0)
    assert not seq_after(0xFFFFFFF0, 5)
    assert not seq_after(7, 7)


def test_textbook_estimates_follow_rfc_6298() -> None:
    estimated, deviation = estimate([100.0, 200.0])
    assert estimated == [100.0, 100.0 + (200.0 - 100.0) / 8]
    assert deviation == [50.0, 0.75 * 50.0 + 0.25 * 100.0]


def test_tracker_on_a_small_ring_forgets_evicted_packets_and_keeps_going() -> None:
    from pathlib import Path

    from netlens.capture import PacketRing, PacketStore, PcapReader
    from netlens.capture.stats import StatsTracker

    path = Path(__file__).resolve().parent.parent / "data" / "graphs" / "bulk-25ms-20mbit.pcap"
    reader = PcapReader(str(path))
    ring = PacketRing(max_packets=64, linktype=reader.linktype)
    store = PacketStore(ring)
    tracker = StatsTracker(ring, store)
    with reader:
        for ts_ns, frame, orig_len in reader:
            ring.append(ts_ns, frame, orig_len)
            store.update()
            tracker.update()
    assert tracker.last == ring.last > 400
    assert tracker.ack_rtt_ns(1) is None and tracker.window_bytes(1) is None  # evicted long ago
    recent = [tracker.window_bytes(no) for no in range(ring.first, ring.last + 1)]
    assert all(value is not None and value > 0 for value in recent)
    stats = tracker.stream(1)
    assert sum(stats.packets) == ring.last  # every packet counted once, evicted or not
