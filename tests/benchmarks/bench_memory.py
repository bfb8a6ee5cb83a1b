"""Benchmark: memory the server holds for hostile volumes, headless and in the TUI.

Run: ``.venv/bin/python tests/benchmarks/bench_memory.py [--gib 1] [--searches 400] [--no-capture]``

Four runs, each the command a user runs, with an independent client in this process:

* ``serve --headless --mode echo`` (stdout to a file): one client streams 1 GiB through it;
* ``serve --headless --mode search``: 400 searches with unique 1 MB values;
* the same two through the TUI (``netlens serve`` in tmux, 160x45, capture on
  unless ``--no-capture``), driven from outside as a user's clients would.

For each: RSS once the server is up, the peak (VmHWM) and RSS after the client
left (3 s later, and again 15 s later, once the app's idle housekeeping, a full
collection and a ``malloc_trim``, has had its turn), with the difference. The
target is "after" (3 s) within 100 MB of "start". Not a test: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETTLE = 3.0
#: A second look this long after the first (the TUI collects and trims at most every 10 s at idle).
LATE = 12.0


def memory(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Until something accepts on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


def stream_echo(port: int, total: int, chunk: int = 1 << 16) -> float:
    """Send ``total`` bytes on one connection and read the echo back; returns seconds taken."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    block = os.urandom(chunk)
    sent = received = 0
    started = time.monotonic()
    while received < total:
        for _, events in sel.select(1.0):
            if events & selectors.EVENT_WRITE and sent < total:
                try:
                    sent += sock.send(block[: min(chunk, total - sent)])
                except BlockingIOError:
                    pass
                if sent >= total:
                    sel.modify(sock, selectors.EVENT_READ)
            if events & selectors.EVENT_READ:
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise SystemExit("the echo server closed early")
                received += len(data)
    sock.close()
    return time.monotonic() - started


def unique_searches(port: int, count: int, size: int = 1_000_000) -> float:
    """``count`` searches, each with a unique ``size``-character value; returns seconds taken."""
    started = time.monotonic()
    for i in range(count):
        content = json.dumps({"action": "search", "value": f"{i:08d}" + "v" * (size - 8)}).encode()
        header = json.dumps({"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8",
                             "content-length": len(content)}).encode()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(struct.pack(">H", len(header)) + header + content)
            while sock.recv(1 << 20):
                pass
    return time.monotonic() - started


Figures = tuple[float, float, float, float, float]


def run_headless(mode: str, work: str, args: argparse.Namespace) -> Figures:
    """One headless run: (start RSS, peak, after, later, seconds)."""
    with tempfile.TemporaryDirectory(prefix="nlh-mem-") as tmp:
        port = free_port()
        with open(Path(tmp) / "events.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "netlens", "serve", "--headless", "--mode", mode,
                                     "--port", str(port)], stdout=out, stderr=subprocess.DEVNULL, cwd=REPO)
        try:
            wait_listening(port)
            time.sleep(1.0)
            start, _ = memory(proc.pid)
            seconds = drive(work, port, args)
            time.sleep(SETTLE)
            after, _ = memory(proc.pid)
            time.sleep(LATE)
            later, peak = memory(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    return start, peak, after, later, seconds


def run_tui(mode: str, work: str, args: argparse.Namespace) -> Figures:
    """One TUI run in tmux: (start RSS, peak, after, later, seconds)."""
    port = free_port()
    session = f"nlh-mem-{os.getpid()}"
    command = f"{sys.executable} -m netlens serve --mode {mode} --port {port}"
    command += " --no-capture" if args.no_capture else ""
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "45", "-c", str(REPO), command],
                   check=True)
    try:
        pid = int(subprocess.run(["tmux", "display-message", "-p", "-t", session, "#{pane_pid}"],
                                 capture_output=True, text=True, check=True).stdout)
        wait_listening(port)
        time.sleep(3.0)  # the first frames, the probe and the capture are up
        start, _ = memory(pid)
        seconds = drive(work, port, args)
        time.sleep(SETTLE)
        after, _ = memory(pid)
        time.sleep(LATE)
        later, peak = memory(pid)
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                text=True).stdout
        print("    status: " + re.sub(r"\s+", " ", screen.splitlines()[0])[:150])
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    return start, peak, after, later, seconds


def drive(work: str, port: int, args: argparse.Namespace) -> float:
    """Run the client side of one scenario."""
    if work == "echo":
        return stream_echo(port, int(args.gib * (1 << 30)))
    return unique_searches(port, args.searches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="GiB to echo (default 1)")
    parser.add_argument("--searches", type=int, default=400, help="unique 1 MB searches (default 400)")
    parser.add_argument("--no-capture", action="store_true", help="run the TUI without packet capture")
    parser.add_argument("--skip-tui", action="store_true")
    parser.add_argument("--skip-headless", action="store_true")
    args = parser.parse_args()
    runs = [] if args.skip_headless else [("headless", "echo", "echo"), ("headless", "search", "search")]
    if not args.skip_tui and shutil.which("tmux"):
        runs += [("TUI", "echo", "echo"), ("TUI", "search", "search")]
    print(f"{args.gib:g} GiB echoed on one connection; {args.searches} unique 1 MB searches; "
          f"RSS in MiB ({'no capture' if args.no_capture else 'TUI capture on'})")
    rows = []
    for where, mode, work in runs:
        print(f"  {where} {mode} ...", flush=True)
        run = run_headless if where == "headless" else run_tui
        start, peak, after, later, seconds = run(mode, work, args)
        rows.append((where, work, start, peak, after, later, seconds))
    print(f"\n{'server':<10}{'load':<8}{'start':>8}{'peak':>8}{'after':>8}{'after-start':>13}"
          f"{'15 s later':>12}{'seconds':>9}")
    for where, work, start, peak, after, later, seconds in rows:
        verdict = "ok" if after - start <= 100 else "OVER 100 MB"
        print(f"{where:<10}{work:<8}{start:>8.0f}{peak:>8.0f}{after:>8.0f}{after - start:>+13.0f}"
              f"{later - start:>+12.0f}{seconds:>9.1f}  {verdict}")
    print("\ntarget: after - start within 100 MB "
          "(after: 3 s after the client left; 15 s later: after the idle collection and trim)")


if __name__ == "__main__":
    main()
