"""Capture benchmark: does netlens keep every packet of a fast loopback exchange? And how compact is the ring?

Run as root: ``python tests/benchmarks/bench_capture.py [--round-trips 20000] [--ring 1000000]``

1. An echo server (netlens.server in echo mode) and a client run in two other
   processes; the client makes N round trips of 32 bytes with TCP_NODELAY
   (about 2N packets in roughly a second) while this process captures on lo.
   "Expected" is what the client's kernel counted (TCP_INFO segs_out +
   segs_in, read after the last echo and before closing); "captured" is the
   packets netlens stored before the first FIN. tcpdump and scapy's
   ``AsyncSniffer(prn=...)`` run the same exchange for comparison when
   available (``--compare``).
2. The ring is filled with 1,000,000 realistic 98-byte frames (a 32-byte echo
   segment) and its memory is measured with tracemalloc: bytes per stored
   packet, and the overhead beyond the frame itself.

Not a pytest test (no ``test_`` prefix): it prints figures.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Runnable from a fresh clone with the README's venv: netlens and the tests' frame builders.
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PAYLOAD = b"0123456789abcdef0123456789abcdef"  # 32 bytes
TCP_INFO_SEGS = struct.Struct("II")  # tcpi_segs_out, tcpi_segs_in at offset 136 of struct tcp_info
SEGS_OFFSET = 136


def echo_server(ready: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    """Child process: netlens's echo server on a free port, without event publishing."""
    from netlens.server import Server, ServerConfig

    with Server(ServerConfig(mode="echo", port=0, publish_events=False, idle_timeout=0)) as server:
        ready.put(server.address[1])
        stop.wait(120)


def echo_client(port: int, round_trips: int, result: mp.Queue) -> None:  # type: ignore[type-arg]
    """Child process: N request/echo round trips, then report the kernel's segment counts."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    size = len(PAYLOAD)
    for _ in range(round_trips):
        sock.sendall(PAYLOAD)
        got = 0
        while got < size:
            chunk = sock.recv(size - got)
            if not chunk:
                raise SystemExit("server closed early")
            got += len(chunk)
    elapsed = time.perf_counter() - started
    time.sleep(0.3)  # let delayed ACKs go out so the counts are final
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    segs_out, segs_in = TCP_INFO_SEGS.unpack_from(info, SEGS_OFFSET)
    result.put((segs_out + segs_in, elapsed))
    sock.close()


def run_exchange(round_trips: int, during: Callable[[int], Callable[[], dict[str, float]]]) -> dict[str, float]:
    """Start server and client processes; ``during(port)`` starts a capturer and returns its stop function."""
    ctx = mp.get_context("spawn")
    ready: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    result: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    stop = ctx.Event()
    server = ctx.Process(target=echo_server, args=(ready, stop), daemon=True)
    server.start()
    port = ready.get(timeout=30)
    finish = during(port)
    time.sleep(0.3)
    client = ctx.Process(target=echo_client, args=(port, round_trips, result), daemon=True)
    client.start()
    expected, elapsed = result.get(timeout=120)
    client.join(10)
    time.sleep(0.3)
    figures = finish()
    stop.set()
    server.join(5)
    figures.update(expected=expected, elapsed=elapsed)
    return figures


def netlens_capturer(port: int, method: str = "mmap") -> Callable[[], dict[str, float]]:
    """Capture with netlens; count the stored packets before the first FIN."""
    from netlens.capture import Capture, PacketRing
    from netlens.capture.frames import FIN, Tcp, decode

    ring = PacketRing()
    capture = Capture(iface="lo", port=port, ring=ring, method=method).start()
    print(f"  netlens filter: {capture.filter_note}")

    def finish() -> dict[str, float]:
        stats = capture.stop()
        before_fin = 0
        for _no, _ts, frame in ring:
            tcp = decode(frame, ring.linktype)
            if isinstance(tcp, Tcp):
                if tcp.flags & FIN:
                    break
                before_fin += 1
        return {"captured": before_fin, "stored": stats.stored, "kernel_drops": stats.kernel_drops,
                "buffer": stats.rcvbuf, "cpu": stats.cpu}
    return finish


def no_capturer(port: int) -> Callable[[], dict[str, float]]:
    """No capture at all: how fast the exchange runs undisturbed."""
    return lambda: {"captured": float("nan"), "kernel_drops": float("nan")}


def tcpdump_capturer(port: int) -> Callable[[], dict[str, float]]:
    """Capture with tcpdump -w; count packets before the first FIN with netlens's reader."""
    path = tempfile.mktemp(suffix=".pcap")
    proc = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-w", path, f"tcp port {port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)

    def finish() -> dict[str, float]:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        from netlens.capture import read_pcap
        from netlens.capture.frames import FIN, Tcp, decode

        ring = read_pcap(path).ring
        os.unlink(path)
        before_fin = 0
        for _no, _ts, frame in ring:
            tcp = decode(frame, ring.linktype)
            if isinstance(tcp, Tcp):
                if tcp.flags & FIN:
                    break
                before_fin += 1
        drops = 0
        for line in err.decode(errors="replace").splitlines():
            if "dropped by kernel" in line:
                drops = int(line.split()[0])
        return {"captured": before_fin, "kernel_drops": drops}
    return finish


def asyncsniffer_capturer(port: int) -> Callable[[], dict[str, float]]:
    """scapy's naive AsyncSniffer(prn=...): one scapy packet object per frame."""
    from scapy.layers.inet import TCP
    from scapy.sendrecv import AsyncSniffer

    from netlens.capture import libpcap_available

    seen = {"before_fin": 0, "fin": False}

    def count(pkt: object) -> None:
        if TCP in pkt and port in (pkt[TCP].sport, pkt[TCP].dport):  # type: ignore[operator,index]
            if pkt[TCP].flags & 0x01:  # type: ignore[index]
                seen["fin"] = True
            elif not seen["fin"]:
                seen["before_fin"] += 1

    sniffer = AsyncSniffer(iface="lo", prn=count, store=False,
                           filter=f"tcp port {port}" if libpcap_available() else None)
    sniffer.start()
    time.sleep(1.0)

    def finish() -> dict[str, float]:
        sniffer.stop()
        return {"captured": seen["before_fin"], "kernel_drops": float("nan")}
    return finish


def report(name: str, figures: dict[str, float]) -> None:
    expected, captured = figures["expected"], figures["captured"]
    rate = expected / figures["elapsed"] if figures["elapsed"] else 0
    if captured != captured:  # NaN: the baseline captures nothing
        print(f"  {name:<17} expected {int(expected):>6}  {'':>25}  "
              f"[{rate:,.0f} packets/s, exchange took {figures['elapsed']:.2f} s]")
        return
    cpu = (f"  capture thread CPU {figures['cpu']:.2f} s = {figures['cpu'] / max(1, captured) * 1e6:.1f} µs/packet"
           if "cpu" in figures else "")
    print(f"  {name:<17} expected {int(expected):>6}  captured {int(captured):>6}  "
          f"({100 * captured / expected:5.1f} %)  kernel drops {figures['kernel_drops']}  "
          f"[{rate:,.0f} packets/s, exchange took {figures['elapsed']:.2f} s]{cpu}")


def measure_ring(count: int) -> None:
    """Fill a ring with ``count`` 98-byte loopback echo frames; memory (tracemalloc) and speeds."""
    from netlens.capture import PacketRing, PacketStore

    frame = _echo_frame()
    ring = PacketRing(max_packets=count, max_bytes=max(256 << 20, count * len(frame) * 2))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    ts = time.time_ns()
    append = ring.append
    for i in range(count):
        append(ts + i * 1000, frame)
    total = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_packet = total / count
    print(f"  {count:,} frames of {len(frame)} bytes: {total / 2**20:,.1f} MiB traced "
          f"= {per_packet:.1f} bytes per stored packet, {per_packet - len(frame):.1f} bytes beyond the frame")

    timing = PacketRing()
    started = time.perf_counter()
    for i in range(200_000):
        timing.append(ts + i, frame)
    print(f"  ring.append: {(time.perf_counter() - started) / 200_000 * 1e6:.2f} µs/packet")
    started = time.perf_counter()
    step = max(1, count // 100_000)
    reads = range(1, count + 1, step)
    for no in reads:
        ring.frame(no)
    print(f"  ring.frame(no): {(time.perf_counter() - started) / len(reads) * 1e6:.2f} µs")
    store = PacketStore(ring)
    started, cpu_started = time.perf_counter(), time.process_time()
    store.update(limit=None)
    analysed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    # CPU time is the figure to compare (the machine may be shared; wall time counts the waits too).
    print(f"  analysis (update): {cpu / count * 1e6:.2f} µs/packet CPU, {analysed / count * 1e6:.2f} µs wall "
          f"({count / analysed:,.0f} packets/s); per workload and against another tree: bench_analysis.py")
    picks = range(1, count, max(1, count // 20_000))
    started = time.perf_counter()
    for no in picks:
        store.summary(no)
    print(f"  summary(no) of any packet: {(time.perf_counter() - started) / len(picks) * 1e6:.2f} µs")
    started = time.perf_counter()
    for first in range(1, 1001 * 50, 1000):
        store.summaries(first, first + 49)
    print(f"  one screen of 50 rows: {(time.perf_counter() - started) / 50 * 1e3:.2f} ms")


def _echo_frame() -> bytes:
    """A realistic loopback frame: Ethernet (zero MACs) + IPv4 + TCP with timestamps + 32 bytes."""
    from support.synth import tcp_frame, tcp_options

    return tcp_frame(sport=54321, dport=65432, seq=1000, ack=2000, flags="PA", window=512,
                     options=tcp_options(timestamp=(123456, 654321)), payload=PAYLOAD)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=20_000)
    parser.add_argument("--ring", type=int, default=1_000_000)
    parser.add_argument("--compare", action="store_true", help="also run tcpdump and AsyncSniffer if available")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: packet capture needs CAP_NET_RAW", file=sys.stderr)
        return 2
    print(f"Capture of {args.round_trips:,} echo round trips (32 bytes, TCP_NODELAY) on lo:")
    report("none (baseline)", run_exchange(args.round_trips, no_capturer))
    report("netlens mmap", run_exchange(args.round_trips, netlens_capturer))
    report("netlens recvmsg", run_exchange(args.round_trips, lambda port: netlens_capturer(port, "recvmsg")))
    if args.compare:
        if shutil.which("tcpdump"):
            report("tcpdump", run_exchange(args.round_trips, tcpdump_capturer))
        else:
            print("  tcpdump       not installed (apt-get install tcpdump)")
        report("AsyncSniffer", run_exchange(args.round_trips, asyncsniffer_capturer))
    print(f"Ring memory with {args.ring:,} packets:")
    measure_ring(args.ring)
    return 0


if __name__ == "__main__":
    sys.exit(main())
