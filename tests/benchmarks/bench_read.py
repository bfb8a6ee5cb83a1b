"""``netlens read`` against tshark on the same capture, side by side: wall time, CPU time and peak memory.

The capture is 80,000 packets of real lab traffic with loss (copies of
``tests/data/witness/lossy_server.pcap``, each copy on new client ports, so
about 1,000 TCP streams with retransmissions, duplicate ACKs and SACK). Like
with like: ``netlens read --fields`` and ``tshark -T fields`` print the same
fields (number, time, addresses, ports, flags, seq/ack, window, length, stream,
analysis flags, expert message), netlens with its full analysis behind them:
as it chooses by default (one worker process per idle CPU, serially on a busy
machine), serially (``--jobs 1``) and in two workers (``--jobs 2``).
``netlens read --json`` (every packet with everything netlens knows: info
column, statistics) is shown for reference. The commands run one after the
other in each round, on the same file; each figure is the median of the rounds.
Peak memory is the largest sum of the resident sizes of the command's
processes (the parallel reader's workers included), sampled every 20 ms.

Run: ``.venv/bin/python tests/benchmarks/bench_read.py [--packets N] [--rounds R] [--sizes N,M,...]``
(``--sizes`` adds ``--fields`` runs on bigger files to show that peak memory stays bounded: a file
bigger than the packet ring, 256 MiB, is read serially and the ring keeps the newest packets).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WITNESS = Path(__file__).resolve().parents[1] / "data" / "witness" / "lossy_server.pcap"
TSHARK_FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
                 "tcp.flags.str", "tcp.seq", "tcp.ack", "tcp.window_size", "tcp.len", "tcp.stream",
                 "tcp.analysis.flags", "_ws.expert.message"]


def make_capture(path: Path, packets: int) -> Path:
    """``packets`` frames of tiled real traffic at ``path``, made in a child process.

    (A child forked from a process that held the frames would count them in its peak memory.)
    """
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from support import witness_edits as e; link, records = e.read_records(Path(sys.argv[2])); "
            "e.write_pcap(Path(sys.argv[3]), link, e.tiled(records, int(sys.argv[4])))")
    subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parents[1]), str(WITNESS), str(path),
                    str(packets)], check=True)
    return path


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (0 for those gone meanwhile)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{current}/task/{current}/children") as children:
                todo.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue
    return total


def measure(argv: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of it and its children, peak RSS of its process tree in MiB), output discarded."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, max(peak[0], usage.ru_maxrss * 1024) // (1 << 20)


def _median(runs: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), max(r[2] for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=80_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each command (median reported)")
    parser.add_argument("--sizes", default="", help="extra packet counts for netlens-only memory runs")
    args = parser.parse_args()
    netlens = [sys.executable, "-m", "netlens", "read"]
    tshark = ["tshark", "-n", "-r"]
    with tempfile.TemporaryDirectory(prefix="nla-bench-") as directory:
        capture = str(make_capture(Path(directory) / "bench.pcap", args.packets))
        print(f"capture: {args.packets:,} packets, {Path(capture).stat().st_size / 1e6:.1f} MB ({capture})")
        fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
        commands = {
            "tshark -T fields (the fields)": [*tshark, capture, "-T", "fields", *fields],
            "netlens read --fields default": [*netlens, "--fields", "default", capture],
            "netlens read --fields -j 1": [*netlens, "--fields", "default", "--jobs", "1", capture],
            "netlens read --fields -j 2": [*netlens, "--fields", "default", "--jobs", "2", capture],
            "netlens read --json": [*netlens, "--json", capture],
        }
        runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                runs[name].append(measure(argv))
        results = {name: _median(found) for name, found in runs.items()}
        print(f"{'':<34}{'wall s':>8}{'cpu s':>8}{'peak MiB':>10}{'/ tshark wall':>15}")
        theirs = results["tshark -T fields (the fields)"]
        for name, (wall, cpu, peak) in results.items():
            print(f"{name:<34}{wall:>8.2f}{cpu:>8.2f}{peak:>10}{wall / theirs[0]:>15.2f}")
        ours = results["netlens read --fields default"]
        print(f"netlens --fields / tshark: wall {ours[0] / theirs[0]:.2f}, cpu {ours[1] / theirs[1]:.2f} "
              f"(goal: wall <= 0.5)")
        for size in filter(None, args.sizes.split(",")):
            big = make_capture(Path(directory) / f"big-{size}.pcap", int(size))
            wall, cpu, peak = measure([*netlens, "--fields", "default", str(big)])
            print(f"netlens read --fields default, {int(size):,} packets ({big.stat().st_size / 1e6:.0f} MB): "
                  f"wall {wall:.2f} s, cpu {cpu:.2f} s, peak {peak} MiB")
            big.unlink()


if __name__ == "__main__":
    main()
