"""Capture benchmark: does netlens keep every packet of a fast loopback exchange? What does each packet cost?

Run as root: ``python tests/benchmarks/bench_capture.py [--round-trips 20000] [--ring 1000000]
[--rounds 3] [--against DIR ...] [--workload realistic|identical] [--skip-exchange] [--skip-ring]``

1. Exchange: an echo server (netlens.server in echo mode) and a client run in two
   other processes; the client makes N round trips of 32 bytes with TCP_NODELAY
   (about 2N packets in roughly a second) while netlens captures on lo in a third
   process. "Expected" is what the client's kernel counted (TCP_INFO segs_out +
   segs_in, read after the last echo and before closing); "captured" is the packets
   netlens stored before the first FIN; "capture CPU" is the capture thread's CPU
   time per captured packet. tcpdump and scapy's ``AsyncSniffer(prn=...)`` run the
   same exchange for comparison when available (``--compare``).
2. Ring: the frames of each workload (``workloads.py``: ``realistic``, a few echo
   streams with moving sequence numbers and IP ids and some retransmissions; and
   ``identical``, the one frame repeated that this benchmark used before) go into a
   ``PacketRing``: bytes per stored packet (tracemalloc), ``ring.append`` and
   ``ring.frame(no)``; then ``PacketStore.update`` analyses them all in one call,
   ``summary(no)`` makes rows of 20,000 packets spread over the ring, and
   ``summaries`` makes 50 screens of 50 rows. Times are CPU time (the machine may be
   shared; wall time counts the waits too): one pass for the analysis, the least of
   three for the others.

``--against DIR`` (another checkout, e.g. ``git archive d2a62c1 | tar -x -C /tmp/base``)
measures that tree too, in the same run: every capture and every ring measurement runs
in a fresh interpreter importing netlens from its tree, trees interleaved round by
round, the same server, client and frames for all; each figure is the median of
``--rounds`` rounds, with its range. Not a pytest test (no ``test_`` prefix): it prints figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Runnable from a fresh clone with the README's venv: netlens, the tests' frame builders, the workloads.
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]

from against import child_code, print_table  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

PAYLOAD = b"0123456789abcdef0123456789abcdef"  # 32 bytes
TCP_INFO_SEGS = struct.Struct("II")  # tcpi_segs_out, tcpi_segs_in at offset 136 of struct tcp_info
SEGS_OFFSET = 136
#: Rows of the ring table: figure key, description, format.
RING_ROWS = (
    ("per_packet", "bytes per stored packet (tracemalloc)", ".1f"),
    ("beyond", "  of which beyond the frame", ".1f"),
    ("append_us", "ring.append (µs/packet CPU)", ".2f"),
    ("frame_us", "ring.frame(no) (µs CPU)", ".2f"),
    ("update_cpu_us", "analysis (update) (µs/packet CPU)", ".2f"),
    ("update_wall_us", "analysis (update) (µs/packet wall)", ".2f"),
    ("summary_us", "summary(no) of any packet (µs CPU)", ".2f"),
    ("screen_ms", "one screen of 50 rows (ms CPU)", ".3f"),
)


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


def packets_before_fin(ring: Any) -> int:
    """Packets stored before the first FIN: the exchange's own (imports the netlens of the running tree)."""
    from netlens.capture.frames import FIN, Tcp, decode

    count = 0
    for _no, _ts, frame in ring:
        tcp = decode(frame, ring.linktype)
        if isinstance(tcp, Tcp):
            if tcp.flags & FIN:
                break
            count += 1
    return count


def capture_child(port: int, method: str) -> dict[str, float]:
    """Child side (``--against``): capture on lo until stdin closes; count the stored packets before the first FIN."""
    from netlens.capture import Capture, PacketRing

    ring = PacketRing()
    capture = Capture(iface="lo", port=port, ring=ring, method=method).start()
    print(f"ready {capture.filter_note}", flush=True)
    sys.stdin.read()
    stats = capture.stop()
    return {"captured": packets_before_fin(ring), "stored": stats.stored, "kernel_drops": stats.kernel_drops,
            "buffer": stats.rcvbuf, "cpu": stats.cpu}


def netlens_capturer(tree: Path, method: str, notes: set[str]) -> Callable[[int], Callable[[], dict[str, float]]]:
    """Capture with the netlens of ``tree`` in a child process (:func:`capture_child`); its filter into ``notes``."""
    def start(port: int) -> Callable[[], dict[str, float]]:
        code = child_code(tree, "bench_capture", f"capture_child({port}, {method!r})")
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, cwd=tree)
        assert proc.stdin is not None and proc.stdout is not None
        ready = proc.stdout.readline()
        if not ready.startswith("ready"):
            proc.kill()
            raise SystemExit(f"the capture in {tree} did not start: {ready.strip() or proc.wait()}")
        notes.add(re.sub(r"port \d+", "port N", ready.split(" ", 1)[1].strip()))

        def finish() -> dict[str, float]:
            assert proc.stdin is not None
            out, _ = proc.communicate(timeout=60)
            if proc.returncode:
                raise SystemExit(f"the capture in {tree} failed (exit status {proc.returncode})")
            return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]
        return finish
    return start


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

        ring = read_pcap(path).ring
        os.unlink(path)
        before_fin = packets_before_fin(ring)
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
    print(f"  {name:<17} expected {int(expected):>6}  captured {int(captured):>6}  "
          f"({100 * captured / expected:5.1f} %)  kernel drops {figures['kernel_drops']}  "
          f"[{rate:,.0f} packets/s, exchange took {figures['elapsed']:.2f} s]")


def exchange_figures(figures: dict[str, float], prefix: str) -> dict[str, float]:
    """The exchange table's figures of one capture, keyed ``prefix + name``."""
    captured = figures["captured"]
    return {prefix + "captured": 100 * captured / figures["expected"],
            prefix + "drops": figures["kernel_drops"],
            prefix + "cpu_us": figures["cpu"] / max(1, captured) * 1e6,
            prefix + "rate": figures["expected"] / figures["elapsed"] if figures["elapsed"] else 0.0}


def measure_exchange(args: argparse.Namespace, trees: list[Path]) -> None:
    """Part 1: the exchange captured by each tree, ``--rounds`` interleaved rounds; then the other capturers."""
    print(f"Capture of {args.round_trips:,} echo round trips (32 bytes, TCP_NODELAY) on lo, "
          f"{args.rounds} round(s):")
    rounds: list[dict[Path, dict[str, float]]] = []
    baseline = []
    filters: set[str] = set()
    for turn in range(args.rounds):
        plain = run_exchange(args.round_trips, no_capturer)
        baseline.append(plain["expected"] / plain["elapsed"])
        got: dict[Path, dict[str, float]] = {}
        for tree in trees[turn % len(trees):] + trees[:turn % len(trees)]:  # each round starts with the next
            got[tree] = {}
            for method in ("mmap", "recvmsg"):
                figures = run_exchange(args.round_trips, netlens_capturer(tree, method, filters))
                got[tree].update(exchange_figures(figures, method + " "))
        rounds.append(got)
    print(f"  no capture (baseline): {statistics.median(baseline):,.0f} packets/s (median); "
          f"netlens filter: {' / '.join(sorted(filters))}")
    rows = [(f"{method} {key}", f"{method}: {text}", fmt) for method in ("mmap", "recvmsg")
            for key, text, fmt in (("captured", "captured (%)", ".1f"), ("drops", "kernel drops", ".0f"),
                                   ("cpu_us", "capture CPU (µs/packet)", ".2f"),
                                   ("rate", "exchange (packets/s)", ",.0f"))]
    print_table("", rows, trees, rounds)
    if args.compare:
        if shutil.which("tcpdump"):
            report("tcpdump", run_exchange(args.round_trips, tcpdump_capturer))
        else:
            print("  tcpdump       not installed (apt-get install tcpdump)")
        report("AsyncSniffer", run_exchange(args.round_trips, asyncsniffer_capturer))


def ring_figures(path: str) -> dict[str, float]:
    """Child side: the ring and analysis figures of the pickled frames at ``path``, with this netlens."""
    import gc

    from netlens.capture import PacketRing, PacketStore

    frames: list[tuple[int, bytes]] = pickle.loads(Path(path).read_bytes())
    count = len(frames)
    frame_bytes = sum(len(frame) for _, frame in frames)
    gc.collect()
    ring = PacketRing(max_packets=count, max_bytes=max(256 << 20, frame_bytes * 2))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    append = ring.append
    for ts, frame in frames:
        append(ts, frame)
    per_packet = (tracemalloc.get_traced_memory()[0] - before) / count
    tracemalloc.stop()
    figures = {"per_packet": per_packet, "beyond": per_packet - frame_bytes / count}

    sample = frames[:200_000]

    def append_sample() -> None:
        append = PacketRing().append
        for ts, frame in sample:
            append(ts, frame)
    figures["append_us"] = best_cpu(append_sample) / len(sample) * 1e6
    del frames
    sample = []
    reads = range(1, count + 1, max(1, count // 100_000))

    def read_frames() -> None:
        for no in reads:
            ring.frame(no)
    figures["frame_us"] = best_cpu(read_frames) / len(reads) * 1e6
    store = PacketStore(ring)
    started, cpu_started = time.perf_counter(), time.process_time()
    store.update(limit=None)
    figures["update_cpu_us"] = (time.process_time() - cpu_started) / count * 1e6
    figures["update_wall_us"] = (time.perf_counter() - started) / count * 1e6
    picks = range(1, count, max(1, count // 20_000))

    def rows() -> None:
        for no in picks:
            store.summary(no)
    figures["summary_us"] = best_cpu(rows) / len(picks) * 1e6
    screens = range(1, min(count, 50 * 1000), 1000)

    def pages() -> None:
        for first in screens:
            store.summaries(first, first + 49)
    figures["screen_ms"] = best_cpu(pages) / len(screens) * 1e3
    return figures


def best_cpu(run: Callable[[], object], repeat: int = 3) -> float:
    """The least CPU time (seconds) of ``repeat`` calls of ``run``: the machine may be shared, and CPU time
    does not count the time others ran; the least is the run others disturbed least."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def measure_ring(args: argparse.Namespace, trees: list[Path]) -> None:
    """Part 2: each workload's ring and analysis figures for each tree, ``--rounds`` interleaved rounds."""
    from against import run_in

    with tempfile.TemporaryDirectory(prefix="ncb-ring-") as tmp:
        for name in args.workload or list(WORKLOADS):
            frames = WORKLOADS[name](args.ring)
            path = Path(tmp) / f"{name}.pickle"
            path.write_bytes(pickle.dumps(frames))
            sizes = sorted({len(frame) for _, frame in frames})
            del frames
            rounds = []
            for turn in range(args.rounds):
                # Each round starts with the next tree: a tree measured first or last every time could gain or
                # lose by its place (the machine's other work, caches) rather than by its code.
                order = trees[turn % len(trees):] + trees[:turn % len(trees)]
                rounds.append({tree: run_in(tree, "bench_capture", f"ring_figures({str(path)!r})") for tree in order})
            print_table(f"Ring of {args.ring:,} frames, workload {name!r} (frames of {sizes} bytes), "
                        f"{args.rounds} round(s):", RING_ROWS, trees, rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=20_000)
    parser.add_argument("--ring", type=int, default=1_000_000, help="frames per ring workload")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every tree (medians)")
    parser.add_argument("--against", type=Path, action="append", default=[], help="another checkout to compare")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append", help="ring workload(s)")
    parser.add_argument("--skip-exchange", action="store_true")
    parser.add_argument("--skip-ring", action="store_true")
    parser.add_argument("--compare", action="store_true", help="also run tcpdump and AsyncSniffer if available")
    args = parser.parse_args()
    trees = [ROOT, *[tree.resolve() for tree in args.against]]
    for tree in trees[1:]:
        if not (tree / "netlens" / "__init__.py").is_file():
            print(f"{tree} is not a netlens checkout (no netlens/__init__.py)", file=sys.stderr)
            return 2
    if len(trees) > 1:
        print("Trees: " + "; ".join(str(tree) for tree in trees))
    if not args.skip_exchange:
        if os.geteuid() != 0:
            print("run as root: packet capture needs CAP_NET_RAW (or --skip-exchange)", file=sys.stderr)
            return 2
        measure_exchange(args, trees)
    if not args.skip_ring:
        measure_ring(args, trees)
    return 0


if __name__ == "__main__":
    sys.exit(main())
