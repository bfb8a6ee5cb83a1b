"""Header decoding from raw bytes: link types, IPv4/IPv6, TCP fields, flags, options, and broken frames."""

from __future__ import annotations

import struct

import pytest
from support.synth import tcp_frame
from support.synth import tcp_options as build_options

from netlens.capture.frames import (
    FLAG_LETTERS,
    FLAG_NAMES,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Other,
    Tcp,
    decode,
    format_ip,
    payload,
    tcp_options,
)


@pytest.mark.parametrize("linktype", [LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW])
@pytest.mark.parametrize("src,dst", [("127.0.0.1", "127.0.0.2"), ("::1", "fe80::2")])
def test_tcp_fields_decode_on_every_link_type(linktype: int, src: str, dst: str) -> None:
    frame = tcp_frame(src, dst, 51234, 65432, seq=0xFFFFFFF0, ack=7, flags="PA", window=1234,
                      payload=b"hello", linktype=linktype)
    tcp = decode(frame, linktype)
    assert isinstance(tcp, Tcp), tcp
    assert (tcp.version, format_ip(tcp.src), format_ip(tcp.dst)) == (6 if ":" in src else 4, src, dst)
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.window) == (51234, 65432, 0xFFFFFFF0, 7, 1234)
    assert FLAG_LETTERS[tcp.flags] == "PA" and FLAG_NAMES[tcp.flags] == "PSH,ACK"
    assert payload(frame, tcp) == b"hello" and tcp.payload_length == 5 and tcp.note == ""


def test_fast_path_and_general_path_agree() -> None:
    frame = tcp_frame(payload=b"x" * 40, options=build_options(timestamp=(1, 2)))
    fast = decode(frame, LINKTYPE_ETHERNET)
    # Same bytes behind a Linux cooked header take the general path.
    general = decode(frame[14:], LINKTYPE_RAW)
    assert isinstance(fast, Tcp) and isinstance(general, Tcp)
    assert fast._replace(tcp_offset=0, payload_offset=0) == general._replace(tcp_offset=0, payload_offset=0)


def test_bsd_loopback_and_vlan_framing() -> None:
    packet = tcp_frame(linktype=LINKTYPE_RAW, payload=b"abc")
    for header in (struct.pack("<I", 2), struct.pack(">I", 2)):
        tcp = decode(header + packet, LINKTYPE_NULL)
        assert isinstance(tcp, Tcp) and tcp.payload_length == 3
    ether = tcp_frame(payload=b"abc")
    tagged = ether[:12] + b"\x81\x00\x00\x05" + ether[12:]
    tcp = decode(tagged, LINKTYPE_ETHERNET)
    assert isinstance(tcp, Tcp) and payload(tagged, tcp) == b"abc"


def test_ethernet_padding_is_not_payload() -> None:
    frame = tcp_frame(flags="A") + b"\0" * 6  # short frames are padded to 60 bytes on real Ethernet
    tcp = decode(frame)
    assert isinstance(tcp, Tcp) and tcp.payload_length == 0


@pytest.mark.parametrize("value", range(512))
def test_flag_letters_match_scapy(value: int) -> None:
    from scapy.layers.inet import TCP

    assert FLAG_LETTERS[value] == str(TCP(flags=value).flags)


def test_options_parse_and_describe() -> None:
    frame = tcp_frame(flags="S", options=build_options(65495, 7, True, (11, 22)))
    tcp = decode(frame)
    assert isinstance(tcp, Tcp)
    options = tcp_options(frame, tcp)
    assert (options.mss, options.wscale, options.sack_permitted, options.timestamp) == (65495, 7, True, (11, 22))
    assert options.describe() == "MSS=65495 SACK_PERM TSval=11 TSecr=22 WS=128"


def test_bogus_option_lengths_end_the_walk() -> None:
    for raw in (b"\x02\x00\x00\x00", b"\x03\x09\x07\x01", b"\x02\x04\x05"[:3] + b"\x01", b"\x08\x01\x00\x00"):
        frame = tcp_frame(flags="S", options=raw)
        tcp = decode(frame)
        assert isinstance(tcp, Tcp)
        tcp_options(frame, tcp)  # must not raise


def _ipv4(frame: bytes) -> bytearray:
    return bytearray(frame)


@pytest.mark.parametrize("mutate,expected", [
    (lambda f: f[:10], "truncated Ethernet header"),
    (lambda f: f[:20], "truncated IPv4 header"),
    (lambda f: f[:14] + bytes([0x42]) + f[15:], "bogus IPv4 header"),
    (lambda f: f[:14] + bytes([0x65]) + f[15:], "bogus IPv4 header"),
    (lambda f: f[:16] + b"\x00\x05" + f[18:], "bogus IPv4 total length"),
    (lambda f: f[:46] + bytes([0x20]) + f[47:], "bogus TCP header length"),
    (lambda f: f[:46] + bytes([0xF0]) + f[47:], "runs past the end"),
    (lambda f: f[:20] + b"\x20\x10" + f[22:], "fragment at offset"),
    (lambda f: f[:40], "truncated TCP header"),
])
def test_broken_frames_say_what_is_wrong(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    frame = bytes(mutate(tcp_frame(payload=b"data")))
    result = decode(frame)
    assert isinstance(result, Other)
    assert expected in result.info


def test_frame_cut_short_counts_what_was_sent_and_keeps_what_was_captured() -> None:
    frame = tcp_frame(payload=b"0123456789")[:-4]
    tcp = decode(frame)
    assert isinstance(tcp, Tcp)
    # The length is the IP header's (what was sent); the bytes are what the snaplen kept.
    assert tcp.payload_length == 10 and "cut short" in tcp.note
    assert payload(frame, tcp) == b"012345"


def test_syn_with_cut_options_is_still_decoded() -> None:
    syn = tcp_frame(flags="S", options=build_options(65495, 7, True))
    cut = syn[:14 + 20 + 20 + 4]  # the MSS option only
    tcp = decode(cut)
    assert isinstance(tcp, Tcp) and tcp.flags == 2 and tcp.payload_length == 0
    assert tcp.note.startswith("TCP options cut short: 4 of")
    assert tcp_options(cut, tcp).mss == 65495 and tcp_options(cut, tcp).wscale is None


def test_other_protocols_are_described() -> None:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
    udp = b"\0" * 12 + b"\x08\x00" + ip + struct.pack("!HHHH", 53, 5353, 8, 0)
    result = decode(udp)
    assert isinstance(result, Other) and result.proto == "UDP" and (result.sport, result.dport) == (53, 5353)
    icmp_ip = ip[:9] + b"\x01" + ip[10:]
    result = decode(b"\0" * 12 + b"\x08\x00" + icmp_ip + b"\x08\x00\0\0\0\0\0\0")
    assert isinstance(result, Other) and result.proto == "ICMP" and result.info == "type 8 code 0"
    arp = b"\0" * 12 + b"\x08\x06" + struct.pack("!HHBBH6s4s6s4s", 1, 0x800, 6, 4, 1, b"\1" * 6,
                                                  b"\x0a\0\0\1", b"\0" * 6, b"\x0a\0\0\2")
    result = decode(arp)
    assert isinstance(result, Other) and result.info == "who has 10.0.0.2? tell 10.0.0.1"
    assert "not supported" in decode(b"abc", 9999).info  # type: ignore[union-attr]
