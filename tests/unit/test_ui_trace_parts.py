"""The UI's kernel-trace parts on a recorded exchange: feed, state timeline, lit diagram, events rows, sparkline."""

from __future__ import annotations

import re

import ui_trace_scenario as rec
from rich.text import Text

from netlens.trace.events import ResetSent
from netlens.ui.kernel_events import (
    KERNEL,
    conn_of,
    index_at_time,
    interleave,
    kernel_records,
    kernel_row,
    number_at_time,
)
from netlens.ui.probe_spark import probe_lines, sparkline
from netlens.ui.tcp_states import CURRENT, LIT, UNVISITED, diagram, timeline_text
from netlens.ui.trace_feed import RecordedTraceFeed


def feed() -> RecordedTraceFeed:
    recorded = RecordedTraceFeed(rec.events(), [(rec.SNAPSHOT_AT, rec.snapshot())])
    recorded.poll()
    return recorded


def styles_of(text: Text, word: str) -> list[str]:
    """The style of each occurrence of ``word`` in ``text``."""
    found = []
    for match in re.finditer(rf"\b{word}\b", text.plain):
        spans = [str(span.style) for span in text.spans if span.start <= match.start() < span.end]
        found.append(spans[-1] if spans else "")
    return found


def test_feed_joins_by_cookie_and_folds_time_wait() -> None:
    recorded = RecordedTraceFeed(rec.events(), [(rec.SNAPSHOT_AT, rec.snapshot())])
    shown = recorded.poll()
    assert [e.event for e in shown].count("probe") == 0  # per-segment probes feed sparklines, not the panel
    assert [e.time for e in shown] == sorted(e.time for e in shown)
    server = recorded.timeline_of(rec.snapshot()[1])  # the TIME_WAIT socket, by cookie
    assert server is not None and server.current == "TIME_WAIT"
    assert server.states == ["LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT"]
    client = recorded.timeline_of(rec.Sock("ESTABLISHED", *rec.CLIENT, *rec.SERVER, None))  # by 4-tuple
    assert client is not None and client.states[-3:] == ["CLOSE_WAIT", "LAST_ACK", "CLOSE"]
    near = recorded.events_between(rec.T0 + 0.49, rec.T0 + 0.51)
    assert [(e.event, getattr(e, "new", None)) for e in near] == [
        ("state", "FIN_WAIT1"), ("state", "CLOSE_WAIT"), ("state", "FIN_WAIT2")]
    assert recorded.status() == f"kernel events {len(shown)}"


def test_timeline_names_the_packet_that_caused_each_step() -> None:
    server = feed().timeline_of(rec.snapshot()[1])
    text = timeline_text(server, rec.packets(), now=rec.SNAPSHOT_AT + 10).plain
    assert "FIN_WAIT1 → FIN_WAIT2  on packet #9, the ACK of our FIN" in text
    assert "SYN_RECV → ESTABLISHED  on packet #3, the ACK of our SYN-ACK" in text
    assert "ESTABLISHED → FIN_WAIT1  close() or shutdown(): our FIN goes out" in text
    assert "FIN_WAIT2 → TIME_WAIT  on packet #10, the peer's FIN  (sock_diag)" in text
    assert "TIME_WAIT timer: 49.6 s left" in text  # 59.6 s at the snapshot, 10 s later
    assert "+ 0.499870s  ESTABLISHED → FIN_WAIT1" in text and "retransmissions: 1" in text


def test_timeline_without_capture_says_so() -> None:
    client = feed().timeline_of(rec.Sock("CLOSE", *rec.CLIENT, *rec.SERVER, rec.CLIENT_COOKIE))
    text = timeline_text(client, [], now=rec.SNAPSHOT_AT).plain
    assert "LAST_ACK → CLOSE  the ACK of our FIN (not captured)" in text
    assert "no state change traced" in timeline_text(None, [], 0.0).plain


def test_diagram_lights_visited_states_and_highlights_the_current_one() -> None:
    server = feed().timeline_of(rec.snapshot()[1])
    assert server is not None
    lit = diagram(server.states, server.current)
    assert styles_of(lit, "TIME_WAIT") == [CURRENT]
    for name in ("SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "LISTEN"):
        assert styles_of(lit, name) == [LIT], name
    for name in ("SYN_SENT", "CLOSE_WAIT", "LAST_ACK", "CLOSING"):
        assert styles_of(lit, name) == [UNVISITED], name
    assert styles_of(lit, "CLOSE") == [UNVISITED, UNVISITED]  # the passive side never was CLOSE
    client = diagram(["CLOSE", "SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"], "CLOSE")
    assert styles_of(client, "CLOSE") == [LIT, CURRENT]  # started at the top, ends at the bottom
    fresh = diagram(["CLOSE", "SYN_SENT"], "SYN_SENT")
    assert styles_of(fresh, "CLOSE") == [LIT, UNVISITED] and styles_of(fresh, "SYN_SENT") == [CURRENT]


def test_kernel_rows_interleave_with_server_events_by_time() -> None:
    conns = {(*rec.SERVER, *rec.CLIENT): 7}
    events = [e for e in rec.events() if e.event in ("state", "retransmit")]
    events.sort(key=lambda e: e.ts_ns)
    kernel = kernel_records(events, conns, feed().tuple_of)
    assert all(r[2] == 7 for r in kernel)  # both ends belong to server connection #7
    server = [(0, rec.T0 + 0.0002, 7, "accepted"), (5, rec.T0 + 0.55, 7, "closed")]
    merged = interleave(server, kernel)
    assert [r[1] for r in merged] == sorted(r[1] for r in merged)
    assert merged.index(server[0]) == 4 and merged[-1][0] == KERNEL
    row = kernel_row(next(r for r in kernel if getattr(r[3], "new", "") == "FIN_WAIT1")).plain
    assert row.startswith("12:00:00.500 #7    kernel  srv state ESTABLISHED → FIN_WAIT1")
    reset = ResetSent(int(rec.T0 * 1e9), 0, 0, None, 2, "127.0.0.1", 5001, "127.0.0.1", 40001, "UNKNOWN",
                      "NO_SOCKET\x1b[2J")
    assert conn_of(reset.tuple, conns) == (None, "")
    assert conn_of((*rec.CLIENT, *rec.SERVER), conns) == (7, "cli")
    text = kernel_row((KERNEL, reset.time, None, reset, "")).plain
    assert "reset sent reason NO_SOCKET\\x1b[2J" in text and "\x1b" not in text


def test_jumps_find_the_nearest_time() -> None:
    times = [1.0, 2.0, 2.0, 5.0]
    assert index_at_time(times, 1.5) == 1 and index_at_time(times, 9.0) == 3 and index_at_time([], 1.0) == 0
    packets = rec.packets()
    by_no = {p.no: p.time for p in packets}
    assert number_at_time(1, len(packets), by_no.__getitem__, rec.T0 + 0.500050) == 9
    assert number_at_time(1, len(packets), by_no.__getitem__, rec.T0 - 5) == 1
    assert number_at_time(1, len(packets), by_no.__getitem__, rec.T0 + 5) == 11
    assert number_at_time(3, 2, by_no.__getitem__, 0.0) is None


def test_sparklines() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5], 8) == "▅▅" and sparkline([], 4) == ""
    assert sparkline(range(100), 4) == "▁▃▆█"
    server = feed().timeline_of(rec.snapshot()[1])
    assert server is not None
    lines = [line.plain for line in probe_lines(server.probes, width=6)]
    assert "last 6 samples" in lines[0]
    assert lines[1] == " cwnd    14 segments (ssthresh ∞)  ▁▁▃▅▆█"
    assert lines[2] == " srtt    0.047 ms                  █▅▄▃▂▁"
    assert "no samples yet" in probe_lines([])[1].plain


def test_probe_floods_are_sampled_and_the_status_says_so() -> None:
    from netlens.trace.events import Kind
    from netlens.ui.trace_feed import PROBES_PER_POLL, KernelTraceFeed

    lo = b"\x7f\x00\x00\x01"
    probes = [(Kind.PROBE, 10**18 + i * 25_000, 0, 1, None, 2, lo, 5000, lo, 40000, 10 + i, 0x7FFFFFFF, 50,
               65483, 65483, 100, 0, 0) for i in range(100)]
    state = (Kind.STATE, 10**18 + 50 * 25_000 + 1, 0, 1, None, 2, lo, 5000, lo, 40000, "ESTABLISHED", "FIN_WAIT1")
    feed = KernelTraceFeed()
    events = feed.thin([*probes, state])
    assert [e.event for e in events].count("probe") == PROBES_PER_POLL
    assert [e.event for e in events].count("state") == 1 and feed.probes_skipped == 100 - PROBES_PER_POLL
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    assert events[-1].cwnd == 109  # type: ignore[attr-defined]  # the newest sample is always kept
    assert feed.status() == f"kernel events 0, tcp_probe sampled ({100 - PROBES_PER_POLL} skipped)"
