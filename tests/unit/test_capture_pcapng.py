"""pcapng in and out on the witness corpus: sections, interfaces, clocks, MPLS, fragments; comments tshark sees."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support import witness_corpus, witness_edits

from netlens.capture import PacketRing, PacketStore, read_pcap
from netlens.capture.frames import Other, Tcp, decode
from netlens.capture.pcapng import MAX_TS_NS, PcapngWriter, write_pcapng

WITNESS = Path(__file__).resolve().parents[1] / "data" / "witness"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("witness")
    witness_corpus.derive(WITNESS, out)
    return out


def tshark_frames(path: Path, *fields: str, display_filter: str | None = None) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t"]
    if display_filter:
        argv += ["-Y", display_filter]
    for name in fields:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout
    return [line.split("\t") for line in out.splitlines()]


def tcp_facts(path: Path) -> list[tuple[int, int, int, int]]:
    """(frame number, seq, ack, payload length) of every TCP frame, as netlens reads them."""
    result = read_pcap(path)
    facts = []
    for no, _ts, frame in result.ring:
        tcp = decode(frame, result.ring.linktype)
        if isinstance(tcp, Tcp):
            facts.append((no, tcp.seq, tcp.ack, tcp.payload_length))
    return facts


def tshark_tcp_facts(path: Path) -> list[tuple[int, int, int, int]]:
    rows = tshark_frames(path, "frame.number", "tcp.seq_raw", "tcp.ack_raw", "tcp.len", display_filter="tcp")
    return [(int(no), int(seq), int(ack or 0), int(size)) for no, seq, ack, size in rows]


@pytest.mark.parametrize("name", ["two_sections.pcapng", "spliced.pcapng", "vlan.pcap", "mpls.pcap"])
def test_frames_and_numbers_match_tshark(corpus: Path, name: str) -> None:
    path = corpus / name
    ours = tcp_facts(path)
    assert ours == tshark_tcp_facts(path)
    assert len(ours) >= 30  # the whole file was read: both sections, every interface, every label stack


def test_second_section_and_spliced_link_types_are_read_to_the_end(corpus: Path) -> None:
    _, records = witness_edits.read_records(WITNESS / "egress_drops.pcap")
    sections = read_pcap(corpus / "two_sections.pcapng")
    assert sections.packets == len(records[:60]) > 30 and sections.warning is None
    spliced = read_pcap(corpus / "spliced.pcapng")
    assert spliced.packets == 30
    assert spliced.warning == ("10 packets on another link type (raw IP) (frame 2, 5, 8 and 7 more): "
                               "given the first interface's link header.")


def test_undefined_interface_is_a_note_not_a_silent_drop(corpus: Path) -> None:
    result = read_pcap(corpus / "reader" / "undefined_iface.pcapng")
    assert result.packets == 18
    assert result.warning is not None
    assert "1 packet on interfaces the file never described (frame 12): read as Ethernet frames." in result.warning
    assert isinstance(decode(result.ring.frame(12)), Tcp)


def test_far_timestamps_and_whole_second_resolution(corpus: Path) -> None:
    path = corpus / "clocks.pcapng"
    result = read_pcap(path)
    assert result.packets == 30
    assert result.warning is not None and "15 packets stamped after the year 2262" in result.warning
    assert result.ring.ts_ns(1) == MAX_TS_NS
    epochs = [row[0] for row in tshark_frames(path, "frame.time_epoch")]
    # if_tsresol 0: ticks are whole seconds; tshark agrees to the second.
    assert [result.ring.ts_ns(no) // 1_000_000_000 for no in range(16, 31)] == \
        [int(float(epoch)) for epoch in epochs[15:]]
    store = PacketStore(result.ring)
    while store.update():
        pass
    assert all(summary.time > 0 for summary in store.summaries(1, 30))


def test_first_ip_fragment_is_not_a_whole_segment(corpus: Path) -> None:
    result = read_pcap(corpus / "reader" / "fragments.pcap")
    kinds = [decode(frame) for _, _, frame in result.ring]
    firsts = [k for k in kinds if isinstance(k, Other) and k.info.endswith("more follow")]
    rest = [k for k in kinds if isinstance(k, Other) and k.info.startswith("fragment at offset 1000")]
    assert firsts and len(firsts) == len(rest)
    assert all(not (isinstance(k, Tcp) and k.payload_length > 900) for k in kinds)


def test_cut_mid_record_keeps_the_rest(corpus: Path) -> None:
    result = read_pcap(corpus / "reader" / "cut_mid_record.pcap")
    _, records = witness_edits.read_records(WITNESS / "egress_drops.pcap")
    assert len(records[39][2]) > 700  # the cut falls inside the 40th record
    assert result.packets == 39
    assert result.warning is not None and "in the middle of packet 40 " in result.warning
    assert result.warning.endswith("kept the 39 complete packets before it.")


def test_pcapng_written_with_comments_is_read_by_tshark(tmp_path: Path) -> None:
    source = read_pcap(WITNESS / "lossy_server.pcap")
    store = PacketStore(source.ring)
    while store.update():
        pass

    def comments(no: int) -> list[str]:
        return [f"{mark}: {mark.rule}" for mark in store.analysis(no)]

    out = tmp_path / "annotated.pcapng"
    assert write_pcapng(out, source.ring, comments) == source.packets
    expected = {no: comments(no) for no in range(1, source.packets + 1) if comments(no)}
    assert expected  # the file has lost segments and retransmissions to explain
    rows = tshark_frames(out, "frame.number", "frame.comment", display_filter="frame.comment")
    seen = {int(no): text.split(",") if len(expected[int(no)]) > 1 else [text] for no, text in rows}
    assert set(seen) == set(expected)
    for no, texts in expected.items():
        assert ",".join(seen[no]) == ",".join(texts)
    # and the packets themselves are the same as in the source
    assert tcp_facts(out) == tcp_facts(WITNESS / "lossy_server.pcap")
    assert read_pcap(out).warning is None


def test_pcapng_writer_round_trip_keeps_nanoseconds(tmp_path: Path) -> None:
    _, records = witness_edits.read_records(WITNESS / "shaped.pcap")
    out = tmp_path / "ns.pcapng"
    with PcapngWriter(out) as writer:
        for n, (seconds, micros, frame, orig) in enumerate(records[:20]):
            writer.write(seconds * 1_000_000_000 + micros * 1000 + n, frame, orig, [f"n={n}"] if n % 2 else ())
    ring = read_pcap(out).ring
    assert [ring.ts_ns(no) % 1000 for no in range(1, 21)] == list(range(20))
    assert [row[0] for row in tshark_frames(out, "frame.comment", display_filter="frame.comment")] == \
        [f"n={n}" for n in range(1, 20, 2)]


def test_ring_round_trip_through_pcapng(tmp_path: Path) -> None:
    ring = read_pcap(WITNESS / "snaplen80.pcap").ring
    out = tmp_path / "cut.pcapng"
    write_pcapng(out, ring)
    again = read_pcap(out).ring
    assert isinstance(again, PacketRing)
    assert [(no, ts, frame, ring.orig_len(no)) for no, ts, frame in ring] == \
        [(no, ts, frame, again.orig_len(no)) for no, ts, frame in again]


@pytest.fixture(autouse=True)
def _need_tshark() -> None:
    assert shutil.which("tshark"), "tshark is part of the test environment (the witness)"


def test_feed_saves_pcapng_with_comments(tmp_path: Path) -> None:
    import threading

    from netlens.capture.feed import RecordedPacketFeed

    feed = RecordedPacketFeed(read_pcap(WITNESS / "lossy_server.pcap").ring)
    out = tmp_path / "saved.pcapng"
    assert str(out) in feed.save(str(out))
    for thread in threading.enumerate():
        if thread.name == "netlens-save-pcap":
            thread.join(20)
    flagged = set(feed.store.flagged())
    rows = tshark_frames(out, "frame.number", display_filter="frame.comment")
    assert {int(row[0]) for row in rows} == flagged and flagged
    plain = tmp_path / "saved.pcap"
    feed.save(str(plain))
    for thread in threading.enumerate():
        if thread.name == "netlens-save-pcap":
            thread.join(20)
    assert plain.read_bytes()[:4] == b"\x4d\x3c\xb2\xa1"


def test_snaplen_cut_capture_analyses_like_the_full_one() -> None:
    """The same traffic captured whole and with ``tcpdump -s 80``: lengths come from the headers, so the
    numbers and every analysis mark agree, and each cut frame says it was cut."""

    def rows(name: str) -> list[tuple[int, int | None, int | None, int | None, tuple[str, ...]]]:
        store = PacketStore(read_pcap(WITNESS / name).ring)
        while store.update():
            pass
        summaries = store.summaries(1, store.last)
        return [(s.no, s.seq, s.ack, s.len, s.analysis) for s in summaries]

    whole, cut = rows("slow_reader.pcap"), rows("snaplen80.pcap")
    assert whole == cut and sum(1 for row in cut if row[4]) > 20
    store = PacketStore(read_pcap(WITNESS / "snaplen80.pcap").ring)
    store.update()
    data = [s for s in store.summaries(1, store.last) if s.len]
    assert data and all("frame cut short" in s.info for s in data)


def test_socket_events_become_comments_on_their_packets(tmp_path: Path) -> None:
    from netlens.capture.annotate import packet_comments

    source = read_pcap(WITNESS / "slow_reader.pcap")
    store = PacketStore(source.ring)
    while store.update():
        pass
    stream = store.stream(1)
    packets = store.stream_packets(1)
    server, client = stream.key.server, stream.key.client
    # Events as the server saw them: right after the handshake's last packet, and after the last packet.
    after_ack = source.ring.ts_ns(packets[2]) + 1_000
    at_end = source.ring.ts_ns(packets[-1]) + 5_000
    events = [(after_ack, server, client, "accepted"), (at_end, server, client, "closed"),
              (at_end, ("10.9.9.9", 1), ("10.9.9.8", 2), "someone else's")]
    comments = packet_comments(store, events)
    assert "server socket: accepted" in comments(packets[2])
    assert comments(packets[-1])[-1] == "server socket: closed"
    out = tmp_path / "events.pcapng"
    write_pcapng(out, source.ring, comments)
    rows = tshark_frames(out, "frame.number", "frame.comment", display_filter='frame.comment contains "server socket"')
    assert [int(row[0]) for row in rows] == [packets[2], packets[-1]]
