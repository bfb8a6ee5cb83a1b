"""Graph screen benchmark: key press to painted frame while packets flow at ~40,000/s, and the per-packet costs.

Run as root (capture on lo): ``python tests/benchmarks/bench_graph.py [--seconds 8] [--pps 40000]``

1. Live: ``--procs`` client processes (``--conns`` connections each, 64-byte TCP_NODELAY
   writes, each its own segment, paced to ``--pps`` packets/s in all, ACKs included) send
   to a sink process on loopback; netlens captures it on ``lo`` into a ring, and a
   thread analyses it into a store in small locked batches (as the packets panel
   does). The real :class:`GraphScreen` runs in a headless app on one of the
   connections and redraws twice a second (its drawing thread builds and draws; the
   UI thread only swaps lines in). The bench posts ``,``/``.`` key presses (cursor
   left/right: the cursor line is drawn over the plot, and the status line changes)
   50-100 ms apart, as a terminal driver's input thread does. Latency = from the
   key's posting to the first refresh after its action ran (``call_after_refresh``),
   and to the refresh that painted the plot with the moved cursor. Printed beside the
   UI's budget (150 ms p99) and the packet list's own figure from README (p99 42 ms).
2. Per packet: the store's analysis and the statistics pass (``StatsTracker``) over
   the same captured packets, in µs/packet, to show what following a stream costs.

Not a pytest test: it prints figures. Every child process stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import socket
import statistics
import sys
import threading
import time
from bisect import bisect_left
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.binding import Binding  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widgets import Static  # noqa: E402

from netlens.capture import Capture, PacketRing, PacketStore  # noqa: E402
from netlens.capture.feed import FeedState, StoreFeed, StreamView  # noqa: E402
from netlens.capture.stats import StatsTracker  # noqa: E402

try:  # the app's process policy moved to netlens.ui.runtime with the packet-feed reshaping
    from netlens.ui.runtime import GC_YOUNG_THRESHOLD, SWITCH_INTERVAL  # type: ignore[import-not-found]
except ImportError:
    from netlens.ui.app import GC_YOUNG_THRESHOLD, SWITCH_INTERVAL
from netlens.ui.screens.graph import GraphScreen  # noqa: E402

BUDGET_P99_MS = 150.0
PACKET_LIST_P99_MS = 42.0


def _sink_server(port_out: mp.Queue, lifetime: float) -> None:  # type: ignore[type-arg]
    """Accept connections and read whatever comes (the kernel ACKs; reading in 64 KiB gulps is cheap)."""
    import selectors
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    port_out.put(server.getsockname()[1])
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            if key.fileobj is server:
                conn, _ = server.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj  # type: ignore[assignment]
            try:
                if conn.recv(1 << 16):
                    continue
            except (BlockingIOError, ConnectionError):
                continue
            sel.unregister(conn)
            conn.close()


def _client(port: int, conns: int, pps: float, lifetime: float) -> None:
    """Small TCP_NODELAY writes, each its own segment, paced so that segments and ACKs make ``pps``."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    for sock in socks:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = b"x" * 64
    # Measured on lo: about 1.2 packets per write (the segment, and an ACK for some).
    writes_per_s = pps / 1.2
    deadline = time.monotonic() + lifetime
    sent = 0
    start = time.monotonic()
    while time.monotonic() < deadline:
        for sock in socks:
            for _ in range(8):
                sock.send(message)
            sent += 8
        ahead = sent / writes_per_s - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)


class Bench(App[None]):
    """A headless app showing one screen, with the netlens app's thread-switch and GC policy."""

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.bench_screen = screen

    def on_mount(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL)
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 1 << 30)
        self.push_screen(self.bench_screen)


class IdleScreen(Screen[None]):
    """The baseline: the same keys move a cursor shown in a status line, nothing is graphed."""

    BINDINGS = [Binding("comma", "cursor(-1)"), Binding("full_stop", "cursor(1)")]

    posted: list[float] = []
    painted: list[float] = []
    plotted: list[float] = []

    def __init__(self, feed: StoreFeed, stream: StreamView) -> None:
        super().__init__()
        self.stream = stream
        self.position = 0

    def compose(self) -> ComposeResult:
        yield Static(id="status")

    def action_cursor(self, steps: int) -> None:
        self.position += steps
        self.query_one("#status", Static).update(f"cursor {self.position}")
        self.app.call_after_refresh(lambda: self.painted.append(time.perf_counter()))


class TimedGraphScreen(GraphScreen):
    """The real screen, noting when each cursor key's frame was painted."""

    posted: list[float] = []
    painted: list[float] = []
    plotted: list[float] = []

    def action_cursor(self, steps: int) -> None:
        super().action_cursor(steps)
        self.app.call_after_refresh(lambda: self.painted.append(time.perf_counter()))

    def _show_cursor(self) -> None:
        # The plot's cursor line (drawn over the last drawing; before that, a whole new drawing was needed).
        super()._show_cursor()
        self.app.call_after_refresh(lambda: self.plotted.append(time.perf_counter()))


def _analyse(ring: PacketRing, store: PacketStore, lock: threading.Lock, stop: threading.Event) -> None:
    while not stop.is_set():
        with lock:
            done = store.update(200)
        if not done:
            time.sleep(0.005)


async def live(args: argparse.Namespace, screen_class: type[Screen[Any]]) -> None:
    ports: mp.Queue[int] = mp.Queue()
    lifetime = args.seconds + 10
    server = mp.Process(target=_sink_server, args=(ports, lifetime), daemon=True)
    server.start()
    port = ports.get(timeout=10)
    ring = PacketRing()
    capture = Capture(iface="lo", port=port, ring=ring).start()
    store = PacketStore(ring, server_ports=(port,))
    feed = StoreFeed(ring, store, FeedState.RUNNING, "lo")
    stop = threading.Event()
    analyser = threading.Thread(target=_analyse, args=(ring, store, feed.lock, stop), daemon=True)
    analyser.start()
    clients = [mp.Process(target=_client, args=(port, args.conns, args.pps / args.procs, lifetime),
                          daemon=True) for _ in range(args.procs)]
    for client in clients:
        client.start()
    try:
        while not store.streams():
            await asyncio.sleep(0.05)
        stream = feed.stream(store.streams()[0].id)
        screen: Any = screen_class(feed, stream)
        screen.posted, screen.painted, screen.plotted = [], [], []
        app = Bench(screen)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(1.0)
            first_stats = capture.stats()
            started = time.perf_counter()
            keys = 0
            while time.perf_counter() - started < args.seconds:
                key = "comma" if keys % 2 else "full_stop"
                before = len(screen.painted)
                screen.posted.append(time.perf_counter())
                app.post_message(events.Key(key, None))
                keys += 1
                for _ in range(400):
                    await asyncio.sleep(0.005)
                    if len(screen.painted) > before:
                        break
                await asyncio.sleep(0.05 + 0.05 * (keys % 7) / 7)
            last_stats = capture.stats()
            elapsed = time.perf_counter() - started
            follower = getattr(screen, "state", None)
            graphed = follower.graphed if follower else 0
            behind, missed = (follower.behind, follower.missed) if follower else (0, 0)
    finally:
        stop.set()
        capture.stop()
        for process in (*clients, server):
            process.terminate()
    latencies = [(p - q) * 1000 for q, p in zip(screen.posted, screen.painted, strict=False)]
    # The plot with the moved cursor: the first graph installed after the key's posting.
    plotted = sorted(screen.plotted)
    plot_latencies = sorted((plotted[i] - q) * 1000 for q in screen.posted
                            if (i := bisect_left(plotted, q)) < len(plotted))
    rate = (last_stats.captured - first_stats.captured) / elapsed
    print(f"--- {screen_class.__name__}")
    print(f"packets captured during the measurement: {rate:,.0f}/s (target {args.pps:,}/s); "
          f"kernel drops {last_stats.kernel_drops - first_stats.kernel_drops:,}")
    if follower:
        print(f"graph of stream {stream.id}: {graphed:,} packets graphed, {behind:,} to read, {missed:,} skipped")
    if latencies:
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"key press -> painted frame ({len(latencies)} presses): p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms   | budget p99 {BUDGET_P99_MS:.0f} ms; "
              f"packet list (README) p99 {PACKET_LIST_P99_MS:.0f} ms")
    if plot_latencies:
        p99 = plot_latencies[min(len(plot_latencies) - 1, int(len(plot_latencies) * 0.99))]
        print(f"key press -> plot painted with the new cursor: "
              f"p50 {statistics.median(plot_latencies):.1f} ms, p99 {p99:.1f} ms")
    if follower:
        per_packet(ring)


def per_packet(ring: PacketRing) -> None:
    """Store analysis and the statistics pass over the same packets, µs per packet."""
    store = PacketStore(ring)
    started = time.perf_counter()
    while store.update():
        pass
    store_us = (time.perf_counter() - started) / max(1, store.last) * 1e6
    tracker = StatsTracker(ring, store)
    started = time.perf_counter()
    while tracker.update():
        pass
    stats_us = (time.perf_counter() - started) / max(1, tracker.last) * 1e6
    print(f"per packet over {store.last:,} captured packets: store analysis {store_us:.1f} µs, "
          f"statistics pass (ACK RTT, flight, window, series) {stats_us:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=1, help="baseline/graph pairs to run")
    parser.add_argument("--pps", type=int, default=40_000)
    parser.add_argument("--procs", type=int, default=3)
    parser.add_argument("--conns", type=int, default=4)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark captures on lo")
    # Interleaved, in the same time window: the machine's other load affects both alike.
    for _ in range(args.rounds):
        asyncio.run(live(args, IdleScreen))
        asyncio.run(live(args, TimedGraphScreen))


if __name__ == "__main__":
    main()
