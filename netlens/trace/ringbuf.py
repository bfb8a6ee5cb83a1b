"""The binary pages of ``per_cpu/cpuN/trace_pipe_raw``, read with the layout the kernel publishes.

A read of ``trace_pipe_raw`` returns one ring-buffer sub-buffer ("page"):
a header (``events/header_page``: a 64-bit timestamp, a ``commit`` word
holding the number of data bytes plus two flag bits for lost events, then
the data) followed by compressed event headers (``events/header_event``: a
32-bit word of ``type_len`` and ``time_delta`` bits, then ``array`` words).

``type_len`` 1..28 is a record of ``type_len * 4`` bytes right after the
header word; 0 is a longer record whose length is in ``array[0]``; the three
top values are padding, a time extension (``time_delta`` plus ``array[0]``
shifted left by the delta's width) and an absolute time stamp. Timestamps
are deltas from the page's timestamp, in the instance's ``trace_clock``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from netlens.trace.formats import FormatError

# Flag bits of the page header's commit word (kernel/trace/ring_buffer.c, stable since 2.6.34):
# events were lost before this page; their count is stored after the data.
MISSED_EVENTS = 1 << 31
MISSED_STORED = 1 << 30
_COMMIT_SIZE = MISSED_STORED - 1

_HEADER_FIELD = re.compile(r"field:\s*(?:\w+\s+)*?(\w+)\s+(\w+);\s*offset:(\d+);\s*size:(\d+);")
_BITS = re.compile(r"^\s*(\w+)\s*:\s*(\d+)\s*bits", re.MULTILINE)
_TYPE = re.compile(r"^\s*(\w+)\s*:\s*type\s*==\s*(\d+)", re.MULTILINE)
_DATA_MAX = re.compile(r"data max type_len\s*==\s*(\d+)")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


@dataclass(frozen=True, slots=True)
class PageLayout:
    """Where the page header's fields sit, and how event headers are packed."""

    timestamp_offset: int = 0
    commit_offset: int = 8
    commit_size: int = 8
    data_offset: int = 16
    type_len_bits: int = 5
    time_delta_bits: int = 27
    padding_type: int = 29
    time_extend_type: int = 30
    time_stamp_type: int = 31
    data_max_type_len: int = 28


def parse_layout(header_page: str, header_event: str) -> PageLayout:
    """Build a :class:`PageLayout` from the text of ``events/header_page`` and ``events/header_event``."""
    fields = {name: (int(offset), int(size)) for _type, name, offset, size in _HEADER_FIELD.findall(header_page)}
    bits = {name: int(width) for name, width in _BITS.findall(header_event)}
    types = {name: int(value) for name, value in _TYPE.findall(header_event)}
    data_max = _DATA_MAX.search(header_event)
    try:
        layout = PageLayout(
            timestamp_offset=fields["timestamp"][0],
            commit_offset=fields["commit"][0],
            commit_size=fields["commit"][1],
            data_offset=fields["data"][0],
            type_len_bits=bits["type_len"],
            time_delta_bits=bits["time_delta"],
            padding_type=types["padding"],
            time_extend_type=types["time_extend"],
            time_stamp_type=types["time_stamp"],
            data_max_type_len=int(data_max[1]) if data_max else types["padding"] - 1,
        )
    except KeyError as missing:
        raise FormatError(f"the ring buffer header lacks {missing}: an unknown kernel layout") from None
    if layout.type_len_bits + layout.time_delta_bits != 32 or layout.commit_size not in (4, 8):
        raise FormatError("the ring buffer event header is not the 32-bit one netlens reads")
    return layout


@dataclass(slots=True)
class Page:
    """The records of one page: ``(timestamp, offset of the record's data, its length)``, oldest first."""

    events: list[tuple[int, int, int]]
    #: Events the kernel overwrote before this page could be read: None if none, -1 if it did not say how many.
    missed: int | None


def parse_page(page: bytes, layout: PageLayout) -> Page:
    """Split one ``trace_pipe_raw`` page into its records; raises :class:`FormatError` on a malformed page."""
    if len(page) < layout.data_offset:
        raise FormatError(f"a {len(page)}-byte read is shorter than a page header")
    ts = _U64.unpack_from(page, layout.timestamp_offset)[0]
    commit_format = "=Q" if layout.commit_size == 8 else "=I"
    commit = struct.unpack_from(commit_format, page, layout.commit_offset)[0]
    size = commit & _COMMIT_SIZE
    start = layout.data_offset
    end = start + size
    if end > len(page):
        raise FormatError(f"the page says {size} data bytes but only {len(page) - start} were read")
    missed: int | None = None
    if commit & MISSED_EVENTS:
        missed = _U64.unpack_from(page, end)[0] if commit & MISSED_STORED and end + 8 <= len(page) else -1
    return Page(_records(page, start, end, ts, layout), missed)


def _records(page: bytes, offset: int, end: int, ts: int, layout: PageLayout) -> list[tuple[int, int, int]]:
    """Walk the event headers from ``offset`` to ``end``; the hot loop of the reader."""
    unpack_u32 = _U32.unpack_from
    type_mask = (1 << layout.type_len_bits) - 1
    delta_shift = layout.type_len_bits
    extend_shift = layout.time_delta_bits
    data_max = layout.data_max_type_len
    padding, extend, absolute = layout.padding_type, layout.time_extend_type, layout.time_stamp_type
    msb_mask = ~((1 << 59) - 1) & 0xFFFF_FFFF_FFFF_FFFF  # bits an absolute stamp does not carry
    out: list[tuple[int, int, int]] = []
    append = out.append
    while offset + 4 <= end:
        header = unpack_u32(page, offset)[0]
        type_len = header & type_mask
        delta = header >> delta_shift
        if 0 < type_len <= data_max:
            ts += delta
            length = type_len << 2
            if offset + 4 + length > end:
                raise FormatError("a ring buffer record runs past the end of its page")
            append((ts, offset + 4, length))
            offset += 4 + length
            continue
        if type_len == padding and delta == 0:
            break  # the rest of the page is unused
        if offset + 8 > end:
            raise FormatError("a ring buffer record header is cut off at the end of its page")
        word = unpack_u32(page, offset + 4)[0]
        if type_len == 0 or type_len == padding:
            if word < 4 or offset + 4 + word > end:
                raise FormatError("a ring buffer record runs past the end of its page")
            if type_len == 0:  # a long record: its length (counting this word) in array[0]
                ts += delta
                append((ts, offset + 8, word - 4))
            # else a discarded record: skipped, and its delta does not count (as the kernel reads it)
            offset += 4 + word
        elif type_len == extend:
            ts += delta + (word << extend_shift)
            offset += 8
        elif type_len == absolute:
            ts = _absolute(delta + (word << extend_shift), ts, msb_mask)
            offset += 8
        else:
            raise FormatError(f"unknown ring buffer record type {type_len}")
    return out


def _absolute(stamp: int, before: int, msb_mask: int) -> int:
    """An absolute time stamp record: it carries only the low 59 bits, the top ones come from ``before``."""
    top = before & msb_mask
    if not top:
        return stamp
    stamp |= top
    return stamp + (1 << 59) if stamp < before else stamp
