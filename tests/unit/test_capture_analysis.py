"""Summaries and Wireshark-style analysis on hand-built conversations (tests/support/synth.py)."""

from __future__ import annotations

import pytest
from support.synth import Conversation, tcp_frame, tcp_options

from netlens.capture import RULES, PacketRing, PacketStore


def analysed(conv: Conversation, ports: tuple[int, ...] = (65432,)) -> PacketStore:
    store = PacketStore(conv.ring, server_ports=ports)
    store.update()
    return store


def marks(store: PacketStore, no: int) -> tuple[str, ...]:
    return store.summary(no).analysis


def test_handshake_summary_relative_numbers_and_scaled_window() -> None:
    conv = Conversation(isn=(0xFFFFFFF0, 123456))  # the client's sequence numbers wrap around 2**32
    conv.handshake(wscale=(7, 5), window=65495)
    request = conv.client(b"x" * 146, window=512)
    conv.server(flags="A", window=1000)
    store = analysed(conv)
    syn, synack, ack = (store.summary(no) for no in (1, 2, 3))
    assert (syn.flags, syn.seq, syn.ack, syn.win) == ("S", 0, 0, 65495)
    assert (synack.flags, synack.seq, synack.ack, synack.win) == ("SA", 0, 1, 65495)
    assert (ack.flags, ack.seq, ack.ack) == ("A", 1, 1)
    assert ack.win == 512 << 7, "the client's windows scale by its own WS option (7)"
    assert store.summary(5).win == 1000 << 5, "the server's by 5"
    row = store.summary(request)
    assert (row.flags, row.seq, row.ack, row.len) == ("PA", 1, 1, 146)
    assert syn.info == "MSS=65495 SACK_PERM WS=128" and synack.info == "MSS=65495 SACK_PERM WS=32"
    assert (syn.src, syn.sport, syn.dst, syn.dport) == ("127.0.0.1", 50000, "127.0.0.1", 65432)
    assert syn.stream == row.stream == 1 and (syn.direction, synack.direction) == (0, 1)
    assert syn.rel_time == 0 and abs(row.rel_time - 0.003) < 1e-9
    assert syn.time == pytest.approx(1_700_000_000.001)


def test_window_scaling_needs_both_sides() -> None:
    conv = Conversation()
    conv.handshake(wscale=(7, None))
    conv.client(b"abc", window=512)
    store = analysed(conv)
    assert store.summary(4).win == 512


def test_capture_started_mid_stream_counts_from_one() -> None:
    conv = Conversation(isn=(777, 999))
    conv.client(b"hello")
    conv.server(b"world")
    store = analysed(conv)
    first, second = store.summary(1), store.summary(2)
    assert (first.seq, first.ack, second.seq, second.ack) == (1, 1, 1, 6)
    stream = store.stream(1)
    assert stream.key.server == ("127.0.0.1", 65432) and stream.completeness() == "data"


def test_completeness_teardown_and_who_closed_first() -> None:
    conv = Conversation()
    conv.handshake()
    conv.client(b"q" * 10)
    conv.server(b"a" * 10)
    conv.close(first=1)
    store = analysed(conv)
    stream = store.stream(1)
    assert stream.completeness() == "SYN, SYN-ACK, ACK, data, FIN"
    assert stream.first_fin == 1 and stream.closed
    assert "server closed first" in stream.describe()
    assert store.stream_packets(1) == list(range(1, 9))
    assert all(not store.summary(no).analysis for no in range(1, 9))


def test_retransmission_and_spurious_retransmission() -> None:
    conv = Conversation()
    conv.handshake()
    start = conv.next[0]
    conv.client(b"a" * 100)
    resent = conv.client(b"a" * 100, seq=start)
    conv.server(flags="A")  # acknowledges the 100 bytes
    spurious = conv.client(b"a" * 100, seq=start)
    store = analysed(conv)
    assert marks(store, resent) == ("retransmission",)
    assert marks(store, spurious) == ("spurious-retransmission",)
    rule = store.analysis(resent)[0].rule
    assert rule.startswith("Retransmission: this segment's sequence range was already sent earlier")
    assert store.flagged() == [resent, spurious]


def test_duplicate_acks_then_fast_retransmission() -> None:
    conv = Conversation()
    conv.handshake()
    start = conv.next[0]
    conv.client(b"a" * 100)
    conv.client(b"b" * 100)  # say this one is lost...
    conv.client(b"c" * 100, seq=start + 200)
    conv.next[0] = start + 300
    first = conv.server(flags="A", ack=start + 100)
    dup1 = conv.server(flags="A", ack=start + 100)
    dup2 = conv.server(flags="A", ack=start + 100)
    fast = conv.client(b"b" * 100, seq=start + 100)
    store = analysed(conv)
    assert marks(store, first) == ()
    assert marks(store, dup1) == ("dup-ack",) and marks(store, dup2) == ("dup-ack",)
    assert [m.detail for m in store.analysis(dup2)] == [f"#2 of packet {first}"]
    assert marks(store, fast) == ("fast-retransmission",)


def test_lost_segment_then_out_of_order_or_retransmission_by_timing() -> None:
    for delay_ns, expected in ((1_000_000, "out-of-order"), (50_000_000, "retransmission")):
        conv = Conversation()
        conv.handshake()
        start = conv.next[0]
        ahead = conv.client(b"b" * 100, seq=start + 100)
        late = conv.client(b"a" * 100, seq=start, delay_ns=delay_ns)
        store = analysed(conv)
        assert marks(store, ahead) == ("lost-segment",)
        assert store.analysis(ahead)[0].detail == "100 bytes missing before this segment"
        assert marks(store, late) == (expected,), delay_ns


def test_zero_window_window_update_and_window_full() -> None:
    conv = Conversation()
    conv.handshake(wscale=(0, 0))
    conv.server(flags="A", window=300)
    full = conv.client(b"x" * 300)
    zero = conv.server(flags="A", window=0)
    update = conv.server(flags="A", window=4000)
    store = analysed(conv)
    assert marks(store, full) == ("window-full",)
    assert marks(store, zero) == ("zero-window",)
    assert marks(store, update) == ("window-update",)
    assert store.analysis(update)[0].detail == "window 0 → 4000 bytes"


def test_keep_alive_and_its_ack() -> None:
    conv = Conversation()
    conv.handshake()
    conv.client(b"data")
    conv.server(flags="A")
    probe = conv.client(flags="A", seq=conv.next[0] - 1)
    answer = conv.server(flags="A")
    store = analysed(conv)
    assert marks(store, probe) == ("keep-alive",)
    assert marks(store, answer) == ("keep-alive-ack",)


def test_zero_window_probe() -> None:
    conv = Conversation()
    conv.handshake(wscale=(0, 0))
    conv.client(b"x" * 10)
    conv.server(flags="A", window=0)
    probe = conv.client(b"y")
    reply = conv.server(flags="A", window=0, ack=conv.next[0] - 1)
    store = analysed(conv)
    assert "zero-window-probe" in marks(store, probe)
    assert marks(store, reply) == ("zero-window", "zero-window-probe-ack")


def test_reset_and_acked_unseen() -> None:
    conv = Conversation()
    conv.handshake()
    unseen = conv.server(flags="A", ack=conv.next[0] + 500)
    reset = conv.client(flags="RA")
    store = analysed(conv)
    assert marks(store, unseen) == ("ack-unseen",)
    assert marks(store, reset) == ("reset",)
    assert store.analysis(reset)[0].detail == "sent by the client"
    assert "RST" in store.stream(1).completeness() and store.stream(1).closed


def test_every_rule_has_a_plain_sentence() -> None:
    for name, rule in RULES.items():
        assert rule.name == name and rule.label.startswith("TCP ")
        assert rule.rule.endswith(".") and ": " in rule.rule and "\n" not in rule.rule


def test_port_reuse_starts_a_new_stream() -> None:
    conv = Conversation()
    conv.handshake()
    conv.close()
    conv.next = [90000, 7000]
    conv.handshake()
    store = analysed(conv)
    assert [store.summary(no).stream for no in range(1, 10)] == [1] * 6 + [2] * 3
    assert store.summary(7).seq == 0 and len(store.streams()) == 2
    # A retransmitted SYN (same ISN) stays in its stream.
    conv2 = Conversation()
    conv2.client(flags="S")
    conv2.client(flags="S", seq=1000)
    assert [s.stream for s in analysed(conv2).summaries(1, 2)] == [1, 1]


def test_server_side_is_guessed_without_a_handshake() -> None:
    ring = PacketRing()
    ring.append(1, tcp_frame("10.0.0.2", "10.0.0.1", 80, 43210, payload=b"HTTP/1.1 200 OK"))
    store = PacketStore(ring, server_ports=())
    store.update()
    stream = store.stream(1)
    assert stream.key.server == ("10.0.0.1", 80) or stream.key.server == ("10.0.0.2", 80)
    assert stream.server_port == 80
    assert store.summary(1).info == "'HTTP/1.1 200 OK'"


def test_update_is_incremental() -> None:
    conv = Conversation()
    conv.handshake()
    store = PacketStore(conv.ring)
    assert store.update() == 3 and store.last == 3
    assert store.update() == 0
    conv.client(b"more")
    assert store.pending == 1 and store.update() == 1 and store.summary(4).seq == 1


def test_summary_of_an_unanalysed_packet_still_works() -> None:
    conv = Conversation()
    conv.handshake()
    store = PacketStore(conv.ring)
    row = store.summary(2)
    assert row.flags == "SA" and row.stream is None


def test_eviction_prunes_old_streams_and_flags() -> None:
    ring = PacketRing(max_packets=160, max_bytes=1 << 30)
    store = PacketStore(ring)
    for i in range(50):
        conv = Conversation(ring, client=("127.0.0.1", 40000 + i))
        conv.handshake()
        conv.client(b"x", seq=conv.next[0] + 10)  # flagged: lost segment
        store.update()
    assert ring.evicted > 0
    assert all(s.last_no >= ring.first for s in store.streams())
    assert len(store.streams()) <= 160 // 4 + 1
    assert min(store.flagged()) >= ring.first
    with pytest.raises(IndexError):
        store.summary(1)
    assert store.stream_of(1) is None


def test_consumer_that_falls_behind_skips_evicted_packets() -> None:
    ring = PacketRing(max_packets=32, max_bytes=1 << 30)
    store = PacketStore(ring)
    for i in range(100):
        ring.append(i, tcp_frame(sport=40000 + i, flags="S"))
    store.update()
    assert store.skipped == ring.first - 1 and store.last == 100
    assert store.summary(100).stream is not None


def test_summaries_of_a_long_exchange_keep_relative_numbers() -> None:
    # Every row of a 4,000-packet list is computable on its own (the UI draws only visible rows).
    conv = Conversation()
    conv.handshake()
    for _ in range(2000):
        conv.client(b"x" * 32)
        conv.server(b"x" * 32)
    store = analysed(conv)
    last_client = store.summary(3 + 2 * 2000 - 1)
    last_server = store.summary(3 + 2 * 2000)
    assert (last_client.seq, last_client.len) == (1 + 32 * 1999, 32)
    assert (last_server.seq, last_server.ack) == (1 + 32 * 1999, 1 + 32 * 2000)
    assert len(tcp_options(mss=1)) % 4 == 0


def test_no_rule_fires_outside_the_segment_kinds_it_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    # The analysis runs a rule only on the segment kinds its decorator names (for speed); a rule
    # changed to fire on another kind must say so. Run every rule on every segment and compare.
    from netlens.capture import analysis
    from netlens.capture.analysis.segment import KINDS

    def conversations() -> list[Conversation]:
        convs = []
        for delay in (1_000_000, 50_000_000):
            conv = Conversation()
            conv.handshake(wscale=(0, 0))
            start = conv.next[0]
            conv.client(b"b" * 100, seq=start + 100)
            conv.client(b"a" * 100, seq=start, delay_ns=delay)
            conv.server(flags="A", window=300)
            conv.server(flags="A", window=300)
            conv.server(flags="A", window=300)
            conv.client(b"c" * 100, seq=start + 200)
            conv.client(b"x" * 100)
            conv.server(flags="A", window=0)
            conv.client(b"y")
            conv.server(flags="A", window=0, ack=conv.next[0] - 1)
            conv.client(flags="A", seq=conv.next[0] - 1)
            conv.server(flags="A", window=4000)
            conv.client(b"a" * 100, seq=start)
            conv.server(flags="A", ack=conv.next[0] + 500)
            conv.client(flags="RA")
            convs.append(conv)
        return convs

    gated = [analysed(conv).summaries(1, conv.ring.last) for conv in conversations()]
    every = tuple((rule.check, rule.name) for rule in RULES.values())
    monkeypatch.setattr(analysis, "_CHECKS", {kind: every for kind in KINDS})
    ungated = [analysed(conv).summaries(1, conv.ring.last) for conv in conversations()]
    assert [[row.analysis for row in rows] for rows in gated] == [[row.analysis for row in rows] for rows in ungated]
    assert {name for rows in gated for row in rows for name in row.analysis} >= {
        "lost-segment", "dup-ack", "zero-window", "window-update", "reset", "ack-unseen"}
