"""Graphs of one stream as plain data: traces of (x, y) points that any renderer can draw.

Four graphs, as Wireshark's and tcptrace's stream graphs define them:

* ``tsg``: time-sequence (Stevens/tcptrace): each segment as a vertical bar
  from its first to its last byte, retransmissions apart, the ACK line, the
  receive-window line (ACK + window) and SACK blocks;
* ``throughput``: bits per second over a sliding window, of all segments sent
  and of goodput (bytes newly acknowledged);
* ``rtt``: ACK RTT samples, and EstimatedRTT/DevRTT with the textbook
  α = 1/8, β = 1/4 (RFC 6298's order), beside the kernel's srtt when known;
* ``window``: the receiver's advertised window, bytes in flight, and the
  kernel's cwnd when known.

x is seconds since ``origin_ns``; each point remembers its packet number so a
UI can jump from a point to its packet.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from netlens.capture.stats.columns import Columns
from netlens.capture.stats.tracker import DirectionSeries, StreamStats

GRAPHS = ("tsg", "throughput", "rtt", "window")
ALPHA = 1 / 8
BETA = 1 / 4


@dataclass
class Trace:
    """One legend entry: points (or vertical bars from ``ys`` to ``tops``), with their packet numbers."""

    name: str
    #: ``points``, ``line``, ``step`` (a line that holds its value until the next point) or ``bars``.
    kind: str
    color: str
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    tops: list[float] = field(default_factory=list)
    packets: list[int] = field(default_factory=list)


@dataclass
class Graph:
    """A titled, labelled set of traces for one stream and direction."""

    kind: str
    title: str
    x_label: str
    y_label: str
    traces: list[Trace]
    #: One line of numbers for the footer (e.g. RTT min/avg/max).
    note: str = ""


class RttSummary(NamedTuple):
    """RTT samples of one direction (Karn's rule applied) and the textbook estimates after the last one."""

    samples: int
    min_ms: float
    avg_ms: float
    max_ms: float
    estimated_ms: float
    dev_ms: float

    def line(self) -> str:
        """``RTT 12 samples: min 50.1 / avg 51.0 / max 55.2 ms; EstimatedRTT 50.9 ms, DevRTT 0.4 ms``."""
        return (f"RTT {self.samples} samples: min {self.min_ms:.3f} / avg {self.avg_ms:.3f} / max {self.max_ms:.3f} ms;"
                f" EstimatedRTT {self.estimated_ms:.3f} ms, DevRTT {self.dev_ms:.3f} ms (α=1/8, β=1/4)")


def estimate(samples: list[float]) -> tuple[list[float], list[float]]:
    """EstimatedRTT and DevRTT after each sample (RFC 6298: first R, R/2; then DevRTT before EstimatedRTT)."""
    estimated: list[float] = []
    deviation: list[float] = []
    srtt = dev = 0.0
    for index, sample in enumerate(samples):
        if index == 0:
            srtt, dev = sample, sample / 2
        else:
            dev = (1 - BETA) * dev + BETA * abs(srtt - sample)
            srtt = (1 - ALPHA) * srtt + ALPHA * sample
        estimated.append(srtt)
        deviation.append(dev)
    return estimated, deviation


def karn_samples(series: DirectionSeries) -> tuple[list[int], list[float], list[int]]:
    """(ACK time ns, RTT ms, ACK packet number) of the samples Karn's rule keeps (not of resent segments)."""
    rtts = series.rtts
    times, values, karn, packets = (rtts.column(name) for name in ("ts", "rtt", "karn", "no"))
    keep = [i for i in range(len(times)) if not karn[i]]
    return [times[i] for i in keep], [values[i] / 1e6 for i in keep], [packets[i] for i in keep]


def rtt_summary(series: DirectionSeries) -> RttSummary | None:
    """Min/avg/max and the estimates for one direction's RTT samples (None without samples)."""
    _, values, _ = karn_samples(series)
    if not values:
        return None
    estimated, deviation = estimate(values)
    return RttSummary(len(values), min(values), sum(values) / len(values), max(values), estimated[-1], deviation[-1])


class _View:
    """Time window and origin shared by the builders."""

    def __init__(self, origin_ns: int, start_ns: int | None, stop_ns: int | None) -> None:
        self.origin_ns = origin_ns
        self.start_ns = start_ns
        self.stop_ns = stop_ns

    def rows(self, columns: Columns) -> range:
        lo, hi = columns.window(self.start_ns, self.stop_ns)
        return range(lo, hi)

    def x(self, ts_ns: int) -> float:
        return (ts_ns - self.origin_ns) / 1e9


def _tsg(stats: StreamStats, d: int, view: _View) -> Graph:
    series = stats.series[d]
    sent = Trace("segment", "bars", "blue")
    resent = Trace("retransmission", "bars", "red")
    segs = series.segments
    ts, start, end, flag, no = segs.data
    for i in view.rows(segs):
        trace = resent if flag[i] else sent
        trace.xs.append(view.x(ts[i]))
        trace.ys.append(start[i])
        trace.tops.append(end[i])
        trace.packets.append(no[i])
    ack = Trace("ACK", "step", "green")
    window = Trace("receive window (ACK + window)", "step", "olive")
    acks = series.acks
    ts, acked, edge, no = acks.data
    for i in view.rows(acks):
        x = view.x(ts[i])
        ack.xs.append(x)
        ack.ys.append(acked[i])
        ack.packets.append(no[i])
        window.xs.append(x)
        window.ys.append(edge[i])
        window.packets.append(no[i])
    sack = Trace("SACK block", "bars", "purple")
    sacks = series.sacks
    ts, left, right, no = sacks.data
    for i in view.rows(sacks):
        sack.xs.append(view.x(ts[i]))
        sack.ys.append(left[i])
        sack.tops.append(right[i])
        sack.packets.append(no[i])
    return Graph("tsg", "time-sequence", "time (s)", "relative sequence number (bytes)",
                 [t for t in (sent, resent, ack, window, sack) if t.xs])


def _sliding_rate(times: list[int], amounts: list[int], window_ns: int) -> list[float]:
    """Bits per second over the ``window_ns`` before each point."""
    rates: list[float] = []
    inside: deque[tuple[int, int]] = deque()
    total = 0
    for ts, amount in zip(times, amounts, strict=True):
        inside.append((ts, amount))
        total += amount
        while inside and inside[0][0] <= ts - window_ns:
            total -= inside.popleft()[1]
        rates.append(total * 8 / (window_ns / 1e9))
    return rates


def throughput_window_ns(stats: StreamStats) -> int:
    """The sliding window: a twentieth of the stream's duration, between 10 ms and 1 s."""
    return int(min(1e9, max(1e7, (stats.last_ts - stats.first_ts) / 20)))


def _throughput(stats: StreamStats, d: int, view: _View) -> Graph:
    series = stats.series[d]
    window_ns = throughput_window_ns(stats)
    segs = series.segments
    ts, start, end, _, no = segs.data
    rows = view.rows(segs)
    sent = Trace("throughput (all segments)", "line", "blue")
    times = [ts[i] for i in rows]
    sent.xs = [view.x(t) for t in times]
    sent.ys = [r / 1e6 for r in _sliding_rate(times, [end[i] - start[i] for i in rows], window_ns)]
    sent.packets = [no[i] for i in rows]
    good = Trace("goodput (bytes newly acknowledged)", "line", "green")
    acks = series.acks
    ts, acked, _, no = acks.data
    times, amounts, packets = [], [], []
    highest = None
    for i in view.rows(acks):
        advance = 0 if highest is None else max(0, acked[i] - highest)
        highest = acked[i] if highest is None else max(highest, acked[i])
        times.append(ts[i])
        amounts.append(advance)
        packets.append(no[i])
    good.xs = [view.x(t) for t in times]
    good.ys = [r / 1e6 for r in _sliding_rate(times, amounts, window_ns)]
    good.packets = packets
    return Graph("throughput", f"throughput ({window_ns / 1e6:.0f} ms sliding window)", "time (s)", "Mbit/s",
                 [t for t in (sent, good) if t.xs])


def _rtt(stats: StreamStats, d: int, view: _View) -> Graph:
    times, values, packets = karn_samples(stats.series[d])
    estimated, deviation = estimate(values)
    samples = Trace("ACK RTT sample", "points", "blue")
    srtt = Trace("EstimatedRTT (α=1/8)", "line", "orange")
    dev = Trace("DevRTT (β=1/4)", "line", "gray")
    for t, value, est, var, no in zip(times, values, estimated, deviation, packets, strict=True):
        if (view.start_ns is None or t >= view.start_ns) and (view.stop_ns is None or t <= view.stop_ns):
            x = view.x(t)
            for trace, y in ((samples, value), (srtt, est), (dev, var)):
                trace.xs.append(x)
                trace.ys.append(y)
                trace.packets.append(no)
    traces = [samples, srtt, dev]
    if stats.kernel:
        kernel = Trace(f"kernel srtt ({stats.kernel[0].source})", "step", "red")
        kvar = Trace("kernel rttvar", "step", "pink")
        for sample in stats.kernel:
            kernel.xs.append(view.x(sample.ts_ns))
            kernel.ys.append(sample.srtt_us / 1000)
            kvar.xs.append(view.x(sample.ts_ns))
            kvar.ys.append(sample.rttvar_us / 1000)
        traces += [kernel, kvar]
    summary = rtt_summary(stats.series[d])
    return Graph("rtt", "round-trip time", "time (s)", "RTT (ms)", [t for t in traces if t.xs],
                 summary.line() if summary else "no RTT samples yet")


def _window(stats: StreamStats, d: int, view: _View) -> Graph:
    series = stats.series[d]
    rwnd = Trace("receive window (advertised)", "step", "olive")
    acks = series.acks
    ts, acked, edge, no = acks.data
    for i in view.rows(acks):
        rwnd.xs.append(view.x(ts[i]))
        rwnd.ys.append(edge[i] - acked[i])
        rwnd.packets.append(no[i])
    flight = Trace("bytes in flight", "points", "blue")
    ts, amount, no = series.flight.data
    for i in view.rows(series.flight):
        flight.xs.append(view.x(ts[i]))
        flight.ys.append(amount[i])
        flight.packets.append(no[i])
    traces = [rwnd, flight]
    if any(sample.cwnd_bytes for sample in stats.kernel):
        cwnd = Trace(f"cwnd (kernel, {stats.kernel[0].source})", "step", "red")
        for sample in stats.kernel:
            cwnd.xs.append(view.x(sample.ts_ns))
            cwnd.ys.append(sample.cwnd_bytes)
        traces.append(cwnd)
    return Graph("window", "windows", "time (s)", "bytes", [t for t in traces if t.xs])


_BUILDERS = {"tsg": _tsg, "throughput": _throughput, "rtt": _rtt, "window": _window}


def build_graph(kind: str, stats: StreamStats, direction: int | None = None, origin_ns: int | None = None,
                start_ns: int | None = None, stop_ns: int | None = None) -> Graph:
    """Graph ``kind`` (one of :data:`GRAPHS`) of the data sent in ``direction`` (default: the busier one)."""
    d = stats.data_direction() if direction is None else direction
    view = _View(stats.first_ts if origin_ns is None else origin_ns, start_ns, stop_ns)
    graph = _BUILDERS[kind](stats, d, view)
    who = "client → server" if d == 0 else "server → client"
    graph.title = f"stream {stats.id}, {who}: {graph.title}"
    return graph
