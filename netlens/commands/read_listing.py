"""The packet list ``netlens read`` prints: text lines, JSON objects (``--json``) or chosen fields (``--fields``).

One object for both ways of reading: the serial loop asks for a range of
analysed packets, a worker of the parallel reader (:mod:`netlens.commands.read_parallel`)
for the packets it owns, with its stream numbers mapped to the file's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netlens.capture import PacketRing, PacketStore

#: Packets read between two rounds of analysis and printing (the packet list depends on it: a message
#: completed within the same round is "reassembled in #N", one completed later "unfinished").
FLUSH_EVERY = 2048


def listing_stats(args: argparse.Namespace, json_stats: Callable[[int], dict[str, Any]] | None,
                  ring: PacketRing, store: PacketStore) -> Callable[[int], dict[str, Any]] | None:
    """The statistics the packet list prints: ``--json``'s, or those ``--fields`` names (None: none)."""
    if not args.fields:
        return json_stats
    from netlens.capture.packet_fields import STATS_FIELDS, parse_fields

    if not STATS_FIELDS & set(parse_fields(args.fields)):
        return None
    from netlens.capture.stats import StatsTracker
    from netlens.capture.stats.report import json_fields

    return json_fields(StatsTracker(ring, store))


class Listing:
    """The lines of analysed packets of ``store``, formatted the way ``args`` asks (``--stream N`` applied).

    ``stats_fields(no)`` gives the statistics of a packet (JSON keys, or the statistics fields);
    ``stream_ids`` maps the store's stream numbers to those printed (the parallel reader's workers
    number their streams apart from the file's).
    """

    def __init__(self, args: argparse.Namespace, store: PacketStore,
                 stats_fields: Callable[[int], dict[str, Any]] | None,
                 stream_ids: dict[int, int] | None = None) -> None:
        from netlens.capture.packet_fields import FieldsFormatter, parse_fields
        from netlens.commands.capture import formatter

        self.store = store
        self.only = args.stream
        self.stream_ids = stream_ids
        names = getattr(args, "fields", None)
        self._fields = FieldsFormatter(parse_fields(names), store, stats_fields, stream_ids) if names else None
        self._text = formatter(args, stats_fields)

    def lines(self, records: list[tuple[int, int, bytes]]) -> list[str]:
        """Lines of the analysed packets ``records`` (``(no, ts_ns, frame)`` of consecutive packets), in order."""
        if not records:
            return []
        if self._fields is not None:
            return self._field_lines(records)
        return self._summary_lines(self.store.summaries(records[0][0], records[-1][0]))

    def numbered_lines(self, records: list[tuple[int, int, bytes]]) -> list[tuple[int, str]]:
        """``(no, line)`` of the analysed packets ``records`` (any of them, ascending); one the ``--stream``
        filter leaves out has an empty line."""
        if self._fields is not None:
            field_line = self._field_line
            return [(no, field_line(no, ts_ns, frame)) for no, ts_ns, frame in records]
        store, summary_line = self.store, self._summary_line
        return [(no, summary_line(store.summary(no))) for no, _, _ in records]

    def _field_lines(self, records: Iterable[tuple[int, int, bytes]]) -> list[str]:
        line = self._field_line
        return [text for text in (line(no, ts_ns, frame) for no, ts_ns, frame in records) if text]

    def _field_line(self, no: int, ts_ns: int, frame: bytes) -> str:
        fields = self._fields
        assert fields is not None
        stream_id, line = fields.line(no, ts_ns, frame)
        return "" if self.only is not None and stream_id != self.only else line

    def _summary_lines(self, summaries: Iterable[Any]) -> list[str]:
        line = self._summary_line
        return [text for text in (line(summary) for summary in summaries) if text]

    def _summary_line(self, summary: Any) -> str:
        ids = self.stream_ids
        if ids is not None and summary.stream is not None:
            summary = summary._replace(stream=ids[summary.stream])
        if self.only is not None and summary.stream != self.only:
            return ""
        return str(self._text(summary))
