"""Decoders built from format files turn records into raw events: tuples, states, reasons, cookies."""

from __future__ import annotations

import socket

from trace_records import kernel_format, record, sockaddr, v4

from netlens.trace.decode import TRACEPOINTS, build_decoder
from netlens.trace.events import Kind
from netlens.trace.formats import parse_format

SK = 0xFFFF_8881_2345_6000
TS, CPU = 1_000_000_123, 1


def decode(kind: Kind, system: str, name: str, **fields: object) -> tuple[object, ...]:
    fmt = kernel_format(system, name)
    raw = record(fmt, **fields)
    event = build_decoder(kind, fmt).decode(raw, 0, len(raw), TS, CPU)
    assert event is not None
    return event


def test_every_tracepoint_of_this_kernel_gets_a_decoder() -> None:
    for tp in TRACEPOINTS:
        decoder = build_decoder(tp.kind, kernel_format(tp.system, tp.name))
        assert decoder.kind == tp.kind and decoder.event_id == kernel_format(tp.system, tp.name).id


def test_a_state_change_with_ipv4_addresses() -> None:
    raw = decode(Kind.STATE, "sock", "inet_sock_set_state", skaddr=SK, oldstate=2, newstate=1, sport=40000,
                 dport=65432, family=socket.AF_INET, protocol=6, saddr=v4("127.0.0.1"), daddr=v4("127.0.0.2"))
    assert raw == (Kind.STATE, TS, CPU, SK, 0, socket.AF_INET, v4("127.0.0.1"), 40000, v4("127.0.0.2"), 65432,
                   "SYN_SENT", "ESTABLISHED")


def test_an_ipv6_state_change_uses_the_v6_addresses() -> None:
    six = socket.inet_pton(socket.AF_INET6, "::1")
    raw = decode(Kind.STATE, "sock", "inet_sock_set_state", skaddr=SK, oldstate=1, newstate=4, sport=1, dport=2,
                 family=socket.AF_INET6, saddr_v6=six, daddr_v6=six, saddr=v4("9.9.9.9"))
    assert raw[5:10] == (socket.AF_INET6, six, 1, six, 2) and raw[10:] == ("ESTABLISHED", "FIN_WAIT1")


def test_unknown_state_numbers_are_shown_as_numbers() -> None:
    raw = decode(Kind.STATE, "sock", "inet_sock_set_state", skaddr=SK, oldstate=1, newstate=99, family=2)
    assert raw[-1] == "99"


def test_a_reset_sent_with_sockaddr_fields_and_a_reason() -> None:
    raw = decode(Kind.RESET_SENT, "tcp", "tcp_send_reset", skbaddr=0xABC, skaddr=0, state=0, reason=1,
                 saddr=sockaddr("127.0.0.1", 5000), daddr=sockaddr("127.0.0.1", 41000))
    assert raw == (Kind.RESET_SENT, TS, CPU, 0, 0, socket.AF_INET, v4("127.0.0.1"), 5000, v4("127.0.0.1"), 41000,
                   "UNKNOWN", "NO_SOCKET", 0xABC)


def test_a_reset_sent_over_ipv6() -> None:
    raw = decode(Kind.RESET_SENT, "tcp", "tcp_send_reset", skaddr=SK, state=1, reason=11,
                 saddr=sockaddr("::1", 80), daddr=sockaddr("fe80::2", 50000))
    assert raw[5:10] == (socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "::1"), 80,
                         socket.inet_pton(socket.AF_INET6, "fe80::2"), 50000)
    assert raw[10:12] == ("ESTABLISHED", "TCP_ABORT_ON_CLOSE")


def test_the_older_reset_layout_without_reason_still_decodes() -> None:
    # tcp_send_reset before 6.10: split address fields, no reason (written here from that layout).
    older = parse_format(
        "name: tcp_send_reset\nID: 1500\nformat:\n"
        "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
        "\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n"
        "\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n"
        "\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;\n"
        "\tfield:__u16 sport;\toffset:28;\tsize:2;\tsigned:0;\n"
        "\tfield:__u16 dport;\toffset:30;\tsize:2;\tsigned:0;\n"
        "\tfield:__u16 family;\toffset:32;\tsize:2;\tsigned:0;\n"
        "\tfield:__u8 saddr[4];\toffset:34;\tsize:4;\tsigned:0;\n"
        "\tfield:__u8 daddr[4];\toffset:38;\tsize:4;\tsigned:0;\n"
        "\tfield:__u8 saddr_v6[16];\toffset:42;\tsize:16;\tsigned:0;\n"
        "\tfield:__u8 daddr_v6[16];\toffset:58;\tsize:16;\tsigned:0;\n", "tcp")
    raw_record = record(older, skaddr=SK, state=1, sport=7, dport=8, family=2, saddr=v4("10.0.0.1"),
                        daddr=v4("10.0.0.2"))
    raw = build_decoder(Kind.RESET_SENT, older).decode(raw_record, 0, len(raw_record), TS, CPU)
    assert raw is not None and raw[3] == SK and raw[5:10] == (2, v4("10.0.0.1"), 7, v4("10.0.0.2"), 8)
    assert raw[10:12] == ("ESTABLISHED", None)


def test_a_probe_carries_cookie_and_sender_state() -> None:
    raw = decode(Kind.PROBE, "tcp", "tcp_probe", saddr=sockaddr("127.0.0.1", 40000),
                 daddr=sockaddr("127.0.0.1", 65432), sport=40000, dport=65432, family=2, snd_cwnd=10,
                 ssthresh=0x7FFFFFFF, srtt=22, snd_wnd=65536, rcv_wnd=65483, data_len=146, snd_nxt=5, snd_una=4,
                 sock_cookie=0x4C33A, skaddr=SK)
    assert raw[3:5] == (SK, 0x4C33A)
    assert raw[5:10] == (2, v4("127.0.0.1"), 40000, v4("127.0.0.1"), 65432)
    assert raw[10:] == (10, 0x7FFFFFFF, 22, 65536, 65483, 146, 5, 4)


def test_congestion_states_by_name() -> None:
    raw = decode(Kind.CONG_STATE, "tcp", "tcp_cong_state_set", skaddr=SK, cong_state=4, family=2)
    assert raw[-1] == "Loss"


def test_a_synack_retransmission_names_no_socket() -> None:
    raw = decode(Kind.RETRANSMIT_SYNACK, "tcp", "tcp_retransmit_synack", skaddr=SK, req=0x99, sport=80, dport=5,
                 family=2, saddr=v4("127.0.0.1"), daddr=v4("127.0.0.1"))
    assert raw[3] == 0 and raw[7] == 80 and raw[10:] == ()


def test_a_drop_has_its_reason_its_socket_and_its_family_but_no_addresses() -> None:
    fmt = kernel_format("skb", "kfree_skb")
    reasons = {name: value for value, name in fmt.symbols("reason").items()}
    raw = decode(Kind.DROP, "skb", "kfree_skb", skbaddr=0x55, rx_sk=SK, protocol=0x86DD,
                 reason=reasons["TCP_OLD_DATA"])
    assert raw == (Kind.DROP, TS, CPU, SK, 0, socket.AF_INET6, b"", 0, b"", 0, "TCP_OLD_DATA", 0x55)


def test_a_record_shorter_than_its_layout_is_ignored() -> None:
    fmt = kernel_format("tcp", "tcp_probe")
    raw = record(fmt)
    assert build_decoder(Kind.PROBE, fmt).decode(raw, 0, 40, TS, CPU) is None
