"""Benchmark: how many kernel events the trace reader sustains under a loopback flood, and how many it loses.

Run it as root (pytest does not collect it):

    .venv/bin/python tests/benchmarks/bench_trace.py [--pps 40000] [--seconds 5] [--skip-text]

A flood process, in a network namespace of its own (so its loopback counters
are exact and nobody else's traffic mixes in), sends 64-byte segments with
TCP_NODELAY over one connection at a rate it adapts until ``lo`` carries PPS
packets a second; every segment either end receives fires ``tcp_probe``.
Meanwhile a netlens :class:`TraceSession` (binary ``trace_pipe_raw`` pages)
traces the flood's port with every event on, and the benchmark counts the
probe events delivered against the segments the two sockets received in
ESTABLISHED (``tcpi_segs_in`` minus the handshake). Then the same with a plain
text reader of ``trace_pipe`` (the alternative design, measured for comparison).
The target (issue 12): no event lost at 40,000 packets/s.

Columns: the packets ``lo`` carried per second (the flood adapts to reach
PPS but is CPU-bound on a busy machine: it prints what it reached), the probe
events the segments should have fired and those received, the events lost
(the larger of the shortfall and the reader's own loss counters), events
delivered per second, and CPU per event (netlens: the whole benchmark
process, reader thread and the draining main thread; text: the reader thread).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netlens.trace import Kind, TraceFilter, TraceSession
from netlens.trace.tracefs import TraceInstance, find_tracefs

TCP_INFO_SEGS_IN = 140  # offset of tcpi_segs_in in struct tcp_info (include/uapi/linux/tcp.h)


# -- the flood (runs inside the namespace, in its own process) -------------------------------------------------


def _lo_packets() -> int:
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            return int(counters.split()[1])  # received packets (loopback counts each packet once here)
    return 0


def _backlog_coalesced() -> int:
    """TcpExt TCPBacklogCoalesce: segments merged into the previous one while the socket was busy."""
    names, values = (line.split() for line in Path("/proc/net/netstat").read_text().splitlines()[:2])
    return int(dict(zip(names, values, strict=True)).get("TCPBacklogCoalesce", 0))


def _segs_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("=I", info, TCP_INFO_SEGS_IN)[0])


def flood(pps: int, seconds: float) -> None:
    """Print the port, wait for a line on stdin, flood for ``seconds``, print a JSON report."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server, _ = listener.accept()
    # The sink is a process of its own (no GIL shared with the sender), and reads in batches.
    sink = os.fork()
    if sink == 0:
        client.close()  # or the flood's abort at the end would not reach the socket
        listener.close()
        with contextlib.suppress(OSError):
            while server.recv(1 << 20):
                time.sleep(0.001)
        os._exit(0)
    print(listener.getsockname()[1], flush=True)
    sys.stdin.readline()
    segs_before = _segs_in(client) + _segs_in(server) - _backlog_coalesced()
    payload = b"x" * 64
    rate = pps * 0.6  # segments a second; adapted below from the packets lo really carries
    start = last_check = time.monotonic()
    packets_at_start = last_packets = _lo_packets()
    sent = 0
    while (now := time.monotonic()) - start < seconds:
        due = int((now - last_check) * rate)
        for _ in range(min(due - sent, 200)):
            client.send(payload)
            sent += 1
        if now - last_check >= 0.2:
            packets = _lo_packets()
            measured = (packets - last_packets) / (now - last_check)
            if measured > 0:
                rate = max(1000.0, min(rate * pps / measured, rate * 2))
            last_check, last_packets, sent = now, packets, 0
        else:
            time.sleep(0.0005)
    elapsed = time.monotonic() - start
    packets = _lo_packets() - packets_at_start
    time.sleep(0.3)  # the last ACKs
    # Every segment either end received while ESTABLISHED fired tcp_probe, except those merged into the
    # previous one in a busy socket's backlog (counted in segs_in, processed once).
    expected = _segs_in(client) + _segs_in(server) - _backlog_coalesced() - segs_before
    print(json.dumps({"pps": packets / elapsed, "packets": packets, "expected_probes": expected}), flush=True)
    for sock in (client, server, listener):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    os.waitpid(sink, 0)


# -- the two readers -------------------------------------------------------------------------------------------


def read_binary(port: int, go: callable, done: callable) -> dict[str, float]:  # type: ignore[valid-type]
    """netlens's reader: per-CPU trace_pipe_raw pages, decoded from the format files."""
    session = TraceSession(TraceFilter.of(ports=[port]), prefix="nlt").start()
    probes = 0
    kinds: dict[tuple[int, object], int] = {}
    cpu_before = time.process_time()
    try:
        go()
        while not done():
            session.wait(0.1)
            for r in session.drain_records():
                key = (r[0], r[-1] if r[0] == Kind.DROP else None)
                kinds[key] = kinds.get(key, 0) + 1
                probes += r[0] == Kind.PROBE
        time.sleep(0.5)
    finally:
        stats = session.stop()
    seen = ", ".join(f"{Kind(k).label}{f' {why}' if why else ''} {n}" for (k, why), n in sorted(kinds.items()))
    print(f"  (binary reader, events by kind: {seen}; {stats.filtered} filtered out in user space)")
    probes += sum(1 for r in session.drain_records() if r[0] == Kind.PROBE)
    return {"probes": probes, "events": stats.delivered, "lost": stats.lost,
            "cpu_s": time.process_time() - cpu_before}


def read_text(port: int, go: callable, done: callable) -> dict[str, float]:  # type: ignore[valid-type]
    """The alternative: one text trace_pipe, split into fields per line (kernel formats, Python parses)."""
    instance = TraceInstance(find_tracefs(), "nlt").create()
    counts = {"probes": 0, "events": 0}
    stop = threading.Event()
    cpu: list[float] = []
    try:
        instance.write("trace_clock", "tai")
        instance.write("buffer_size_kb", "8192")
        for event in ("tcp/tcp_probe", "sock/inet_sock_set_state", "tcp/tcp_retransmit_skb", "tcp/tcp_destroy_sock"):
            instance.try_filter(event, f"sport == {port} || dport == {port}")
            instance.write(f"events/{event}/enable", "1")
        pipe = os.open(instance.path / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)

        def reader() -> None:
            started = time.thread_time()
            pending = b""
            while not stop.is_set():
                try:
                    chunk = os.read(pipe, 1 << 16)
                except BlockingIOError:
                    time.sleep(0.05)
                    continue
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    head, _, rest = line.partition(b": ")
                    name, _, fields = rest.partition(b": ")
                    parsed = dict(item.split(b"=", 1) for item in fields.split() if b"=" in item)
                    counts["events"] += 1
                    counts["probes"] += name == b"tcp_probe" and b"snd_cwnd" in parsed
                    del head
            cpu.append(time.thread_time() - started)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        go()
        while not done():
            time.sleep(0.1)
        time.sleep(1.0)
        stop.set()
        thread.join(timeout=10)
        os.close(pipe)
        lost = sum(int(line.split(":")[1]) for cpu_no in instance.cpus()
                   for line in instance.read(f"per_cpu/cpu{cpu_no}/stats").splitlines()
                   if line.split(":")[0] in ("overrun", "dropped events"))
    finally:
        instance.remove()
    return {**counts, "lost": lost, "cpu_s": cpu[0] if cpu else float("nan")}


# -- the run ---------------------------------------------------------------------------------------------------


def measure(reader: callable, pps: int, seconds: float, netns: str) -> tuple[dict[str, float], dict[str, float]]:  # type: ignore[valid-type]
    """Start a flood in ``netns``, read it with ``reader``; returns (flood report, reader figures)."""
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, __file__, "--flood", str(pps),
                             "--seconds", str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        port = int(proc.stdout.readline())
        report: dict[str, float] = {}

        def go() -> None:
            proc.stdin.write("go\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

        def done() -> bool:
            if proc.poll() is None:
                return False
            report.update(json.loads(proc.stdout.read()))  # type: ignore[union-attr]
            return True

        figures = reader(port, go, done)
        return report, figures
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def main() -> None:
    """Parse options and run the flood (child mode) or the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pps", type=int, default=40_000, help="loopback packets a second (default 40000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="flood duration (default 5)")
    parser.add_argument("--skip-text", action="store_true", help="measure only netlens's binary reader")
    parser.add_argument("--flood", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood is not None:
        flood(args.flood, args.seconds)
        return
    if os.geteuid() != 0:
        sys.exit("bench_trace: needs root (tracefs and a network namespace)")
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the namespace and the instances are removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    netns = f"nlt-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        readers = [("binary trace_pipe_raw (netlens)", read_binary)]
        if not args.skip_text:
            readers.append(("text trace_pipe (for comparison)", read_text))
        print(f"{'reader':34} {'lo pkt/s':>9} {'probes expected':>16} {'received':>9} {'lost':>6} "
              f"{'events/s':>9} {'CPU µs/event':>13}")
        for name, reader in readers:
            report, figures = measure(reader, args.pps, args.seconds, netns)
            rate = figures["events"] / args.seconds
            per_event = figures["cpu_s"] / max(1, figures["events"]) * 1e6
            missing = report["expected_probes"] - figures["probes"]
            print(f"{name:34} {report['pps']:9.0f} {report['expected_probes']:16.0f} {figures['probes']:9.0f} "
                  f"{max(missing, figures['lost']):6.0f} {rate:9.0f} {per_event:13.1f}")
        print(f"{'reference (issue 12 target)':34} {args.pps:9d} {'':>16} {'':>9} {0:6d}")
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(["ip", "netns", "del", netns], check=False, timeout=10)


if __name__ == "__main__":
    main()
