"""Benchmark: ``netlens conns`` on 20,001 sockets, text against ``--json`` against ``ss -tanp``, side by side.

Run it directly (pytest does not collect it):

    .venv/bin/python tests/benchmarks/bench_conns.py [--pairs 10000] [--runs 3]

It opens a listener and PAIRS connected loopback pairs on one port (the
client ends in a helper process, so neither process needs more than PAIRS
open files), then runs each command as a user would, stdout to a pipe that
is read and thrown away, and prints the median wall time and the peak RSS of
the command's process. Every socket is closed (with RST, no TIME_WAIT left
behind) and the helper stopped before exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_probe import raise_fd_limit

ROOT = Path(__file__).resolve().parents[2]

# The helper: connect COUNT clients to PORT, say so, then hold them until stdin closes.
CLIENTS = """
import socket, struct, sys
count, port = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
print("ready", flush=True)
sys.stdin.read()
for sock in held:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
"""


def run_with_rusage(cmd: list[str]) -> tuple[float, float, int]:
    """Run ``cmd`` with stdout drained; return (wall seconds, its peak RSS in MB (``wait4``), bytes of output)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    size = 0
    while chunk := proc.stdout.read(1 << 16):
        size += len(chunk)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"bench_conns: {' '.join(cmd)} failed: {err.decode(errors='replace')[-500:]}")
    return wall, usage.ru_maxrss / 1024, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    raise_fd_limit(args.pairs + 256)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    helper = subprocess.Popen([sys.executable, "-c", CLIENTS, str(args.pairs), str(port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    accepted: list[socket.socket] = []
    try:
        while len(accepted) < args.pairs:
            accepted.append(listener.accept()[0])
        assert helper.stdout is not None and helper.stdout.readline().strip() == "ready"
        netlens = [sys.executable, "-m", "netlens", "conns", "--port", str(port)]
        commands = {"netlens conns --port P (text)": netlens, "netlens conns --port P --json": [*netlens, "--json"]}
        ss = shutil.which("ss")
        if ss:
            ss_filter = f"( sport = :{port} or dport = :{port} )"
            commands["ss -tanp '( sport = :P or dport = :P )'"] = [ss, "-tanp", ss_filter]
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so load from elsewhere hits every command alike
            for name, cmd in commands.items():
                results[name].append(run_with_rusage(cmd))
        print(f"{2 * args.pairs + 1} sockets on port {port}; median of {args.runs} runs, stdout to a pipe")
        print(f"{'':44}{'wall s':>9}{'peak RSS MB':>13}{'output MB':>11}")
        for name, runs in results.items():
            wall = statistics.median(r[0] for r in runs)
            rss = statistics.median(r[1] for r in runs)
            print(f"{name:<44}{wall:9.2f}{rss:13.0f}{runs[0][2] / 1e6:11.1f}")
        text, json_ = (statistics.median(r[0] for r in results[name]) for name in list(commands)[:2])
        print(f"text / --json: {text / json_:.2f}x (target: within 2x)")
    finally:
        if helper.stdin is not None:
            helper.stdin.close()
        try:
            helper.wait(timeout=30)
        except subprocess.TimeoutExpired:
            helper.terminate()
            helper.wait(timeout=10)
        linger = struct.pack("ii", 1, 0)
        for sock in accepted:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sock.close()
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
