"""Soak: the TUI under ``netlens load`` for a long time, its memory sampled every minute.

Run: ``.venv/bin/python tests/benchmarks/soak_tui.py [--minutes 30] [--clients 8] [--mode search]``

The TUI runs as a user runs it, in a tmux session (160x45, capture on), serving
a free port; ``netlens load`` floods it with the chosen number of concurrent
clients for the whole run. Every ``--every`` seconds (default 60) the TUI
process's RSS (``/proc/PID/status`` VmRSS) is sampled and printed with the
server's counters read from the screen's status line. At the end the series is
printed with its plateau: the growth over the second half of the run, which
should be near zero once every cache and ring reached its byte budget. Needs
tmux. Not a test: figures only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tmux(*args: str) -> str:
    """Run a tmux command; returns its stdout."""
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def status_line(session: str) -> str:
    """The TUI's first screen line (its status line)."""
    return tmux("capture-pane", "-p", "-t", session).splitlines()[0] if session else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between RSS samples")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--mode", choices=("search", "echo"), default="search")
    parser.add_argument("--nice", type=int, default=0,
                        help="run the TUI and the load at this niceness (a shared machine's other work suffers less)")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("soak_tui needs tmux")
    port = free_port()
    session = f"nlh-soak-{os.getpid()}"
    # The TUI is tmux's child, not ours: it gets the niceness on its command line.
    niced = ["nice", "-n", str(args.nice)] if args.nice else []
    netlens = " ".join([*niced, sys.executable, "-m", "netlens"])
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "45", "-c", str(REPO),
         f"{netlens} serve --mode {args.mode} --port {port}")
    load = None
    try:
        pid = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
        deadline = time.monotonic() + 30
        while "netlens" not in status_line(session) or "conns" not in status_line(session):
            if time.monotonic() > deadline:
                raise SystemExit("the TUI did not start: " + tmux("capture-pane", "-p", "-t", session)[:500])
            time.sleep(0.5)
        started = time.monotonic()
        end = started + args.minutes * 60
        load = subprocess.Popen([*niced, sys.executable, "-m", "netlens", "load", "--mode", args.mode,
                                 "--port", str(port), "--clients", str(args.clients), "--requests", str(10**12),
                                 "--duration", str(args.minutes * 60)],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"TUI pid {pid} on port {port}, {args.clients} {args.mode} clients, {args.minutes:g} min; "
              f"RSS every {args.every:g} s" + (f", both at nice {args.nice}" if args.nice else ""), flush=True)
        print(f"{'minute':>7} {'RSS MiB':>9}  status line", flush=True)
        samples = [(0.0, rss_mib(pid))]
        print(f"{0.0:>7.1f} {samples[0][1]:>9.1f}  {status_line(session)[:120]}", flush=True)
        while time.monotonic() < end:
            time.sleep(max(0.0, min(args.every, end - time.monotonic())))
            minute = (time.monotonic() - started) / 60
            samples.append((minute, rss_mib(pid)))
            status = re.sub(r"\s+", " ", status_line(session))
            print(f"{minute:>7.1f} {samples[-1][1]:>9.1f}  {status[:120]}", flush=True)
    finally:
        if load is not None:
            load.terminate()
            load.wait(10)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    rss = [value for _, value in samples]
    half = rss[len(rss) // 2:]
    print(f"\nRSS series (MiB): {', '.join(f'{value:.0f}' for value in rss)}")
    print(f"start {rss[0]:.0f} MiB, max {max(rss):.0f} MiB, end {rss[-1]:.0f} MiB; "
          f"growth over the second half {half[-1] - half[0]:+.1f} MiB (plateau: near 0)")


if __name__ == "__main__":
    main()
