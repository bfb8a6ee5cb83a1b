"""pcap out and in: both resolutions, both byte orders, pcapng, truncation and garbage as sentences."""

from __future__ import annotations

import io
import struct
import sys

import pytest
from support.synth import Conversation, tcp_frame

from netlens.capture import PacketRing, PcapError, PcapReader, PcapWriter, read_pcap, write_pcap

TS = 1_700_000_000_123_456_789


def sample_ring() -> PacketRing:
    conv = Conversation(start_ns=TS, step_ns=1_001)
    conv.handshake()
    conv.client(b"hello")
    conv.close()
    return conv.ring


@pytest.mark.parametrize("nanosecond", [True, False])
def test_round_trip(nanosecond: bool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ring = sample_ring()
    path = tmp_path / "out.pcap"
    assert write_pcap(path, ring, nanosecond=nanosecond) == len(ring)
    head = path.read_bytes()[:4]
    assert head == (b"\x4d\x3c\xb2\xa1" if nanosecond else b"\xd4\xc3\xb2\xa1")
    result = read_pcap(path)
    assert result.warning is None and result.packets == len(ring) and result.ring.linktype == 1
    for (no, ts, frame), (no2, ts2, frame2) in zip(ring, result.ring, strict=True):
        assert (no, frame) == (no2, frame2)
        assert ts2 == (ts if nanosecond else ts // 1000 * 1000)


def test_range_and_file_object() -> None:
    ring = sample_ring()
    buffer = io.BytesIO()
    assert write_pcap(buffer, ring, start=2, stop=4) == 3
    assert [frame for _, _, frame in read_pcap(buffer.getvalue()).ring] == [ring.frame(n) for n in (2, 3, 4)]


def big_endian_pcap(records: list[tuple[int, bytes]], nano: bool = False, linktype: int = 1) -> bytes:
    out = struct.pack(">IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for ts_ns, frame in records:
        seconds, rest = divmod(ts_ns, 1_000_000_000)
        out += struct.pack(">IIII", seconds, rest if nano else rest // 1000, len(frame), len(frame)) + frame
    return out


@pytest.mark.parametrize("nano", [True, False])
def test_big_endian_files(nano: bool) -> None:
    frames = [(TS, tcp_frame(flags="S")), (TS + 5_000, tcp_frame(flags="SA"))]
    result = read_pcap(big_endian_pcap(frames, nano))
    assert [f for _, _, f in result.ring] == [f for _, f in frames]
    assert result.ring.ts_ns(2) == (TS + 5_000 if nano else (TS + 5_000) // 1000 * 1000)


def test_truncated_last_record_keeps_what_was_read() -> None:
    second = tcp_frame(payload=b"x" * 50)
    data = big_endian_pcap([(TS, tcp_frame()), (TS, second)])
    for cut, where in ((len(data) - 10, "packet 2 (94 of 104 bytes)"),
                       (len(data) - len(second) - 16 + 4, "a record header (4 of 16 bytes)")):
        result = read_pcap(data[:cut])
        assert result.packets == 1 and len(result.ring) == 1
        assert result.warning is not None and where in result.warning
        assert result.warning == f"the input ends in the middle of {where}; kept the 1 complete packet before it."


def test_bogus_record_length_stops_reading() -> None:
    data = big_endian_pcap([(TS, tcp_frame())]) + struct.pack(">IIII", 1, 0, 1 << 30, 1 << 30)
    result = read_pcap(data)
    assert result.packets == 1 and "cannot be right" in (result.warning or "")


@pytest.mark.parametrize("data,message", [
    (b"", "is empty"),
    (b"\x0a\x0b", "too short"),
    (b"GIF89a" + b"\0" * 30, "is not a pcap file (it starts with 0x47494638"),
    (b"\xd4\xc3\xb2\xa1" + b"\0" * 8, "ends inside the pcap header"),
])
def test_not_pcap_is_one_sentence(data: bytes, message: str) -> None:
    with pytest.raises(PcapError) as info:
        read_pcap(data)
    assert message in str(info.value) and info.value.exit_code == 2


def test_unsupported_link_type() -> None:
    with pytest.raises(PcapError, match="link type 147, which netlens cannot decode"):
        read_pcap(big_endian_pcap([], linktype=147))


def test_missing_file() -> None:
    with pytest.raises(PcapError, match=r"cannot open /nonexistent/x\.pcap: No such file or directory"):
        read_pcap("/nonexistent/x.pcap")
    with pytest.raises(PcapError, match="cannot write"):
        PcapWriter("/nonexistent/dir/x.pcap")


def test_stdin_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    data = big_endian_pcap([(TS, tcp_frame())])

    class Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin)
    reader = PcapReader("-")
    assert reader.name == "standard input" and len(list(reader)) == 1


def pcapng(records: list[tuple[int, bytes]], resolution: int | None = 9, byteorder: str = "<") -> bytes:
    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        length = len(body) + 12
        return struct.pack(byteorder + "II", kind, length) + body + struct.pack(byteorder + "I", length)

    shb = block(0x0A0D0D0A, struct.pack(byteorder + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = b""
    if resolution is not None:
        options = struct.pack(byteorder + "HHB3x", 9, 1, resolution) + struct.pack(byteorder + "HH", 0, 0)
    idb = block(1, struct.pack(byteorder + "HHI", 1, 0, 262144) + options)
    out = shb + idb
    units = 10 ** (resolution if resolution is not None else 6)
    for ts_ns, frame in records:
        ticks = ts_ns * units // 1_000_000_000
        out += block(6, struct.pack(byteorder + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                                    len(frame)) + frame)
    return out


@pytest.mark.parametrize("resolution,byteorder", [(9, "<"), (None, "<"), (6, ">")])
def test_pcapng(resolution: int | None, byteorder: str) -> None:
    frames = [(TS, tcp_frame(flags="S")), (TS + 2_000, tcp_frame(flags="SA", payload=b"abc"))]
    result = read_pcap(pcapng(frames, resolution, byteorder))
    assert result.warning is None
    assert [f for _, _, f in result.ring] == [f for _, f in frames]
    expected = TS if resolution == 9 else TS // 1000 * 1000
    assert result.ring.ts_ns(1) == expected


def test_pcapng_truncated() -> None:
    data = pcapng([(TS, tcp_frame()), (TS, tcp_frame())])
    result = read_pcap(data[:-8])
    assert result.packets == 1 and "ends in the middle of a pcapng block" in (result.warning or "")
