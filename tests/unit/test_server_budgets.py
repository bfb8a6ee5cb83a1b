"""Memory held by events is bounded by bytes, and event lines are cut, escaped and pluralised."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from netlens.server.bus import RECORD_OVERHEAD, EventBus, make_record, record_size
from netlens.server.events import (
    Accepted,
    Closed,
    Received,
    Sent,
    StageReached,
    event_line,
    record_dict,
    record_line,
)
from netlens.server.printing import RecordFormatter, format_json, format_text
from netlens.textsafe import safe_json


def test_the_ring_keeps_its_byte_budget_and_readers_count_what_they_lost() -> None:
    bus = EventBus(capacity=1 << 10, budget=64 * 1024)
    sub = bus.subscribe()
    for i in range(500):
        bus.publish(make_record(Received, float(i), 1, 1000, b"x" * 1000))
        assert bus.bytes <= bus.budget
    assert bus.bytes == sum(record_size(r) for r in bus._ring if r is not None)
    kept = sub.drain()
    assert len(kept) == len(range(bus.oldest, bus.published)) < 500
    assert sub.dropped == 500 - len(kept) and bus.evicted == sub.dropped
    assert [e.ts for e in kept] == [float(i) for i in range(500 - len(kept), 500)]


def test_small_records_fill_by_count_not_by_bytes() -> None:
    bus = EventBus(capacity=16, budget=1 << 20)
    sub = bus.subscribe()
    for i in range(40):
        bus.publish(make_record(Sent, float(i), 1, i, 0))
    assert bus.bytes == 16 * RECORD_OVERHEAD and bus.evicted == 0
    assert [e.nbytes for e in sub.drain()] == list(range(24, 40)) and sub.dropped == 24


def test_one_byte_is_singular() -> None:
    assert "recv 1 byte:" in Received(0.0, 1, 1, b"x").describe()
    assert "recv 2 bytes:" in Received(0.0, 1, 2, b"xy").describe()
    assert Sent(0.0, 1, 1, 1).describe() == "send 1 byte, 1 byte left (partial)"


def test_long_texts_are_cut_in_lines_and_escaped() -> None:
    line = event_line(StageReached(0.0, 3, "request complete", "search '" + "\x1b" * 100_000 + "'"))
    assert len(line) < 300 and "\x1b" not in line
    assert "\\ud800" in event_line(Closed(0.0, 3, "peer", "x\ud800"))


def test_batch_formatters_match_the_event_classes() -> None:
    records = [
        make_record(Accepted, 1700000000.25, 7, ("127.0.0.1", 5000), ("127.0.0.1", 65432), 12345),
        make_record(Received, 1700000000.5, 7, 5, b"a\x1b\xc2\x9b\xed\xa0\x80"),
        make_record(StageReached, 1700000000.75, 7, "request complete", "search '\ud800\u202e\x85'"),
        make_record(Closed, 1700000001.0, 7, "server", "response sent"),
    ] * 3
    formatter = RecordFormatter()
    lines = formatter.format(records).splitlines()
    assert lines == [record_line(r) for r in records] == format_text(records).splitlines()
    objects = format_json(records).splitlines()
    for line, record in zip(objects, records, strict=True):
        assert json.loads(line) == json.loads(safe_json(record_dict(record)))
        assert line == safe_json(record_dict(record))
        assert not any(c in line for c in "\x1b\x85\u202e\ud800")
        line.encode("utf-8")


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 1e-7, 1e-6, 4e-4, 1e-3, 0.7]),
                                st.integers(1, 4)), min_size=1, max_size=300),
       start=st.floats(1.6e9, 2.1e9), batch=st.integers(1, 64))
def test_batch_lines_match_the_record_lines_for_any_stamps(
        steps: list[tuple[float, int]], start: float, batch: int) -> None:
    """Stamps shared by a loop step, a few units in the last place apart, or across milliseconds and seconds."""
    records, ts = [], start
    for step, conn in steps:
        # Integer steps: that many units in the last place (millisecond edges are found that way too).
        for _ in range(int(step)):
            ts = math.nextafter(ts, math.inf)
        ts += step if step < 1 else 0.0
        records.append(make_record(Sent, ts, conn, 44, 0) if conn % 2
                       else make_record(Received, ts, conn, 3, b"a\x1bc"))
    text, as_json = RecordFormatter(), RecordFormatter(as_json=True)
    lines = b"".join(text.format_bytes(records[i:i + batch]) for i in range(0, len(records), batch))
    assert lines.decode().splitlines() == [record_line(r) for r in records]
    objects = b"".join(as_json.format_bytes(records[i:i + batch]) for i in range(0, len(records), batch))
    assert objects.decode().splitlines() == [safe_json(record_dict(r)) for r in records]


def test_millisecond_bounds_hold_only_stamps_of_that_millisecond() -> None:
    from netlens.server.printing import _millisecond

    for ms in (1_796_157_287_000, 1_796_157_287_999, 1_700_000_000_001, 2_099_999_999_999):
        low, high = _millisecond(ms)
        assert int(low * 1000) == ms and int(math.nextafter(high, -math.inf) * 1000) == ms
        assert int(math.nextafter(low, -math.inf) * 1000) <= ms and high <= (ms + 1) / 1000


@settings(max_examples=60, deadline=None)
@given(accepts=st.lists(st.tuples(
    st.sampled_from(["127.0.0.1", "::1", "10.0.0.7", "fe80::1", "h\u00e9\x1b"]), st.integers(0, 65535),
    st.sampled_from([("127.0.0.1", 65432), ("::", 8080), ("0.0.0.0", 1)]),
    st.one_of(st.none(), st.integers(0, 2 ** 64 - 1), st.just("old"))), min_size=1, max_size=40))
def test_accepted_lines_from_kept_parts_match_the_record_lines(
        accepts: list[tuple[str, int, tuple[str, int], int | str | None]]) -> None:
    """The per-host and per-local-address parts give what the describers and record_dict give."""
    records = [make_record(Accepted, 1.7e9 + i, i + 1, (host, port), local, cookie) if cookie != "old"
               else (1, 1.7e9 + i, i + 1, (host, port), local)  # recorded before cookies were
               for i, (host, port, local, cookie) in enumerate(accepts)]
    text, as_json = RecordFormatter(), RecordFormatter(as_json=True)
    assert text.format(records).splitlines() == [record_line(r) for r in records]
    assert as_json.format(records).splitlines() == [safe_json(record_dict(r)) for r in records]
