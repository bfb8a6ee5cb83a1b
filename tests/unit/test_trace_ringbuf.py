"""``trace_pipe_raw`` pages: record boundaries, time deltas, lost-event counts, and hostile bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trace_records import DATA, absolute_stamp, data_event, discarded, page, time_extend

from netlens.trace.formats import FormatError
from netlens.trace.ringbuf import PageLayout, parse_layout, parse_page

LAYOUT = parse_layout((DATA / "header_page").read_text(), (DATA / "header_event").read_text())
T0 = 1_796_136_606_403_176_774  # a TAI timestamp in ns: above 2**59, so the top bits matter


def test_the_kernels_headers_give_the_layout() -> None:
    assert PageLayout(timestamp_offset=0, commit_offset=8, commit_size=8, data_offset=16,
                                type_len_bits=5, time_delta_bits=27, padding_type=29, time_extend_type=30,
                                time_stamp_type=31, data_max_type_len=28) == LAYOUT


def test_an_unknown_header_layout_is_refused() -> None:
    with pytest.raises(FormatError):
        parse_layout("field: u64 timestamp; offset:0; size:8; signed:0;", "")


def test_short_and_long_records_with_accumulating_deltas() -> None:
    small, large = b"a" * 12, b"b" * 136  # tcp_probe records are 136 bytes: the long form
    body = data_event(0, small) + data_event(500, large) + data_event(7, small)
    parsed = parse_page(page(T0, body), LAYOUT)
    assert parsed.missed is None
    assert [ts - T0 for ts, _, _ in parsed.events] == [0, 500, 507]
    raw = page(T0, body)
    for (_, offset, length), payload in zip(parsed.events, (small, large, small), strict=True):
        assert raw[offset:offset + len(payload)] == payload and length >= len(payload)


def test_time_extend_and_absolute_stamps() -> None:
    big_gap = 5 * 10**9  # 5 s: does not fit in 27 bits of delta
    body = data_event(10, b"x" * 8) + time_extend(big_gap) + data_event(3, b"y" * 8)
    body += absolute_stamp(T0 + 10**10) + data_event(0, b"z" * 8)
    stamps = [ts for ts, _, _ in parse_page(page(T0, body), LAYOUT).events]
    assert stamps == [T0 + 10, T0 + 10 + big_gap + 3, T0 + 10**10]


def test_discarded_records_and_the_end_padding_are_skipped() -> None:
    body = data_event(1, b"a" * 8) + discarded(99, 20) + data_event(2, b"b" * 8)
    body += struct.pack("=I", 29)  # padding with delta 0: the rest of the page is empty
    parsed = parse_page(page(T0, body), LAYOUT)
    # A discarded record's delta does not count (the kernel's reader ignores it too).
    assert [ts - T0 for ts, _, _ in parsed.events] == [1, 3]


@pytest.mark.parametrize(("missed", "expected"), [(None, None), (1234, 1234), (-1, -1)])
def test_lost_events_are_reported_with_their_count_when_stored(missed: int | None, expected: int | None) -> None:
    assert parse_page(page(T0, data_event(0, b"q" * 8), missed=missed), LAYOUT).missed == expected


@pytest.mark.parametrize("body", [
    struct.pack("=I", 3),  # a 12-byte record with only 4 bytes present
    struct.pack("=II", 0, 4000),  # a long record longer than the page's data
    struct.pack("=I", 0),  # a long-record header cut off
    struct.pack("=II", 29 | (1 << 5), 1),  # discarded record shorter than its own length word
])
def test_malformed_pages_raise_format_error(body: bytes) -> None:
    with pytest.raises(FormatError):
        parse_page(page(T0, body), LAYOUT)


def test_a_commit_beyond_the_read_is_refused() -> None:
    raw = struct.pack("=QQ", T0, 5000) + bytes(100)
    with pytest.raises(FormatError):
        parse_page(raw, LAYOUT)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_parse_or_raise_format_error(data: bytes) -> None:
    try:
        parsed = parse_page(data, LAYOUT)
    except FormatError:
        return
    for _ts, offset, length in parsed.events:
        assert offset >= 16 and offset + length <= len(data)
