"""A bulk transfer over 25 ms each way and 20 Mbit/s shows slow start in the ``tsg`` and ``window`` graphs.

Slow start doubles what is sent per round trip; once the link is full it
stops doing so. The test reads that off the graphs' own data series: bytes
sent per RTT (``tsg`` segments), the largest bytes in flight per RTT
(``window``), and the sender kernel's cwnd from TCP_INFO (``window``'s cwnd
trace, fed from the sender's own samples as the TUI feeds the probe's).
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from support.bulk import PORT, bulk_transfer, lab
from support.wireshark import load

from netlens.capture.stats import KernelSample
from netlens.capture.stats.series import Graph, Trace, build_graph, rtt_summary
from netlens.trace import Kind, Probe, TraceFilter, TraceSession


def _trace(graph: Graph, name: str) -> Trace:
    return next(trace for trace in graph.traces if trace.name == name)


def _per_round(trace: Trace, start: float, rtt: float, rounds: int, values: list[float]) -> list[float]:
    """Sum (or max, for levels) of ``values`` within each RTT-long round from ``start``."""
    out = []
    for k in range(rounds):
        lo = bisect_right(trace.xs, start + k * rtt - 1e-9)
        hi = bisect_right(trace.xs, start + (k + 1) * rtt - 1e-9)
        out.append(values[lo:hi])
    return [sum(chunk) if trace.kind == "bars" else max(chunk, default=0.0) for chunk in out]


def _level_at(trace: Trace, x: float) -> float:
    return trace.ys[max(0, bisect_right(trace.xs, x) - 1)]


def test_slow_start_then_steady(tmp_path: Path) -> None:
    pcap = tmp_path / "bulk.pcap"
    with lab(25.0, 20_000) as net:
        # The kernel's tcp_probe tracepoint as a second witness of cwnd (a tracefs instance named nlg-PID).
        session = TraceSession(TraceFilter.of(ports=(PORT,)), kinds=(Kind.PROBE,), prefix="nlg").start()
        try:
            samples = bulk_transfer(net, pcap, 2_500_000)
        finally:
            session.stop()
        sender = net.client.address
    probes = [e for e in session.drain() if isinstance(e, Probe) and e.src == sender and e.dport == PORT]
    tracker = load(pcap)
    stats = tracker.stream(1)
    stats.kernel.extend(KernelSample(ts, srtt, rttvar, cwnd * mss) for ts, srtt, rttvar, cwnd, mss in samples)
    summary = rtt_summary(stats.series[0])
    assert summary is not None and 49 < summary.min_ms < 60
    rtt = summary.min_ms / 1000

    tsg = build_graph("tsg", stats, 0)
    segments = _trace(tsg, "segment")
    start = next(x for x, y in zip(segments.xs, segments.ys, strict=True) if y >= 1)  # the first data, not the SYN
    sent = _per_round(segments, start, rtt, 12, [top - y for y, top in zip(segments.ys, segments.tops, strict=True)])
    # Early rounds double (ideally 8× in three rounds; rounds cut by time are not exact), ...
    assert sent[3] >= 4 * sent[0], sent
    # ... then the 20 Mbit/s link caps them (a round carries at most about rate × RTT): no more doubling.
    per_round = 20e6 / 8 * rtt
    assert max(sent[7:12]) <= 1.25 * per_round, (sent, per_round)
    assert sent[3] < per_round < 8 * sent[3], (sent, per_round)  # the doubling had to stop there

    window = build_graph("window", stats, 0)
    flight = _trace(window, "bytes in flight")
    in_flight = _per_round(flight, start, rtt, 12, flight.ys)
    assert in_flight[3] >= 4 * in_flight[0], in_flight
    cwnd = _trace(window, "cwnd (kernel, TCP_INFO)")
    assert _level_at(cwnd, start) <= 10 * 1448 * 1.1  # initial window: 10 segments
    # Read mid-round: each round's ACKs (and so cwnd's growth) arrive just after a whole RTT.
    early = [_level_at(cwnd, start + (k + 0.5) * rtt) for k in range(6)]
    assert early[5] >= 6 * early[0], early  # ideally 32×; the first round's ACKs may land late
    # Late in the transfer, cwnd over any two round trips grows little or shrinks.
    end = cwnd.xs[-1]
    late = [_level_at(cwnd, x / 100) for x in range(int((start + end) / 2 * 100), int(end * 100))]
    assert all(b <= 1.5 * a for a, b in zip(late, late[int(2 * rtt * 100):], strict=False)), late

    # tcp_probe (one reading per ACK the sender got) tells the same story.
    assert len(probes) > 100
    stats.kernel[:] = [KernelSample(p.ts_ns, p.srtt_us, 0, p.cwnd * 1448, "tcp_probe") for p in probes]
    probed = _trace(build_graph("window", stats, 0), "cwnd (kernel, tcp_probe)")
    early = [_level_at(probed, start + (k + 0.5) * rtt) for k in range(6)]
    assert early[5] >= 6 * early[0], early
