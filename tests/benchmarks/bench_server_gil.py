"""Benchmark: the server loop sharing its GIL with busy threads, socket calls releasing vs keeping the GIL.

Run: ``python tests/benchmarks/bench_server_gil.py [--seconds 4] [--rounds 3] [--busy 2] [--mode search]``

Inside the TUI the server thread shares one GIL with the UI, capture and probe
threads. Python's socket calls release the GIL around each system call, and
getting it back may take up to the switch interval while another thread runs.
``ServerConfig.hold_gil`` makes the loop's non-blocking calls through libc
without releasing it (:mod:`netlens.server.heldcalls`).

Each server process runs the loop, a subscriber that drains and builds events
every 100 ms (what the UI does), and ``--busy`` threads that each do ~1 ms of
Python work then sleep ~1 ms (roughly the TUI's other threads), at the TUI's
switch interval (0.5 ms). The load (``--clients`` requests in flight) runs in
this process. The two layers are interleaved round by round. Prints req/s,
p50/p99 latency and the busy threads' work done per second (what holding the
GIL longer costs them). Not a test: figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from netlens.server.load import LoadRunner  # noqa: E402

SERVER = r"""
import sys, threading, time
from netlens.server import Server, ServerConfig
from netlens.server.bus import materialize
hold, mode, busy = sys.argv[1] == "held", sys.argv[2], int(sys.argv[3])
sys.setswitchinterval(0.0005)
server = Server(ServerConfig(mode=mode, port=0, hold_gil=hold)).start()
sub = server.subscribe()
work = [0] * busy
def drain():
    kept = []
    while True:
        time.sleep(0.1)
        records = sub.drain_records()
        kept.extend(records)
        del kept[:-200_000]
        shown = [materialize(r) for r in records[-40:]]
def spin(index):
    while True:
        end = time.perf_counter() + 0.001
        while time.perf_counter() < end:
            work[index] += 1
        time.sleep(0.001)
threading.Thread(target=drain, daemon=True).start()
for index in range(busy):
    threading.Thread(target=spin, args=(index,), daemon=True).start()
print(server.address[1], flush=True)
for line in sys.stdin:
    print(sum(work), flush=True)
"""


def run_one(layer: str, mode: str, busy: int, seconds: float, clients: int) -> dict[str, float]:
    """One server process under load: req/s, latency percentiles (ms), busy work per second."""
    cmd = [sys.executable, "-c", SERVER, layer, mode, str(busy)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=HERE.parent.parent)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        port = int(proc.stdout.readline())
        time.sleep(0.2)
        proc.stdin.write("\n")
        proc.stdin.flush()
        work_before = int(proc.stdout.readline())
        started = time.monotonic()
        result = LoadRunner("127.0.0.1", port, mode, clients=clients, requests=None, duration=seconds).run()
        proc.stdin.write("\n")
        proc.stdin.flush()
        work_rate = (int(proc.stdout.readline()) - work_before) / (time.monotonic() - started)
    finally:
        proc.kill()
        proc.wait()
    return {"rate": result.rate, "p50": result.percentile(50) * 1000, "p99": result.percentile(99) * 1000,
            "work": work_rate, "errors": result.errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--mode", choices=("search", "echo"), default="search")
    args = parser.parse_args()
    layers = ("released", "held")
    runs: dict[str, list[dict[str, float]]] = {layer: [] for layer in layers}
    print(f"{args.mode} server + {args.busy} busy threads + a 10 Hz subscriber in one process, "
          f"{args.clients} requests in flight, {args.seconds:g} s x {args.rounds} rounds, {os.cpu_count()} cores")
    for round_no in range(args.rounds):
        for layer in layers:
            figures = run_one(layer, args.mode, args.busy, args.seconds, args.clients)
            runs[layer].append(figures)
            print(f"  round {round_no + 1} GIL {layer:<9} {figures['rate']:8.0f} req/s  p50 {figures['p50']:6.2f} ms  "
                  f"p99 {figures['p99']:6.2f} ms  busy work {figures['work'] / 1e6:6.2f} M/s  "
                  f"errors {figures['errors']:.0f}", flush=True)
            time.sleep(0.3)
    print()
    print(f"{'socket calls':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'busy M/s':>10}")

    def med(layer: str, field: str) -> float:
        return statistics.median(run[field] for run in runs[layer])

    for layer in layers:
        print(f"{'GIL ' + layer:<22}{med(layer, 'rate'):>10.0f}{med(layer, 'p50'):>10.2f}{med(layer, 'p99'):>10.2f}"
              f"{med(layer, 'work') / 1e6:>10.2f}")
    print(f"\nheld / released: {med('held', 'rate') / med('released', 'rate'):.2f}x req/s, "
          f"{med('held', 'work') / med('released', 'work'):.2f}x busy threads' work")


if __name__ == "__main__":
    main()
