"""Benchmark: one full netlens.probe snapshot of 10,000 loopback sockets, against `ss -tanpi`.

Run it directly (pytest does not collect it):

    .venv/bin/python tests/benchmarks/bench_probe.py [--pairs 5000] [--runs 10] [--gc-cycles 30]

It raises RLIMIT_NOFILE, opens PAIRS connected loopback pairs plus their
listener, then prints the median and minimum wall time of a snapshot with
TCP_INFO, memory, timers and process mapping, and the same for `ss -tanpi`
filtered to the same port. The target is under 150 ms for 10,000 sockets on a
2-core machine. A last table shows what the garbage collector costs the UI
worker's job (snapshot + tracker) under default thresholds and under the TUI's
policy, with the collector paused around each snapshot (as the probe used to)
and not. Every socket is closed before exit.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netlens.probe import ConnectionTracker, Prober
from netlens.probe.processes import scan_owners


def raise_fd_limit(needed: int) -> None:
    """Raise the soft (and, as root, the hard) open-file limit to at least ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError):
            sys.exit(f"bench_probe: need {needed} open files, the hard limit is {hard}; run as root or lower --pairs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def open_pairs(pairs: int) -> tuple[socket.socket, list[socket.socket]]:
    """Open a listener on 127.0.0.1 and ``pairs`` connected client/server socket pairs."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    addr = listener.getsockname()
    opened: list[socket.socket] = []
    for _ in range(pairs):
        client = socket.create_connection(addr)
        server, _ = listener.accept()
        opened += (client, server)
    return listener, opened


def time_runs(func, runs: int) -> list[float]:
    """Call ``func`` ``runs`` times; return the wall times in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(label: str, times: list[float], note: str = "") -> None:
    print(f"{label:<44} median {statistics.median(times):7.1f} ms   min {min(times):7.1f} ms  {note}".rstrip())


class GcClock:
    """Adds up the CPU time the cyclic garbage collector takes in this thread, and how often, while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._start
            self.collections += 1


def gc_cycles(port: int, tui_policy: bool, pause: bool, cycles: int) -> tuple[float, float, int]:
    """(median CPU ms per cycle, GC ms per cycle, collections) of the UI worker's job on ``port``.

    A cycle is ``snapshot(port)`` then ``ConnectionTracker.update``, with the
    previous snapshot alive. ``tui_policy`` applies the TUI's collector
    settings (everything so far frozen, young threshold 5,000, no automatic
    full collection); ``pause`` disables the collector around each snapshot,
    as the probe itself did before its policy moved to the app.
    """
    gc.collect()
    saved = gc.get_threshold()
    if tui_policy:
        gc.freeze()
        gc.set_threshold(5000, 10, 1 << 30)
    prober, tracker, clock = Prober(), ConnectionTracker(), GcClock()
    previous = prober.snapshot(port)
    tracker.update(previous)
    cpu = []
    gc.callbacks.append(clock)
    try:
        for _ in range(cycles):
            start = time.thread_time()
            if pause:
                gc.disable()
            try:
                snap = prober.snapshot(port)
            finally:
                gc.enable()
            tracker.update(snap)
            previous = snap
            cpu.append((time.thread_time() - start) * 1000)
    finally:
        gc.callbacks.remove(clock)
        gc.set_threshold(*saved)
        gc.unfreeze()
    del previous
    return statistics.median(cpu), clock.seconds * 1000 / cycles, clock.collections


def report_gc(port: int, cycles: int) -> None:
    """The collector's share of the UI worker's job, paused around snapshots or not, under both policies."""
    heap = [{"n": n, "refs": [n]} for n in range(75_000)]  # 150,000 objects besides, as Textual's
    print(f"\nGC: {cycles} cycles of snapshot(port) + tracker update; CPU ms per cycle (median), GC ms per cycle "
          "(collections in all)")  # fmt: skip
    print(f"{'':44}{'collector paused around snapshot':>36}{'not paused':>24}")
    for name, tui in (("default thresholds (conns --watch)", False), ("the TUI's policy (freeze, 5000/10/off)", True)):
        cells = [gc_cycles(port, tui, pause, cycles) for pause in (True, False)]
        row = [f"{cpu:6.1f} cpu {spent:6.1f} gc ({count:4d})" for cpu, spent, count in cells]
        print(f"{name:<44}{row[0]:>36}{row[1]:>24}")
    del heap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--gc-cycles", type=int, default=30, help="cycles per line of the GC table (0: skip it)")
    args = parser.parse_args()

    raise_fd_limit(2 * args.pairs + 256)
    listener, opened = open_pairs(args.pairs)
    port = listener.getsockname()[1]
    try:
        prober = Prober()
        snap = prober.snapshot(port=port)
        owned = sum(1 for s in snap.sockets if s.pid == os.getpid())
        with_info = sum(1 for s in snap.sockets if s.tcp_info is not None and s.memory is not None)
        print(
            f"sockets on port {port}: {len(snap.sockets)} (source {snap.source}), owned by this process: {owned}, "
            f"with TCP_INFO+memory: {with_info}"
        )
        scans = prober.scanner.full_scans
        times = time_runs(lambda: prober.snapshot(port=port), args.runs)
        report("netlens snapshot(port), warm owner cache", times,
               f"({prober.scanner.full_scans - scans} full /proc scans)")
        report("netlens snapshot(port), cold (new Prober)", time_runs(lambda: Prober().snapshot(port=port), args.runs))
        scans = prober.scanner.full_scans
        times = time_runs(lambda: prober.snapshot(), args.runs)
        report("netlens snapshot(), all sockets, warm", times,
               f"({prober.scanner.full_scans - scans} full /proc scans)")
        report(
            "  sock_diag only (processes=False)",
            time_runs(lambda: prober.snapshot(port=port, processes=False), args.runs),
        )
        report("  /proc owner scan alone, no cache", time_runs(scan_owners, args.runs))
        fresh = [prober.snapshot(port=port, processes=False) for _ in range(3)]
        report(
            "  later: decode TCP_INFO of every socket",
            time_runs(lambda: [sock.tcp_info for sock in fresh.pop().sockets], 3),
        )
        tracker = ConnectionTracker()
        tracker.update(snap)
        later = [prober.snapshot(port=port) for _ in range(3)]
        report("  later: ConnectionTracker.update", time_runs(lambda: tracker.update(later.pop()), 3))
        ss = shutil.which("ss")
        if ss:
            cmd = [ss, "-tanpi", f"( sport = :{port} or dport = :{port} )"]
            report(
                "ss -tanpi '( sport = :P or dport = :P )'",
                time_runs(lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True), args.runs),
            )
            cmd_all = [ss, "-tanpimo", f"( sport = :{port} or dport = :{port} )"]
            report(
                "ss -tanpimo (same filter)",
                time_runs(lambda: subprocess.run(cmd_all, stdout=subprocess.DEVNULL, check=True), args.runs),
            )
        else:
            print("ss not found (Debian package iproute2): no comparison")
        if args.gc_cycles:
            report_gc(port, args.gc_cycles)
    finally:
        # RST instead of FIN: 5,000 TIME_WAIT entries would outlive the run.
        linger = struct.pack("ii", 1, 0)
        for sock in opened:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sock.close()
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
