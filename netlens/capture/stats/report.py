"""What ``netlens read``/``capture`` print from the statistics: per-packet fields, conversations, graphs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from netlens.capture.ring import PacketRing
from netlens.capture.stats.conversations import HEADER, conversations
from netlens.capture.stats.series import build_graph, rtt_summary
from netlens.capture.stats.tracker import StatsTracker, packet_fields
from netlens.capture.streams import Stream
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
    return field_lines(tracker.window_bytes(no), tracker.ack_rtt_ns(no), tracker.acked_packet(no),
                       tracker.bytes_in_flight(no))


def field_lines(window: int | None, rtt_ns: int | None, acked: int | None, flight: int | None) -> list[str]:
    """Sentences for the calculated window, the ACK RTT and the bytes in flight (those known)."""
    lines = []
    if window is not None:
        lines.append(f"Calculated window: {window} bytes (window field × scale factor)")
    if rtt_ns is not None:
        lines.append(f"ACK RTT: {rtt_ns / 1e6:.3f} ms since packet {acked}, the segment this ACKs")
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


class StatsOutput:
    """The statistics side of ``netlens read``, behind four calls so that the command stays short.

    Built from the parsed options (a mistake in them is a one-sentence
    :class:`UserError`); :meth:`follow` starts the tracker when an option needs
    it; :attr:`view` says whether a statistics view replaces the packet list.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        if args.graph and (args.stream is None or not args.output):
            raise UserError("--graph needs the stream and a file: --graph KIND --stream N --output FILE.svg")
        if args.output and not args.graph:
            raise UserError("--output is where --graph writes; add --graph tsg|throughput|rtt|window.")
        self.args = args
        #: A view of its own (conversations or a graph) instead of the packet list.
        self.view = bool(args.conversations or args.graph)
        self.needed = bool(self.view or args.json or args.dissect)
        self.tracker: StatsTracker | None = None

    def follow(self, ring: PacketRing, store: Any) -> Callable[[int], dict[str, Any]] | None:
        """Start following ``store`` if an option needs statistics; returns the JSON fields function (or None)."""
        if self.needed:
            self.tracker = StatsTracker(ring, store)
        return json_fields(self.tracker) if self.tracker is not None and self.args.json else None

    def catch_up(self) -> None:
        """Process whatever the store analysed and the tracker has not seen yet."""
        while self.tracker is not None and self.tracker.update():
            pass

    def dissect_lines(self, no: int) -> list[str]:
        """The fields of packet ``no`` as sentences (none when not following)."""
        return analysis_lines(self.tracker, no) if self.tracker is not None else []

    def print_view(self, out: TextIO) -> None:
        """Print the conversation table, or write the graph (and say so on stderr)."""
        assert self.tracker is not None, "follow() first"
        args = self.args
        if args.conversations:
            out.write(conversation_report(self.tracker, args.json) + "\n")
            return
        direction = None if args.direction is None else ("c2s", "s2c").index(args.direction)
        title = write_stream_graph(self.tracker, args.graph, args.stream, args.output, direction)
        print(f"netlens: wrote {title} to {args.output}.", file=sys.stderr)


def packet_statistics(ring: PacketRing, stream: Stream, no: int) -> tuple[str, ...]:
    """The sentences of :func:`field_lines` for one packet of ``stream`` (its stream is followed up to it)."""
    result = packet_fields(ring, stream, no)
    if result is None:
        return ()
    return tuple(field_lines(result.window_bytes, result.ack_rtt_ns, result.acked_no, result.bytes_in_flight))
