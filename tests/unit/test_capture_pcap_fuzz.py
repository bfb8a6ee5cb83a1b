"""Fuzzing the reader over pcap and pcapng structure: any input ends in packets or one sentence, never a traceback.

Inputs are built from the formats' own parts (headers, blocks, options, link
types, record lengths) with hypothesis choosing every number, plus byte-level
damage (cuts, flips) on top, so the fuzzer reaches deep into the parsers
instead of failing at the magic number. Each input is read, analysed by the
packet store and summarised, as ``netlens read`` would.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlens.capture import PacketStore, PcapError, PcapReader
from netlens.capture.pcap import read_pcap
from netlens.capture.ring import PacketRing

_LINKTYPES = st.sampled_from([0, 1, 12, 101, 108, 113, 228, 229, 276, 2, 147, 0x0FFFFFFF])
_ETH_TCP = bytes.fromhex(
    "000000000002000000000001080045000034000040004006000001020304050607080"
    "0500051000000010000000280180100ffff0000000001010a0000000100000002")


def _frame() -> st.SearchStrategy[bytes]:
    """A frame: random bytes, or a real Ethernet/IPv4/TCP frame with some bytes changed or cut."""
    damaged = st.tuples(st.integers(0, len(_ETH_TCP)), st.lists(st.tuples(st.integers(0, 65), st.integers(0, 255)),
                                                                 max_size=4))

    def damage(args: tuple[int, list[tuple[int, int]]]) -> bytes:
        cut, flips = args
        data = bytearray(_ETH_TCP)
        for where, value in flips:
            if where < len(data):
                data[where] = value
        return bytes(data[:cut])

    return st.one_of(st.binary(max_size=80), damaged.map(damage))


@st.composite
def pcap_files(draw: st.DrawFn) -> bytes:
    order = draw(st.sampled_from("<>"))
    magic = draw(st.sampled_from([0xA1B2C3D4, 0xA1B23C4D]))
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, draw(st.integers(0, 1 << 32 - 1)), draw(_LINKTYPES))]
    for _ in range(draw(st.integers(0, 6))):
        frame = draw(_frame())
        size = draw(st.one_of(st.just(len(frame)), st.integers(0, 1 << 32 - 1)))
        seconds = draw(st.integers(0, (1 << 32) - 1))
        fraction = draw(st.integers(0, (1 << 32) - 1))
        out.append(struct.pack(order + "IIII", seconds, fraction, size, draw(st.integers(0, (1 << 32) - 1))) + frame)
    return b"".join(out)


def _ng_block(order: str, block_type: int, body: bytes, length: int | None) -> bytes:
    body += bytes(-len(body) % 4)
    size = len(body) + 12 if length is None else length
    return struct.pack(order + "II", block_type, size) + body + struct.pack(order + "I", size)


@st.composite
def pcapng_files(draw: st.DrawFn) -> bytes:
    order = draw(st.sampled_from("<>"))
    lies = st.one_of(st.none(), st.none(), st.integers(0, 1 << 32 - 1))
    blocks = [_ng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), None)]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["idb", "epb", "epb", "spb", "pb", "shb", "other"]))
        if kind == "idb":
            options = b""
            for code, value in draw(st.lists(st.tuples(st.sampled_from([0, 1, 9, 14, 2]), st.binary(max_size=9)),
                                             max_size=3)):
                options += struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)
            body = struct.pack(order + "HHI", draw(_LINKTYPES) & 0xFFFF, 0, draw(st.integers(0, 1 << 32 - 1)))
            blocks.append(_ng_block(order, 1, body + options, draw(lies)))
        elif kind in ("epb", "pb"):
            frame = draw(_frame())
            iface = draw(st.integers(0, 4))
            ticks = draw(st.integers(0, (1 << 64) - 1))
            caplen = draw(st.one_of(st.just(len(frame)), st.integers(0, 1 << 32 - 1)))
            head = (struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, caplen, len(frame))
                    if kind == "epb" else
                    struct.pack(order + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, caplen, len(frame)))
            blocks.append(_ng_block(order, 6 if kind == "epb" else 2, head + frame, draw(lies)))
        elif kind == "spb":
            frame = draw(_frame())
            blocks.append(_ng_block(order, 3, struct.pack(order + "I", draw(st.integers(0, 200))) + frame, draw(lies)))
        elif kind == "shb":
            order = draw(st.sampled_from("<>"))
            blocks.append(_ng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), None))
        else:
            blocks.append(_ng_block(order, draw(st.integers(0, 1 << 32 - 1)), draw(st.binary(max_size=20)),
                                    draw(lies)))
    return b"".join(blocks)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.one_of(pcap_files(), pcapng_files())))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))]) if draw(st.booleans()) else bytes(data)


def _read_and_analyse(data: bytes) -> None:
    try:
        result = read_pcap(data)
    except PcapError as error:
        message = str(error)
        assert message and "\n" not in message and message.endswith(".")
        return
    assert isinstance(result.ring, PacketRing) and result.packets == len(result.ring)
    if result.warning is not None:
        assert result.warning.endswith(".") and "\n" not in result.warning
    store = PacketStore(result.ring)
    while store.update():
        pass
    for summary in store.summaries(result.ring.first, result.ring.last):
        line = summary.line()
        assert "seq=None" not in line and "ack=None" not in line
    for stream in store.streams():
        store.follow(stream.id).render()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pcap_files())
def test_pcap_structure(data: bytes) -> None:
    _read_and_analyse(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pcapng_files())
def test_pcapng_structure(data: bytes) -> None:
    _read_and_analyse(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files(data: bytes) -> None:
    _read_and_analyse(data)


def test_undecodable_tcp_lines_show_why_not_none() -> None:
    frame = _ETH_TCP
    records = b"".join(struct.pack("<IIII", 1, 0, n, len(frame)) + frame[:n] for n in (len(frame), 40, 50, 60))
    result = read_pcap(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + records)
    store = PacketStore(result.ring)
    store.update()
    lines = [summary.line() for summary in store.summaries(1, 4)]
    assert "seq=1 ack=1" in lines[0]
    assert [line.split(" TCP ", 1)[1] for line in lines[1:3]] == [
        "truncated TCP header (6 of 20 bytes)", "truncated TCP header (16 of 20 bytes)"]
    # A header whose options the snaplen cut is still decoded, and says so.
    assert "seq=1 ack=1" in lines[3] and "[TCP options cut short: 6 of 12 bytes captured]" in lines[3]


def test_reader_iterates_lazily_on_a_stream() -> None:
    """The reader yields the first packet before the input has ended (a pipe that is still open)."""
    import io

    frame = _ETH_TCP
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    record = struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.parts = [head, record, b""]

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            part = self.parts[0]
            if not part:
                raise AssertionError("read past the first record before yielding it")
            size = min(len(buffer), len(part))
            buffer[:size] = part[:size]
            self.parts[0] = part[size:]
            if not self.parts[0]:
                self.parts.pop(0)
            return size

    reader = PcapReader(Trickle())  # type: ignore[arg-type]
    assert next(iter(reader))[1] == frame
