"""What ``netlens read``/``capture`` print from the statistics: per-packet fields, conversations, graphs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from netlens.capture.stats.conversations import HEADER, conversations
from netlens.capture.stats.series import build_graph, rtt_summary
from netlens.capture.stats.tracker import StatsTracker
from netlens.errors import UserError


def analysis_fields(tracker: StatsTracker, no: int) -> dict[str, Any]:
    """Wireshark's ``tcp.analysis.ack_rtt`` (seconds), ``acks_frame``, ``bytes_in_flight`` and ``tcp.window_size``."""
    rtt = tracker.ack_rtt_ns(no)
    return {
        "ack_rtt": None if rtt is None else rtt / 1e9,
        "acks_frame": tracker.acked_packet(no),
        "bytes_in_flight": tracker.bytes_in_flight(no),
        "window_size": tracker.window_bytes(no),
    }


def analysis_lines(tracker: StatsTracker, no: int) -> list[str]:
    """The same fields as sentences for the packet detail (empty for non-TCP packets)."""
    lines = []
    window = tracker.window_bytes(no)
    if window is not None:
        lines.append(f"Calculated window: {window} bytes (window field × scale factor)")
    rtt = tracker.ack_rtt_ns(no)
    if rtt is not None:
        lines.append(f"ACK RTT: {rtt / 1e6:.3f} ms since packet {tracker.acked_packet(no)}, the segment this ACKs")
    flight = tracker.bytes_in_flight(no)
    if flight is not None:
        lines.append(f"Bytes in flight: {flight} (sent by this side and not acknowledged yet)")
    return lines


def conversation_report(tracker: StatsTracker, as_json: bool) -> str:
    """The conversation table as text lines, or as one JSON list."""
    rows = conversations(tracker)
    if as_json:
        return json.dumps([row.to_json() for row in rows], ensure_ascii=False)
    lines = [HEADER] + [row.line() for row in rows]
    for stats in tracker.streams():
        for direction, arrow in ((0, "→"), (1, "←")):
            summary = rtt_summary(stats.series[direction])
            if summary is not None:
                lines.append(f"stream {stats.id} {arrow} data: {summary.line()}")
    return "\n".join(lines)


def write_stream_graph(tracker: StatsTracker, kind: str, stream_id: int, path: str,
                       direction: int | None = None) -> str:
    """Write graph ``kind`` of stream ``stream_id`` to ``path``; returns the graph's title."""
    from netlens.capture.stats.render import write_graph

    try:
        stats = tracker.stream(stream_id)
    except KeyError:
        raise UserError(f"there is no TCP stream {stream_id} in this capture.") from None
    graph = build_graph(kind, stats, direction, origin_ns=tracker.ring.first_ts_ns)
    write_graph(graph, path)
    return graph.title


def json_fields(tracker: StatsTracker) -> Callable[[int], dict[str, Any]]:
    """A function giving packet ``no``'s :func:`analysis_fields`, catching the tracker up with the store first."""
    def fields(no: int) -> dict[str, Any]:
        while tracker.last < no and tracker.update():
            pass
        return analysis_fields(tracker, no)
    return fields
