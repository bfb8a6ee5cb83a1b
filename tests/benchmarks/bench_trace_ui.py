"""What the UI's kernel-trace feed costs the UI thread per tick under a tcp_probe flood.

A 40k segments/s loopback flood gives the feed about 4,000 ``tcp_probe``
records per 0.1 s tick. The feed builds an event only for the samples its
sparklines keep (``PROBES_PER_POLL`` per socket per tick) and counts the rest;
this prints that cost side by side with building every event, the reference.
Run: ``.venv/bin/python tests/benchmarks/bench_trace_ui.py [--records N] [--sockets S] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from netlens.trace import materialize
from netlens.trace.events import Kind, TraceRecord
from netlens.ui.trace_feed import PROBES_PER_POLL, KernelTraceFeed

LOOPBACK = b"\x7f\x00\x00\x01"


class _Flood(KernelTraceFeed):
    """The feed's poll over a fixed batch of records, as LiveTraceFeed takes them from the reader."""

    def __init__(self, records: list[TraceRecord]) -> None:
        super().__init__()
        self._records = records

    def _take(self) -> list:  # type: ignore[type-arg]
        records, self._records = self._records, []
        return self.thin(records)


def probe_records(count: int, sockets: int) -> list[TraceRecord]:
    """``count`` tcp_probe records spread over ``sockets`` connections, 25 µs apart (40k/s)."""
    base = time.time_ns()
    return [(Kind.PROBE, base + i * 25_000, 0, 1 + i % sockets, None, 2, LOOPBACK, 5000, LOOPBACK,
             40000 + i % sockets, 10, 0x7FFFFFFF, 50, 65483, 65483, 100, 0, 0) for i in range(count)]


def main() -> None:
    """Interleaved rounds: the feed's thinned poll, then building and folding every event."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4000, help="records per tick (default 4000: 40k/s)")
    parser.add_argument("--sockets", type=int, default=4, help="connections they belong to (default 4)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    records = probe_records(args.records, args.sockets)
    thinned, everything = [], []
    for _ in range(args.rounds):
        feed = _Flood(list(records))
        started = time.perf_counter()
        feed.poll()
        thinned.append(time.perf_counter() - started)
        reference = KernelTraceFeed()
        started = time.perf_counter()
        reference.book.add([materialize(record) for record in records])
        everything.append(time.perf_counter() - started)
    print(f"{args.records} tcp_probe records per tick over {args.sockets} sockets, {args.rounds} rounds (median)")
    print(f"  feed.poll, {PROBES_PER_POLL} samples/socket kept: {statistics.median(thinned) * 1000:7.2f} ms")
    print(f"  reference, every event built:     {statistics.median(everything) * 1000:7.2f} ms")
    print(f"  budget: one 0.1 s tick = 100 ms; status says: {feed.status()}")


if __name__ == "__main__":
    main()
