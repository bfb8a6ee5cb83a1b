"""The hand-built classic BPF program for `tcp port P`, run in a Python interpreter of the instruction set."""

from __future__ import annotations

import struct

import pytest
from support.bpf_vm import run
from support.synth import tcp_frame

from netlens.capture import bpf
from netlens.capture.frames import LINKTYPE_ETHERNET, LINKTYPE_RAW

PORT = 65432


def udp_frame(dport: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
    return b"\0" * 12 + b"\x08\x00" + ip + struct.pack("!HHHH", 1234, dport, 8, 0)


def fragment(frame: bytes) -> bytes:
    return frame[:20] + b"\x00\x10" + frame[22:]  # fragment offset 16 * 8 bytes


CASES = [
    ("v4 to port", tcp_frame("127.0.0.1", "127.0.0.1", 50000, PORT), True),
    ("v4 from port", tcp_frame("127.0.0.1", "127.0.0.1", PORT, 50000), True),
    ("v6 to port", tcp_frame("::1", "::1", 50000, PORT), True),
    ("v6 from port", tcp_frame("::1", "::1", PORT, 50000), True),
    ("v4 other port", tcp_frame("127.0.0.1", "127.0.0.1", 50000, 80), False),
    ("v6 other port", tcp_frame("::1", "::1", 50000, 80), False),
    ("udp on the port", udp_frame(PORT), False),
    ("non-first fragment", fragment(tcp_frame(dport=PORT)), False),
    ("truncated", tcp_frame(dport=PORT)[:30], False),
    ("arp", b"\0" * 12 + b"\x08\x06" + b"\0" * 28, False),
]


@pytest.mark.parametrize("name,frame,accepted", CASES, ids=[c[0] for c in CASES])
def test_port_program_on_ethernet(name: str, frame: bytes, accepted: bool) -> None:
    program = bpf.tcp_port_program(PORT, LINKTYPE_ETHERNET)
    assert (run(program, frame) == bpf.SNAPLEN) is accepted


@pytest.mark.parametrize("name,frame,accepted", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_port_program_on_raw_ip(name: str, frame: bytes, accepted: bool) -> None:
    program = bpf.tcp_port_program(PORT, LINKTYPE_RAW)
    assert (run(program, frame[14:]) == bpf.SNAPLEN) is accepted


def test_ip_options_move_the_ports() -> None:
    frame = bytearray(tcp_frame(dport=PORT))
    # Insert 4 bytes of IPv4 options (NOPs) and fix the header length and total length.
    with_options = frame[:34] + b"\x01\x01\x01\x01" + frame[34:]
    with_options[14] = 0x46
    struct.pack_into("!H", with_options, 16, struct.unpack_from("!H", frame, 16)[0] + 4)
    assert run(bpf.tcp_port_program(PORT), bytes(with_options)) == bpf.SNAPLEN
    assert run(bpf.tcp_port_program(PORT + 1), bytes(with_options)) == 0


def test_outgoing_copies_are_dropped_by_the_prefix() -> None:
    program = bpf.drop_outgoing(bpf.tcp_port_program(PORT))
    frame = tcp_frame(dport=PORT)
    assert run(program, frame, pkttype=0) == bpf.SNAPLEN
    assert run(program, frame, pkttype=bpf.PACKET_OUTGOING) == 0
    assert run(bpf.drop_outgoing(bpf.accept_all()), frame, pkttype=1) == bpf.SNAPLEN


def test_every_jump_lands_inside_the_program() -> None:
    for linktype in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
        program = bpf.drop_outgoing(bpf.tcp_port_program(PORT, linktype))
        for index, (code, jt, jf, _k) in enumerate(program):
            if code & 0x07 == bpf.BPF_JMP:
                assert index + 1 + max(jt, jf) < len(program)
        assert program[-1][0] & 0x07 == bpf.BPF_RET


def test_unsupported_link_type_is_a_sentence() -> None:
    with pytest.raises(bpf.CaptureError, match="install libpcap"):
        bpf.tcp_port_program(PORT, 113)
    with pytest.raises(ValueError):
        bpf.tcp_port_program(70000)


@pytest.mark.skipif(not bpf.libpcap_available(), reason="libpcap is not installed (CI installs it with tshark)")
def test_same_decisions_as_libpcap() -> None:
    ours = bpf.tcp_port_program(PORT)
    theirs = bpf.compile_expression(f"tcp port {PORT}", LINKTYPE_ETHERNET)
    for name, frame, accepted in CASES:
        if name == "non-first fragment":
            continue  # both reject it, by different routes
        assert (run(theirs, frame) > 0) is accepted, name
        assert (run(ours, frame) > 0) is accepted, name


@pytest.mark.skipif(not bpf.libpcap_available(), reason="libpcap is not installed (CI installs it with tshark)")
def test_libpcap_errors_are_sentences() -> None:
    with pytest.raises(bpf.CaptureError, match="is not valid"):
        bpf.compile_expression("tcp port banana split", LINKTYPE_ETHERNET)
