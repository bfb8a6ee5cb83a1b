"""Benchmark: what socket-event publishing costs, and netlens against a tutorial-style server.

Run: ``python tests/benchmarks/bench_server.py [--seconds 4] [--rounds 3] [--clients 16]``

Each server runs in its own process (one core), the load in this one (the other
core), 16 requests in flight. Three servers, interleaved round by round so
drift in the machine hits all of them alike:

* netlens, event publishing on, with a subscriber draining and building every
  event at 10 Hz (what the UI does);
* netlens, event publishing off;
* a plain server written the tutorial's way (``plain_server.py``).

Prints req/s (median over rounds) and p50/p99 latency. Not a test: figures only.
The command users run (``serve --headless`` printing every event) is measured
by ``bench_headless.py``; this one isolates what publishing costs the loop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import bench_headless  # noqa: E402  (this directory: the same yardstick start-up)

from netlens.server.load import LoadRunner  # noqa: E402

# The subscriber does what the UI's event log does: every 100 ms it takes all
# new records, keeps them, and builds the events of the last screenful.
NETLENS_SERVER = r"""
import sys, threading, time
from netlens.server import Server, ServerConfig
from netlens.server.bus import materialize
publish = sys.argv[1] == "on"
server = Server(ServerConfig(mode="search", port=0, publish_events=publish)).start()
sub = server.subscribe()
kept = []
def drain():
    while True:
        time.sleep(0.1)
        records = sub.drain_records()
        kept.extend(records)
        del kept[:-200_000]
        shown = [materialize(r) for r in records[-40:]]
threading.Thread(target=drain, daemon=True).start()
print(server.address[1], flush=True)
sys.stdin.read()
"""


#: Where the plain server's per-connection lines go (removed when the benchmark ends).
_LOGS = tempfile.TemporaryDirectory(prefix="nlh-bench-")


def start(kind: str) -> tuple[subprocess.Popen[str], int]:
    """Start one server process; returns it and its port."""
    if kind == "plain":
        # It prints a line per connection: to a file, as a user would, never an unread pipe.
        log = Path(_LOGS.name) / f"plain-{time.monotonic_ns()}.log"
        proc, port = bench_headless.start("plain", "search", False, log)
        return proc, port  # type: ignore[return-value]
    cmd = [sys.executable, "-c", NETLENS_SERVER, "on" if kind == "publish on" else "off"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=HERE.parent.parent)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    kinds = ["publish on", "publish off", "plain"]
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    p50: dict[str, list[float]] = {k: [] for k in kinds}
    p99: dict[str, list[float]] = {k: [] for k in kinds}
    cpu_us: dict[str, list[float]] = {k: [] for k in kinds}
    print(f"search server, {args.clients} requests in flight, {args.seconds:g} s x {args.rounds} rounds, "
          f"{os.cpu_count()} cores")
    for round_no in range(args.rounds):
        for kind in kinds:
            proc, port = start(kind)
            try:
                time.sleep(0.2)
                cpu_before = cpu_seconds(proc.pid)
                result = LoadRunner("127.0.0.1", port, "search", clients=args.clients,
                                    requests=None, duration=args.seconds).run()
                cpu_used = cpu_seconds(proc.pid) - cpu_before
            finally:
                proc.kill()
                proc.wait()
            rates[kind].append(result.rate)
            p50[kind].append(result.percentile(50) * 1000)
            p99[kind].append(result.percentile(99) * 1000)
            cpu_us[kind].append(cpu_used / max(1, result.completed) * 1e6)
            print(f"  round {round_no + 1} {kind:<12} {result.rate:8.0f} req/s  "
                  f"{cpu_us[kind][-1]:6.1f} server CPU-us/request  errors {result.errors}")
            time.sleep(0.5)
    print()
    print(f"{'server':<14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'CPU-us/req':>12}")
    med = {k: statistics.median(v) for k, v in rates.items()}
    for kind in kinds:
        print(f"{kind:<14}{med[kind]:>10.0f}{statistics.median(p50[kind]):>10.2f}"
              f"{statistics.median(p99[kind]):>10.2f}{statistics.median(cpu_us[kind]):>12.1f}")
    cost = (med["publish off"] - med["publish on"]) / med["publish off"] * 100
    cpu = {k: statistics.median(v) for k, v in cpu_us.items()}
    cpu_cost = (cpu["publish on"] - cpu["publish off"]) / cpu["publish off"] * 100
    print(f"\npublishing costs {cost:.1f} % of throughput and {cpu_cost:.1f} % more server CPU "
          f"per request (target < 10 %)")
    print(f"netlens (publishing on) / plain tutorial-style server = "
          f"{med['publish on'] / med['plain']:.2f}x (target >= 1.00x)")


if __name__ == "__main__":
    main()
