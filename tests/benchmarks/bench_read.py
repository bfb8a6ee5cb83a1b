"""``netlens read`` against tshark on the same capture, side by side: wall time, CPU time and peak memory.

The capture is 80,000 packets of real lab traffic with loss (copies of
``tests/data/witness/lossy_server.pcap``, each copy on new client ports, so
about 1,000 TCP streams with retransmissions, duplicate ACKs and SACK). netlens
prints every packet as JSON with its full analysis; tshark prints the same
fields (number, time, addresses, ports, flags, seq/ack, window, length, stream,
analysis flags). One run each, interleaved, on the same file.

Run: ``.venv/bin/python tests/benchmarks/bench_read.py [--packets N] [--sizes N,M,...]``
(``--sizes`` adds netlens-only runs on bigger files to show its peak memory stays bounded).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
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


def measure(argv: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one run of ``argv`` with output discarded."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=80_000)
    parser.add_argument("--sizes", default="", help="extra packet counts for netlens-only memory runs")
    args = parser.parse_args()
    netlens = [sys.executable, "-m", "netlens", "read", "--json"]
    tshark = ["tshark", "-n", "-r"]
    with tempfile.TemporaryDirectory(prefix="nla-bench-") as directory:
        capture = make_capture(Path(directory) / "bench.pcap", args.packets)
        print(f"capture: {args.packets:,} packets, {capture.stat().st_size / 1e6:.1f} MB ({capture})")
        fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
        ours = measure([*netlens, str(capture)])
        theirs = measure([*tshark, str(capture), "-T", "fields", *fields])
        print(f"{'':<34}{'wall s':>8}{'cpu s':>8}{'peak MiB':>10}")
        print(f"{'netlens read --json':<34}{ours[0]:>8.2f}{ours[1]:>8.2f}{ours[2]:>10}")
        print(f"{'tshark -T fields (same fields)':<34}{theirs[0]:>8.2f}{theirs[1]:>8.2f}{theirs[2]:>10}")
        print(f"netlens / tshark: wall {ours[0] / theirs[0]:.2f}, cpu {ours[1] / theirs[1]:.2f} (goal <= 0.5)")
        for size in filter(None, args.sizes.split(",")):
            big = make_capture(Path(directory) / f"big-{size}.pcap", int(size))
            wall, cpu, peak = measure([*netlens, str(big)])
            print(f"netlens read --json, {int(size):,} packets: wall {wall:.2f} s, cpu {cpu:.2f} s, peak {peak} MiB")
            big.unlink()


if __name__ == "__main__":
    main()
