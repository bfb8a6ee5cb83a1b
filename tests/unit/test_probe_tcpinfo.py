"""struct tcp_info decoding by length, on byte fixtures laid out by hand from linux/tcp.h offsets."""

from __future__ import annotations

import dataclasses
import struct
import sys

import pytest
from support.probe_fixtures import pack_tcp_info

from netlens.probe.tcpinfo import (
    TCP_INFO_KNOWN_SIZE,
    TcpInfo,
    field_reader,
    parse_tcp_info,
)

# Offsets of struct tcp_info members, written out from the kernel header
# rather than taken from the module under test.
OFFSETS = {
    "ca_state": (1, "B"), "retransmits": (2, "B"), "probes": (3, "B"), "backoff": (4, "B"), "options": (5, "B"),
    "rto_us": (8, "I"), "ato_us": (12, "I"), "snd_mss": (16, "I"), "rcv_mss": (20, "I"),
    "unacked": (24, "I"), "sacked": (28, "I"), "lost": (32, "I"), "retrans": (36, "I"), "fackets": (40, "I"),
    "last_data_sent_ms": (44, "I"), "last_ack_sent_ms": (48, "I"), "last_data_recv_ms": (52, "I"),
    "last_ack_recv_ms": (56, "I"), "pmtu": (60, "I"), "rcv_ssthresh": (64, "I"), "rtt_us": (68, "I"),
    "rttvar_us": (72, "I"), "snd_ssthresh": (76, "I"), "snd_cwnd": (80, "I"), "advmss": (84, "I"),
    "reordering": (88, "I"), "rcv_rtt_us": (92, "I"), "rcv_space": (96, "I"), "total_retrans": (100, "I"),
    "pacing_rate_bytes_per_s": (104, "Q"), "max_pacing_rate_bytes_per_s": (112, "Q"),
    "bytes_acked": (120, "Q"), "bytes_received": (128, "Q"), "segs_out": (136, "I"), "segs_in": (140, "I"),
    "notsent_bytes": (144, "I"), "min_rtt_us": (148, "I"), "data_segs_in": (152, "I"), "data_segs_out": (156, "I"),
    "delivery_rate_bytes_per_s": (160, "Q"), "busy_time_us": (168, "Q"), "rwnd_limited_us": (176, "Q"),
    "sndbuf_limited_us": (184, "Q"), "delivered": (192, "I"), "delivered_ce": (196, "I"),
    "bytes_sent": (200, "Q"), "bytes_retrans": (208, "Q"), "dsack_dups": (216, "I"), "reord_seen": (220, "I"),
    "rcv_ooopack": (224, "I"), "snd_wnd": (228, "I"), "rcv_wnd": (232, "I"), "rehash": (236, "I"),
    "total_rto": (240, "H"), "total_rto_recoveries": (242, "H"), "total_rto_time_ms": (244, "I"),
}  # fmt: skip
LITTLE = sys.byteorder == "little"


def fixture(length: int, **values: int) -> bytes:
    """A struct tcp_info of ``length`` bytes with each member set to a distinct value (or ``values``)."""
    buf = bytearray(max(length, 280))
    for n, (name, (offset, fmt)) in enumerate(OFFSETS.items()):
        value = values.get(name, n + 1)
        struct.pack_into("=" + fmt, buf, offset, value)
    buf[6] = 0xA7 if LITTLE else 0x7A  # snd_wscale 7, rcv_wscale 10
    buf[7] = 0b101 if LITTLE else 0b1010_0000  # app-limited, fastopen_client_fail 2
    return bytes(buf[:length])


def test_full_struct_every_member_at_its_kernel_offset() -> None:
    info = parse_tcp_info(fixture(280))  # 6.18 sends 280 bytes: more than we decode
    for n, name in enumerate(OFFSETS):
        assert getattr(info, name) == n + 1, name
    assert (info.snd_wscale, info.rcv_wscale) == (7, 10)
    assert info.delivery_rate_app_limited is True and info.fastopen_client_fail == 2
    assert TCP_INFO_KNOWN_SIZE == 248


@pytest.mark.parametrize(
    ("length", "last_present", "first_missing"),
    [
        (104, "total_retrans", "pacing_rate_bytes_per_s"),  # 2.6 .. 3.14
        (120, "max_pacing_rate_bytes_per_s", "bytes_acked"),  # 3.15
        (144, "segs_in", "notsent_bytes"),  # 4.2
        (160, "data_segs_out", "delivery_rate_bytes_per_s"),  # 4.6
        (232, "snd_wnd", "rcv_wnd"),  # 5.4
        (240, "rehash", "total_rto"),  # 6.2
        (248, "total_rto_time_ms", None),  # 6.7
    ],
)
def test_shorter_structs_from_older_kernels_leave_later_fields_none(
    length: int, last_present: str, first_missing: str | None
) -> None:
    info = parse_tcp_info(fixture(length))
    names = list(OFFSETS)
    cut = names.index(last_present) + 1
    for n, name in enumerate(names[:cut]):
        assert getattr(info, name) == n + 1, name
    for name in names[cut:]:
        assert getattr(info, name) is None, name  # unknown, never 0
    if first_missing:
        assert getattr(info, first_missing) is None


def test_a_length_that_cuts_a_member_in_half_drops_that_member() -> None:
    info = parse_tcp_info(fixture(106))  # 2 bytes into the u64 pacing rate
    assert info.total_retrans == list(OFFSETS).index("total_retrans") + 1
    assert info.pacing_rate_bytes_per_s is None


def test_app_limited_bit_is_unknown_before_the_delivery_rate_existed() -> None:
    assert parse_tcp_info(fixture(144)).delivery_rate_app_limited is None
    assert parse_tcp_info(fixture(168)).delivery_rate_app_limited is True


def test_decoding_at_an_offset_inside_a_larger_buffer() -> None:
    raw = fixture(248)
    buf = b"\xff" * 12 + raw + b"\xee" * 40
    assert parse_tcp_info(buf, 12, 248) == parse_tcp_info(raw)
    assert parse_tcp_info(buf, 12, 104) == parse_tcp_info(raw[:104])


def test_units_are_the_kernels_microseconds() -> None:
    info = parse_tcp_info(fixture(248, rtt_us=26, rttvar_us=10, rto_us=204_000, min_rtt_us=8))
    assert (info.rtt_us, info.rttvar_us, info.rto_us, info.min_rtt_us) == (26, 10, 204_000, 8)


def test_pack_is_the_inverse_of_parse_for_every_length() -> None:
    for length in (104, 120, 136, 144, 160, 168, 192, 200, 224, 232, 240, 248):
        info = parse_tcp_info(fixture(length))
        packed = pack_tcp_info(info)
        assert len(packed) == length
        assert parse_tcp_info(packed) == info


def test_field_reader_reads_only_the_named_members() -> None:
    names = ("retransmits", "unacked", "bytes_acked", "total_rto")
    read = field_reader(names)
    raw = fixture(248)
    expected = tuple(list(OFFSETS).index(n) + 1 for n in names)
    assert read(raw, 0, 248) == expected
    # Too short for total_rto (a 6.7 field): that one is None, the rest still read.
    assert read(raw[:232], 0, 232) == (*expected[:3], None)
    with pytest.raises(ValueError):
        field_reader(("bytes_acked", "unacked"))  # not in struct order


def test_tcp_info_is_frozen_and_serialisable() -> None:
    info = parse_tcp_info(fixture(104))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.rtt_us = 1  # type: ignore[misc]
    as_dict = info.to_dict()
    assert as_dict["rtt_us"] == list(OFFSETS).index("rtt_us") + 1 and as_dict["bytes_acked"] is None
    assert set(as_dict) == {f.name for f in dataclasses.fields(TcpInfo)}
