"""sock_diag on byte fixtures: request layout, port-filter bytecode, reply and attribute parsing."""

from __future__ import annotations

import errno
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.probe_fixtures import encode_attributes

from netlens.probe import SocketMemory, netlink
from netlens.probe.attributes import (
    INET_DIAG_CONG,
    INET_DIAG_INFO,
    INET_DIAG_SHUTDOWN,
    INET_DIAG_SKMEMINFO,
    decode_attributes,
    iter_attributes,
    parse_skmeminfo,
    tcp_info_span,
)
from netlens.probe.sockdiag import DumpParser, pick_time_wait
from netlens.probe.sockstat import read_tcp_counter, read_tcp_totals
from netlens.probe.tcpinfo import parse_tcp_info

# --- replies -----------------------------------------------------------------


def nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + bytes(-length % 4)


def diag_msg(
    state: int,
    sport: int,
    dport: int,
    src: str = "127.0.0.1",
    dst: str = "127.0.0.1",
    family: int = socket.AF_INET,
    rq: int = 0,
    wq: int = 0,
    inode: int = 0,
    uid: int = 1000,
    timer: int = 0,
    expires: int = 0,
    retrans: int = 0,
    cookie: int = 0x1_0000_0002,
    attrs: bytes = b"",
) -> bytes:
    """One SOCK_DIAG_BY_FAMILY reply message: nlmsghdr + inet_diag_msg + attributes."""
    raw_src = socket.inet_pton(family, src).ljust(16, b"\0")
    raw_dst = socket.inet_pton(family, dst).ljust(16, b"\0")
    body = struct.pack("=BBBB", family, state, timer, retrans)
    body += struct.pack(">HH", sport, dport) + raw_src + raw_dst
    body += struct.pack("=III", 0, cookie & 0xFFFFFFFF, cookie >> 32)
    body += struct.pack("=IIIII", expires, rq, wq, uid, inode)
    assert len(body) == 72  # sizeof(struct inet_diag_msg)
    body += attrs
    return struct.pack("=IHHII", 16 + len(body), 20, 2, 1, 0) + body


def done() -> bytes:
    return struct.pack("=IHHII", 20, netlink.NLMSG_DONE, 2, 1, 0) + struct.pack("=i", 0)


def error(code: int) -> bytes:
    return struct.pack("=IHHII", 36, netlink.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -code) + bytes(16)


def feed(*messages: bytes, port: int | None = None) -> tuple[DumpParser, bool]:
    parser = DumpParser(port)
    data = b"".join(messages)
    return parser, parser.feed(data, len(data))


def test_listen_reply_keeps_ss_queue_semantics() -> None:
    # On a listener the kernel puts the accept queue in rqueue and the backlog in wqueue.
    parser, finished = feed(diag_msg(10, 65432, 0, dst="0.0.0.0", rq=1, wq=128, inode=777), done())
    assert finished
    (sock,) = parser.sockets
    assert (sock.state, sock.recv_q, sock.send_q) == ("LISTEN", 1, 128)
    assert (sock.local_addr, sock.local_port, sock.remote_addr, sock.remote_port) == ("127.0.0.1", 65432, "0.0.0.0", 0)
    assert (sock.inode, sock.uid, sock.cookie, sock.family) == (777, 1000, 0x1_0000_0002, "IPv4")
    assert sock.timer is None and sock.tcp_info is None and sock.owners == ()


def test_ports_are_big_endian_and_ipv6_addresses_are_formatted() -> None:
    parser, _ = feed(diag_msg(1, 0x1234, 0xABCD, src="::1", dst="fe80::1", family=socket.AF_INET6))
    (sock,) = parser.sockets
    assert (sock.local_port, sock.remote_port) == (0x1234, 0xABCD)
    assert (sock.family, sock.local_addr, sock.remote_addr) == ("IPv6", "::1", "fe80::1")


def test_time_wait_has_a_timer_and_no_attributes() -> None:
    parser, _ = feed(diag_msg(6, 40000, 65432, timer=3, expires=59_000, retrans=0))
    (sock,) = parser.sockets
    assert sock.state == "TIME_WAIT" and sock.inode == 0
    assert sock.timer is not None and (sock.timer.name, sock.timer.expires_ms, sock.timer.retrans) == (
        "timewait",
        59_000,
        0,
    )
    assert sock.tcp_info is None and sock.memory is None and sock.congestion is None and sock.shutdown is None


@pytest.mark.parametrize(("number", "name"), [(1, "on"), (2, "keepalive"), (3, "timewait"), (4, "persist")])
def test_timer_names_are_those_of_ss(number: int, name: str) -> None:
    parser, _ = feed(diag_msg(1, 1, 2, timer=number, expires=200, retrans=3))
    assert parser.sockets[0].timer is not None and parser.sockets[0].timer.name == name


def test_new_syn_recv_is_reported_as_syn_recv() -> None:
    parser, _ = feed(diag_msg(12, 1, 2))
    assert parser.sockets[0].state == "SYN_RECV"


def test_attributes_are_kept_raw_and_decoded_on_use() -> None:
    info = struct.pack("=BBBBBBBB", 1, 0, 0, 0, 0, 7, 0x77, 0) + bytes(240)
    skmem = struct.pack("=9I", 10, 131072, 30, 16384, 50, 60, 70, 80, 90)
    attrs = nla(INET_DIAG_SHUTDOWN, b"\x02") + nla(15, b"\0" * 4) + nla(INET_DIAG_SKMEMINFO, skmem)
    attrs += nla(INET_DIAG_INFO, info) + nla(INET_DIAG_CONG, b"cubic\0")
    parser, _ = feed(diag_msg(1, 1, 2, attrs=attrs))
    (sock,) = parser.sockets
    assert sock._decoded is None  # nothing decoded while parsing
    assert sock.memory == SocketMemory(10, 131072, 30, 16384, 50, 60, 70, 80, 90)
    assert sock.tcp_info == parse_tcp_info(info)
    assert (sock.congestion, sock.shutdown) == ("cubic", 2)
    assert sock.to_dict()["memory"]["drops"] == 90


def test_userspace_port_filter_matches_either_end() -> None:
    msgs = [diag_msg(1, 5000, 40000), diag_msg(1, 40000, 5000), diag_msg(1, 40001, 40002)]
    parser, _ = feed(*msgs, port=5000)
    assert [(s.local_port, s.remote_port) for s in parser.sockets] == [(5000, 40000), (40000, 5000)]


def test_error_message_raises_with_its_errno() -> None:
    with pytest.raises(netlink.NetlinkError) as caught:
        feed(error(errno.EINVAL))
    assert caught.value.errno == errno.EINVAL


def test_an_ack_is_not_an_error_and_done_ends_the_dump() -> None:
    parser, finished = feed(error(0), diag_msg(1, 1, 2))
    assert not finished and len(parser.sockets) == 1
    parser2 = DumpParser()
    assert parser2.feed(done(), len(done())) is True


def test_truncated_message_is_an_error_not_garbage() -> None:
    msg = diag_msg(1, 1, 2)
    with pytest.raises(netlink.NetlinkError):
        DumpParser().feed(msg[:-8], len(msg) - 8)


def test_replies_to_the_one_dump_form_parse_like_the_others() -> None:
    msg = bytearray(diag_msg(1, 5000, 40000, src="::1", dst="::1", family=socket.AF_INET6))
    struct.pack_into("=H", msg, 4, netlink.TCPDIAG_GETSOCK)
    parser, _ = feed(bytes(msg), diag_msg(10, 5000, 0))
    assert [(s.family, s.state) for s in parser.sockets] == [("IPv6", "ESTABLISHED"), ("IPv4", "LISTEN")]


def time_wait(client_port: int, expires: int, port: int = 5000) -> bytes:
    return diag_msg(6, port, client_port, timer=3, expires=expires, cookie=client_port)


def light_feed(*messages: bytes, port: int | None = None) -> DumpParser:
    parser = DumpParser(port, light_time_wait=True)
    data = b"".join(messages)
    parser.feed(data, len(data))
    return parser


def test_light_parse_notes_time_wait_sockets_without_building_them() -> None:
    parser = light_feed(diag_msg(10, 5000, 0), time_wait(40001, 100), diag_msg(5, 5000, 40002), time_wait(40003, 900))
    assert [s.state for s in parser.sockets] == ["LISTEN", "FIN_WAIT2"]
    assert parser.time_wait is not None and [(tw[0], tw[1]) for tw in parser.time_wait] == [(100, 40001), (900, 40003)]


def test_light_parse_still_filters_by_port_when_the_kernel_did_not() -> None:
    parser = light_feed(time_wait(40001, 100), time_wait(40002, 200, port=6000), port=5000)
    assert parser.time_wait is not None and [tw[1] for tw in parser.time_wait] == [40001]


def test_pick_builds_the_newest_plus_the_kept_and_nothing_else() -> None:
    parser = light_feed(*(time_wait(40000 + n, expires) for n, expires in enumerate([500, 100, 900, 300, 700])))
    seen = parser.time_wait
    assert seen is not None
    newest = pick_time_wait(seen, 2)
    assert [(s.remote_port, s.timer.expires_ms if s.timer else None) for s in newest] == [(40002, 900), (40004, 700)]
    assert all(s.state == "TIME_WAIT" and s.cookie == s.remote_port for s in newest)
    kept = pick_time_wait(seen, 2, keep={40001, 40002})
    assert [s.remote_port for s in kept] == [40001, 40002, 40004, 40000]  # the kept in kernel order, then 2 newest
    assert pick_time_wait(seen, 0) == [] and [s.remote_port for s in pick_time_wait(seen, 0, keep={40003})] == [40003]
    assert len(pick_time_wait(seen, 99)) == 5


def test_compat_request_layout() -> None:
    code = netlink.port_filter_bytecode(65432)
    req = netlink.build_compat_dump_request(netlink.ext_mask(netlink.INET_DIAG_INFO), seq=3, bytecode=code)
    length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", req)
    assert (length, kind, flags, seq) == (len(req), netlink.TCPDIAG_GETSOCK, 0x301, 3)
    # struct inet_diag_req: family, src_len, dst_len, ext, sockid (48 bytes), states, dbs
    assert struct.unpack_from("=BBBB", req, 16)[3] == 1 << 1
    assert struct.unpack_from("=II", req, 16 + 4 + 48) == (netlink.ALL_STATES, 0)
    assert struct.unpack_from("=HH", req, 16 + 60) == (4 + len(code), netlink.INET_DIAG_REQ_BYTECODE)
    assert req[16 + 64 :] == code


def test_totals_come_from_sockstat_and_sockstat6(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "sockstat").write_text("sockets: used 90\nTCP: inuse 7 orphan 1 tw 1234 alloc 9 mem 3\nUDP: inuse 0 mem 0\n")
    (net / "sockstat6").write_text("TCP6: inuse 5\nUDP6: inuse 0\n")
    totals = read_tcp_totals(str(tmp_path))
    assert totals is not None and (totals.sockets, totals.time_wait) == (12, 1234)
    (net / "sockstat6").unlink()  # a kernel without IPv6
    assert read_tcp_totals(str(tmp_path)) == type(totals)(7, 1234)
    (net / "sockstat").write_text("TCP: inuse x\n")
    assert read_tcp_totals(str(tmp_path)) is None
    assert read_tcp_totals(str(tmp_path / "absent")) is None


def test_a_tcpext_counter_is_read_by_name_from_netstat(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    netstat = net / "netstat"
    netstat.write_text("TcpExt: SyncookiesSent TCPSynRetrans TCPOrigDataSent\nTcpExt: 0 17 4242\n"
                       "IpExt: InNoRoutes TCPSynRetrans\nIpExt: 5 6\n")  # fmt: skip
    assert read_tcp_counter("TCPSynRetrans", str(tmp_path)) == 17
    assert read_tcp_counter("TCPOrigDataSent", str(tmp_path)) == 4242
    assert read_tcp_counter("InNoRoutes", str(tmp_path)) is None  # not a TcpExt counter
    netstat.write_text("TcpExt: TCPSynRetrans TCPOrigDataSent\nTcpExt: 3\n")  # a short values line
    assert read_tcp_counter("TCPOrigDataSent", str(tmp_path)) is None
    netstat.write_text("TcpExt: TCPSynRetrans\nTcpExt: many\n")
    assert read_tcp_counter("TCPSynRetrans", str(tmp_path)) is None
    assert read_tcp_counter("TCPSynRetrans", str(tmp_path / "absent")) is None


# --- attributes --------------------------------------------------------------


def test_iter_attributes_walks_padding_and_masks_flags() -> None:
    block = nla(1, b"abc") + nla(0x8000 | 4, b"cubic\0") + nla(8, b"\x01")
    assert [(kind, block[start : start + n]) for kind, start, n in iter_attributes(block)] == [
        (1, b"abc"),
        (4, b"cubic\0"),
        (8, b"\x01"),
    ]


def test_iter_attributes_stops_at_a_bad_length() -> None:
    block = nla(1, b"abcd") + struct.pack("=HH", 2, 7) + nla(8, b"\x01")  # length 2 < header
    assert [kind for kind, _, _ in iter_attributes(block)] == [1]
    assert [kind for kind, _, _ in iter_attributes(nla(1, b"abcdefgh")[:10])] == []  # claims more than there is


def test_skmeminfo_from_an_older_kernel_has_no_drops() -> None:
    raw = struct.pack("=8I", 1, 2, 3, 4, 5, 6, 7, 8)
    assert parse_skmeminfo(raw, 0, len(raw)) == SocketMemory(1, 2, 3, 4, 5, 6, 7, 8, None)


def test_encode_attributes_round_trips_and_finds_tcp_info() -> None:
    info = parse_tcp_info(struct.pack("=BBBBBBBB", 1, 2, 0, 0, 0, 0, 0, 0) + bytes(96))  # 104 bytes
    memory = SocketMemory(1, 2, 3, 4, 5, 6, 7, 8, 9)
    block = encode_attributes(tcp_info=info, memory=memory, congestion="reno", shutdown=3)
    decoded = decode_attributes(block)
    assert decoded == (info, memory, "reno", 3)
    span = tcp_info_span(block)
    assert span is not None and span[1] == 104
    assert tcp_info_span(encode_attributes(memory=memory)) is None
    assert decode_attributes(b"") == (None, None, None, None)


# --- requests ----------------------------------------------------------------


def test_dump_request_layout() -> None:
    ext = netlink.ext_mask(netlink.INET_DIAG_INFO, netlink.INET_DIAG_SKMEMINFO)
    req = netlink.build_dump_request(socket.AF_INET6, ext, seq=7)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", req)
    assert (length, kind, flags, seq, pid) == (len(req), 20, 0x301, 7, 0)
    assert len(req) == 16 + 56  # nlmsghdr + inet_diag_req_v2
    family, protocol, got_ext, _pad, states = struct.unpack_from("=BBBBI", req, 16)
    assert (family, protocol, got_ext) == (socket.AF_INET6, socket.IPPROTO_TCP, (1 << 1) | (1 << 6))
    assert states == 0b1_1111_1111_1110  # TCP states 1..12
    cookie = struct.unpack_from("=II", req, 16 + 8 + 40)
    assert cookie == (0xFFFFFFFF, 0xFFFFFFFF)  # INET_DIAG_NOCOOKIE


def test_dump_request_with_bytecode_attribute() -> None:
    code = netlink.port_filter_bytecode(65432)
    req = netlink.build_dump_request(socket.AF_INET, 0, bytecode=code)
    assert struct.unpack_from("=I", req)[0] == len(req) == 16 + 56 + 4 + len(code)
    assert struct.unpack_from("=HH", req, 72) == (4 + len(code), netlink.INET_DIAG_REQ_BYTECODE)
    assert req[76:] == code


def run_bytecode(code: bytes, sport: int, dport: int) -> bool:
    """The kernel's inet_diag_bc_run for the port ops, written out from net/ipv4/inet_diag.c."""
    pc, remaining = 0, len(code)
    while remaining > 0:
        op, yes, no = struct.unpack_from("=BBH", code, pc)
        if op == netlink.INET_DIAG_BC_JMP:
            matched = False
        elif op == netlink.INET_DIAG_BC_S_EQ:
            matched = sport == struct.unpack_from("=BBH", code, pc + 4)[2]
        elif op == netlink.INET_DIAG_BC_D_EQ:
            matched = dport == struct.unpack_from("=BBH", code, pc + 4)[2]
        else:
            raise AssertionError(f"unexpected op {op}")
        step = yes if matched else no
        pc += step
        remaining -= step
    return remaining == 0


def audit_bytecode(code: bytes) -> bool:
    """The kernel's inet_diag_bc_audit (port ops only): every yes-path valid, every no-target an op boundary."""

    def valid_cc(cc: int) -> bool:
        pc, length = 0, len(code)
        while length >= 0:
            if cc > length:
                return False
            if cc == length:
                return True
            yes = code[pc + 1]
            if yes < 4 or yes & 3:
                return False
            length -= yes
            pc += yes
        return False

    pc, length = 0, len(code)
    while length > 0:
        op, yes, no = struct.unpack_from("=BBH", code, pc)
        min_len = 8 if op in (netlink.INET_DIAG_BC_S_EQ, netlink.INET_DIAG_BC_D_EQ) else 4
        if min_len == 8 and length < 8:
            return False
        if no < min_len or no > length + 4 or no & 3:
            return False
        if no < length and not valid_cc(length - no):
            return False
        if yes < min_len or yes > length + 4 or yes & 3:
            return False
        pc += yes
        length -= yes
    return length == 0


def test_port_bytecode_passes_the_kernel_audit_and_matches_either_end() -> None:
    code = netlink.port_filter_bytecode(65432)
    assert audit_bytecode(code)
    assert run_bytecode(code, 65432, 40000)
    assert run_bytecode(code, 40000, 65432)
    assert run_bytecode(code, 65432, 65432)
    assert not run_bytecode(code, 40000, 40001)
    with pytest.raises(ValueError):
        netlink.port_filter_bytecode(70000)


# --- hostile bytes -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_attribute_block_decodes_without_crashing(block: bytes) -> None:
    decoded = decode_attributes(block)
    assert decoded.shutdown is None or 0 <= decoded.shutdown <= 255
    tcp_info_span(block)


def reference_span(block: bytes) -> tuple[int, int] | None:
    return next(((start, length) for kind, start, length in iter_attributes(block) if kind == INET_DIAG_INFO), None)


attribute_blocks = st.lists(
    st.tuples(st.sampled_from([INET_DIAG_SHUTDOWN, 15, INET_DIAG_SKMEMINFO, INET_DIAG_INFO, INET_DIAG_CONG]),
              st.binary(max_size=48)),
    max_size=5,
).map(lambda parts: b"".join(nla(kind, payload) for kind, payload in parts))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(attribute_blocks, st.integers(0, 60)), min_size=1, max_size=8))
def test_tcp_info_span_matches_a_plain_walk_whatever_layouts_came_before(blocks: list[tuple[bytes, int]]) -> None:
    # Layouts recur and get cut short, so the remembered layouts are tried on blocks they fit and do not fit.
    for block, cut in blocks:
        for candidate in (block, block[: max(0, len(block) - cut)], block + block):
            assert tcp_info_span(candidate) == reference_span(candidate)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 25), st.binary(max_size=120)), max_size=6), st.binary(max_size=40))
def test_any_reply_datagram_parses_or_raises_netlink_error(messages: list[tuple[int, bytes]], tail: bytes) -> None:
    data = b"".join(struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body for kind, body in messages) + tail
    parser = DumpParser()
    try:
        parser.feed(data, len(data))
    except netlink.NetlinkError:
        return
    for sock in parser.sockets:
        sock.to_dict()  # every record decodes, whatever its attribute block holds
