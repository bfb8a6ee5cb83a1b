"""Benchmark: one full netlens.probe snapshot of 10,000 loopback sockets, against `ss -tanpi`.

Run it directly (pytest does not collect it):

    .venv/bin/python tests/benchmarks/bench_probe.py [--pairs 5000] [--runs 10]

It raises RLIMIT_NOFILE, opens PAIRS connected loopback pairs plus their
listener, then prints the median and minimum wall time of a snapshot with
TCP_INFO, memory, timers and process mapping, and the same for `ss -tanpi`
filtered to the same port. The target is under 150 ms for 10,000 sockets on a
2-core machine. Every socket is closed before exit.
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=10)
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
