"""Benchmark: the command users run, ``netlens serve --headless``, against a tutorial-style server.

Run: ``.venv/bin/python tests/benchmarks/bench_headless.py [--seconds 4] [--rounds 3] [--clients 16]``

Each server is the real command in its own process with its stdout going to a
file, exactly as a user would run it (``netlens serve --headless --mode search
> events.log``): every event line is formatted and written. The yardstick is
``plain_server.py`` (one selectors loop, ``recv(4096)``, bytes buffers, a print
per connection), run the same way. The client is this process (``LoadRunner``,
16 requests in flight), the same for every server; the servers are interleaved
round by round so drift in a shared machine hits them alike.

Prints, per mode (search, echo) and output (text, ``--json``): netlens req/s,
plain req/s and their ratio (medians over rounds), the server's CPU per request,
and the lines written per request with any "events dropped" notes, to show
the event stream stayed complete. Not a test: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from netlens.server.load import LoadRunner  # noqa: E402

_PORT_IN_TEXT = re.compile(r"listening on [^ ]*:(\d+) ")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _port_from(first_line: str) -> int | None:
    if not first_line.endswith("\n"):
        return None
    if first_line.startswith("{"):
        return int(json.loads(first_line)["address"][1])
    if first_line[:1].isdigit() and first_line.strip().isdigit():
        return int(first_line)
    match = _PORT_IN_TEXT.search(first_line)
    return int(match.group(1)) if match else None


def start(server: str, mode: str, as_json: bool, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start one server with stdout on ``log``; returns the process and its port."""
    if server == "plain":
        cmd = [sys.executable, str(HERE / "plain_server.py")] + (["--echo"] if mode == "echo" else [])
    else:
        cmd = [sys.executable, "-m", "netlens", "serve", "--headless", "--port", "0", "--mode", mode]
        cmd += ["--json"] if as_json else []
    # As a user runs them: a caller's PYTHONUNBUFFERED would make the plain server's print()
    # two write() calls a line (netlens writes its own batches either way).
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL, cwd=REPO,
                                env=env)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with log.open() as text:
            port = _port_from(text.readline())
        if port is not None:
            return proc, port
        time.sleep(0.02)
    proc.kill()
    raise SystemExit(f"{server} did not start: {log.read_text()[:300]}")


def measure(server: str, mode: str, as_json: bool, seconds: float, clients: int) -> dict[str, float]:
    """One run: req/s, server CPU per request, lines per request, 'dropped' notes."""
    with tempfile.TemporaryDirectory(prefix="nlh-bench-") as tmp:
        log = Path(tmp) / "events.log"
        proc, port = start(server, mode, as_json, log)
        try:
            time.sleep(0.2)
            cpu_before = cpu_seconds(proc.pid)
            result = LoadRunner("127.0.0.1", port, mode, clients=clients, requests=None,
                                duration=seconds, keep_latencies=False).run()
            cpu_used = cpu_seconds(proc.pid) - cpu_before
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        text = log.read_bytes()
    completed = max(1, result.completed)
    return {"rate": result.rate, "cpu_us": cpu_used / completed * 1e6, "errors": result.errors,
            "lines": text.count(b"\n") / completed, "dropped": text.count(b"events dropped")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--modes", default="search,echo")
    args = parser.parse_args()
    cases = [(mode, fmt) for mode in args.modes.split(",") for fmt in ("text", "json")]
    runs: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    print(f"{args.clients} requests in flight, {args.seconds:g} s x {args.rounds} rounds, "
          f"{os.cpu_count()} cores; stdout of every server goes to a file")
    for round_no in range(args.rounds):
        for mode, fmt in cases:
            for server in ("netlens", "plain"):
                if server == "plain" and fmt == "json":
                    continue  # the plain server has one output format: measured once per mode
                figures = measure(server, mode, fmt == "json", args.seconds, args.clients)
                runs.setdefault((mode, fmt, server), []).append(figures)
                print(f"  round {round_no + 1} {mode:<6} {fmt:<4} {server:<7} {figures['rate']:8.0f} req/s "
                      f"{figures['cpu_us']:6.1f} CPU-us/req  {figures['lines']:4.1f} lines/req  "
                      f"errors {figures['errors']:.0f}  dropped-notes {figures['dropped']:.0f}", flush=True)
                time.sleep(0.3)
    print()
    print(f"{'mode':<7}{'output':<7}{'netlens req/s':>14}{'plain req/s':>13}{'ratio':>8}"
          f"{'CPU-us/req':>12}{'plain CPU':>11}{'lines/req':>11}{'dropped':>9}")

    def med(key: tuple[str, str, str], field: str) -> float:
        return statistics.median(r[field] for r in runs[key])

    for mode, fmt in cases:
        ours, plain = (mode, fmt, "netlens"), (mode, "text", "plain")
        print(f"{mode:<7}{fmt:<7}{med(ours, 'rate'):>14.0f}{med(plain, 'rate'):>13.0f}"
              f"{med(ours, 'rate') / med(plain, 'rate'):>7.2f}x{med(ours, 'cpu_us'):>12.1f}"
              f"{med(plain, 'cpu_us'):>11.1f}{med(ours, 'lines'):>11.1f}"
              f"{sum(r['dropped'] for r in runs[ours]):>9.0f}")
    print("\ntarget: ratio >= 1.00x for every row, with no events dropped")


if __name__ == "__main__":
    main()
