"""Wireshark's conversation table for TCP: who, how much each way, when, and what of it was seen."""

from __future__ import annotations

from typing import Any, NamedTuple

from netlens.capture.stats.tracker import StatsTracker
from netlens.capture.streams import SEEN_ACK, SEEN_DATA, SEEN_FIN, SEEN_RST, SEEN_SYN, SEEN_SYN_ACK, Stream

_NAMES = ((SEEN_SYN, "SYN"), (SEEN_SYN_ACK, "SYN-ACK"), (SEEN_ACK, "ACK"), (SEEN_DATA, "data"), (SEEN_FIN, "FIN"),
          (SEEN_RST, "RST"))


def completeness_names(bits: int) -> str:
    """``SYN, SYN-ACK, ACK, data, FIN`` for Wireshark's completeness bits (``nothing`` for 0)."""
    return ", ".join(name for bit, name in _NAMES if bits & bit) or "nothing"


class Conversation(NamedTuple):
    """One TCP stream as a row of the conversation table (frame bytes, like ``tshark -z conv,tcp``)."""

    stream: int
    client: str
    server: str
    packets_c2s: int
    bytes_c2s: int
    packets_s2c: int
    bytes_s2c: int
    #: Seconds from the first packet of the capture to the stream's first packet.
    start: float
    #: Seconds from the stream's first packet to its last.
    duration: float
    #: Wireshark's completeness bits (1 SYN, 2 SYN-ACK, 4 ACK, 8 data, 16 FIN, 32 RST) and their names.
    completeness_bits: int
    completeness: str

    def throughput_bps(self, direction: int) -> float | None:
        """Bits per second each way over the stream's duration (None for a single instant)."""
        if self.duration <= 0:
            return None
        return (self.bytes_c2s if direction == 0 else self.bytes_s2c) * 8 / self.duration

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``netlens read --conversations --json`` prints for this stream."""
        row = self._asdict()
        row["start"] = round(self.start, 9)
        row["duration"] = round(self.duration, 9)
        row["throughput_c2s_bps"] = self.throughput_bps(0)
        row["throughput_s2c_bps"] = self.throughput_bps(1)
        return row

    def line(self) -> str:
        """One line of the text table (see :data:`HEADER`)."""
        def rate(direction: int) -> str:
            value = self.throughput_bps(direction)
            return "-" if value is None else _si(value) + "bit/s"
        return (f"{self.stream:>6} {self.client:>22} {self.server:>22} "
                f"{self.packets_c2s:>8} {_si(self.bytes_c2s) + 'B':>8} {rate(0):>12} "
                f"{self.packets_s2c:>8} {_si(self.bytes_s2c) + 'B':>8} {rate(1):>12} "
                f"{self.start:>10.6f} {self.duration:>10.6f}  {self.completeness}")


#: Column titles of :meth:`Conversation.line`.
HEADER = (f"{'stream':>6} {'client':>22} {'server':>22} {'pkts →':>8} {'bytes →':>8} {'rate →':>12} "
          f"{'pkts ←':>8} {'bytes ←':>8} {'rate ←':>12} {'start s':>10} {'duration':>10}  completeness")


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} "


def conversations(tracker: StatsTracker, origin_ns: int | None = None) -> list[Conversation]:
    """The conversation table of every stream the tracker has seen, in stream order.

    ``origin_ns`` is the time relative starts count from (default: the ring's first packet).
    """
    origin = origin_ns if origin_ns is not None else (tracker.ring.first_ts_ns or 0)
    rows = []
    for stats in tracker.streams():
        try:
            stream: Stream = tracker.store.stream(stats.id)
        except KeyError:
            continue
        rows.append(Conversation(
            stats.id, stream.client, stream.server, stats.packets[0], stats.bytes[0], stats.packets[1],
            stats.bytes[1], (stats.first_ts - origin) / 1e9, (stats.last_ts - stats.first_ts) / 1e9,
            stats.completeness, completeness_names(stats.completeness)))
    return rows
