"""Hostile bytes: nothing from the wire may crash the summariser, the analysis, the readers or the terminal."""

from __future__ import annotations

import re
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.synth import Conversation, tcp_frame

from netlens.capture import PacketRing, PacketStore, PcapError, hexdump, read_pcap
from netlens.capture.dissect import dissect
from netlens.capture.frames import SUPPORTED_LINKTYPES, decode
from netlens.proto import encode_request

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
LINKTYPES = st.sampled_from(sorted(SUPPORTED_LINKTYPES))


def assert_terminal_safe(*texts: str) -> None:
    for text in texts:
        assert not UNSAFE.search(text), repr(text)


def check_store(ring: PacketRing) -> None:
    store = PacketStore(ring)
    store.update()
    for no in range(ring.first, ring.last + 1):
        row = store.summary(no)
        assert_terminal_safe(row.line(), row.info, row.src, row.dst, *row.analysis)
        row.to_json()
        assert_terminal_safe(*store.hexdump(no))
        for mark in store.analysis(no):
            assert mark.rule
    for stream in store.streams():
        assert_terminal_safe(stream.describe(), *store.follow(stream.id).render(), *store.ladder(stream.id).render())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), LINKTYPES)
def test_arbitrary_frames_never_crash_decode_or_summary(frame: bytes, linktype: int) -> None:
    decode(frame, linktype)
    ring = PacketRing(linktype=linktype)
    ring.append(1, frame)
    check_store(ring)


# Frames that are mostly valid with a few bytes changed reach much deeper than random bytes.
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
       st.integers(0, 140), st.booleans())
def test_mutated_tcp_frames(mutations: list[tuple[int, int]], cut: int, v6: bool) -> None:
    addresses = ("::1", "::2") if v6 else ("127.0.0.1", "127.0.0.2")
    frame = bytearray(tcp_frame(*addresses, payload=encode_request("search", "morpheus")[:60]))
    for index, value in mutations:
        if index < len(frame):
            frame[index] = value
    ring = PacketRing()
    ring.append(1, bytes(frame[: len(frame) - cut]))
    ring.append(2, bytes(frame))
    check_store(ring)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 60), min_size=1, max_size=12))
def test_garbage_payloads_on_the_search_port_in_any_segmentation(data: bytes, cuts: list[int]) -> None:
    conv = Conversation()
    conv.handshake()
    position = 0
    for size in cuts:
        if position >= len(data):
            break
        conv.client(data[position:position + size])
        position += size
    conv.server(b"\x00\x05{}\x1b[31m")
    check_store(conv.ring)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.lists(st.integers(1, 50), min_size=1, max_size=8))
def test_any_search_value_in_any_segmentation_is_understood(value: str, cuts: list[int]) -> None:
    request = encode_request("search", value, "little")
    conv = Conversation()
    conv.handshake()
    position = 0
    for size in cuts + [len(request)]:
        if position >= len(request):
            break
        conv.client(request[position:position + size])
        position += size
    store = PacketStore(conv.ring)
    store.update()
    infos = [store.summary(no).info for no in range(4, conv.ring.last + 1)]
    completed = [info for info in infos if info.startswith("search request ")]
    assert len(completed) == 1
    assert_terminal_safe(*infos)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_pcap_reader_on_garbage_raises_only_pcap_errors(data: bytes) -> None:
    for blob in (data, b"\xd4\xc3\xb2\xa1" + data, b"\x0a\x0d\x0d\x0a" + data):
        try:
            result = read_pcap(blob)
        except PcapError as exc:
            assert "\n" not in str(exc)
        else:
            assert result.packets == len(result.ring)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_dissection_never_raises(payload: bytes) -> None:
    for frame in (tcp_frame(dport=65432, payload=payload), payload):
        for layer in dissect(frame):
            assert_terminal_safe(layer.name, *(v for _, v in layer.fields))
    assert_terminal_safe(*hexdump(payload))


def test_bogus_header_lengths_and_truncation_at_every_byte() -> None:
    frame = tcp_frame(payload=encode_request("search", "x"))
    ring = PacketRing()
    for cut in range(len(frame)):
        ring.append(cut, frame[:cut])
    for ihl in range(16):
        ring.append(0, frame[:14] + bytes([0x40 | ihl]) + frame[15:])
    for offset in range(16):
        ring.append(0, frame[:46] + bytes([offset << 4]) + frame[47:])
    for total in (0, 19, 20, 40, 65535):
        ring.append(0, frame[:16] + struct.pack("!H", total) + frame[18:])
    check_store(ring)


def test_control_characters_and_markup_in_payloads_are_escaped() -> None:
    conv = Conversation()
    conv.handshake()
    no = conv.client(b"[bold red]x[/]\x1b[2J\r\n\x07")
    store = PacketStore(conv.ring)
    store.update()
    assert store.summary(no).info == "'[bold red]x[/]\\x1b[2J\\r\\n\\x07'"
    assert_terminal_safe(*store.follow(1).render(), *(v for layer in store.dissect(no) for _, v in layer.fields))
