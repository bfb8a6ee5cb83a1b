"""What following the kernel trace costs the consuming process: the reader in-process vs in a helper process.

Run it as root (pytest does not collect it):

    .venv/bin/python tests/benchmarks/bench_trace_process.py [--seconds 5] [--clients 2] [--rounds 2]

A flood process (not measured) churns short connections on one loopback
port: ``--clients`` threads, each connecting, sending a request, reading the
reply and closing, in a loop; every connection fires a dozen tracepoints or
more (state changes, tcp_probe, destroy). Meanwhile this process follows the
port's kernel events as the UI does, draining every 0.1 s, with

* ``TraceSession`` (the reference: reader thread, decoding and socket joins in
  this process, competing for its GIL), then
* ``TraceProcess`` (the same session in ``python -m netlens.trace.worker``;
  here only a thread receiving pickled batches), every record, and
* ``TraceProcess`` sampling as the app's feed does (``sampled``: per 0.1 s the
  newest 300 records, 8 tcp_probe per socket; the rest counted as skipped and
  never sent),

interleaved for ``--rounds`` rounds. Columns: records delivered per second,
records skipped by sampling, the records lost (``stats.lost``), CPU time of
*this* process per second of flood (user+system, all threads: the share of a
core, and so at most the share of the GIL, the app would give to tracing),
the same per thousand events traced, and the helper's own CPU (its own core
and GIL).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netlens.trace import TraceFilter, TraceSession, TraceStats
from netlens.trace.events import TraceRecord
from netlens.trace.process import TraceProcess
from netlens.trace.sample import Sampling
from netlens.ui.trace_feed import POLL_LIMIT, PROBES_PER_POLL

#: What the app's live feed asks of its helper.
UI_SAMPLING = Sampling(POLL_LIMIT, PROBES_PER_POLL, 0.1)

FLOOD = r"""
import socket, sys, threading, time
port, clients, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port)); listener.listen(512)
def serve():
    while True:
        conn, _ = listener.accept()
        conn.recv(64); conn.sendall(b"reply " * 10); conn.close()
threading.Thread(target=serve, daemon=True).start()
done = [0]
def client():
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"search morpheus"); c.recv(128); c.close(); done[0] += 1
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(done[0])
"""


class Trace(Protocol):
    """What both readers offer the benchmark."""

    def drain_records(self, limit: int | None = None) -> list[TraceRecord]: ...
    def stop(self) -> TraceStats: ...


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def helper_cpu(trace: Trace) -> float:
    """CPU seconds the helper process used so far (0 for the in-process reader)."""
    process = getattr(trace, "process", None)
    if process is None:
        return 0.0
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def follow(kind: str, seconds: float, clients: int) -> dict[str, float]:
    """One round: start the trace, flood, drain every 0.1 s as the UI does; what it cost this process."""
    port = free_port()
    trace_filter = TraceFilter.of(ports=(port,))
    prefix = f"ntpb{os.getpid()}"
    trace: Trace
    if kind == "in-process":
        trace = TraceSession(trace_filter, prefix=prefix).start()
    else:
        trace = TraceProcess(trace_filter, prefix=prefix, sampling=UI_SAMPLING if kind == "sampled" else None).start()
    try:
        flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(port), str(clients), str(seconds)],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # the flood is up
        records = 0
        cpu, helper, started = time.process_time(), helper_cpu(trace), time.monotonic()
        while flood.poll() is None:
            records += len(trace.drain_records())
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        cpu, helper = time.process_time() - cpu, helper_cpu(trace) - helper
        connections = int(flood.communicate(timeout=10)[0] or 0)
    finally:
        stats = trace.stop()
    records += len(trace.drain_records())
    skipped = getattr(trace, "skipped", 0) + getattr(trace, "probes_skipped", 0)
    return {"records/s": records / elapsed, "lost": stats.lost, "skipped/s": skipped / elapsed, "cpu": cpu / elapsed,
            "per1k": cpu / max(stats.delivered, 1) * 1000, "helper": helper / elapsed, "conn/s": connections / elapsed}


def main() -> None:
    """Interleaved rounds of both readers under the same flood; medians side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (tracefs)")
    kinds = ("in-process", "helper", "sampled")
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for round_ in range(args.rounds):
        for kind in kinds:
            runs[kind].append(follow(kind, args.seconds, args.clients))
            print(f"  round {round_ + 1}  {line(kind, runs[kind][-1])}", flush=True)
    print(f"Kernel trace of one port under a connection flood ({args.clients} clients, {args.seconds:g} s, "
          f"{args.rounds} rounds, medians); CPU of the consuming process (and of its helper):")
    for kind in kinds:
        print(f"  {line(kind, {key: statistics.median(run[key] for run in runs[kind]) for key in runs[kind][0]})}")


def line(kind: str, figures: dict[str, float]) -> str:
    """One row of figures."""
    return (f"{kind:10s} {figures['conn/s']:6,.0f} conn/s {figures['records/s']:7,.0f} records/s "
            f"(+{figures['skipped/s']:6,.0f}/s skipped) lost {figures['lost']:7,.0f}  this process "
            f"{figures['cpu'] * 100:5.1f} % of a core ({figures['per1k'] * 1000:4.1f} ms per 1k events traced)  "
            f"helper {figures['helper'] * 100:5.1f} %")

if __name__ == "__main__":
    main()
