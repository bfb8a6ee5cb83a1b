"""UI responsiveness benchmark: key press to painted frame under a loopback flood, and packet-panel refresh cost.

Run as root (capture on lo): ``python tests/benchmarks/bench_ui.py [--seconds 10] [--presses 200]``

1. Live: the real app runs headless in this process (``app.run_test(size=(120, 40))``)
   with ``LiveFeeds`` in echo mode on port 0 and capture on ``lo``. Load comes from
   other processes (they do not share the app's GIL):

   * ``--load-procs`` (3) processes with ``--load-conns`` (8) connections each send
     small (16-byte) TCP_NODELAY echo requests, pipelined up to ``--depth`` (64) per
     connection, paced to ``--pps`` (40,000) packets/s in total. Each paces itself on
     its own sockets' TCP_INFO segment counters (its connections' packets, both ways).
     One request per round trip cannot reach 40k packets/s against the Python server
     inside the app; pipelining lets one server recv/send answer many requests.
   * one more process holds the rest of ``--conns`` (200 connections open to the
     server in all) and pings each now and then, so the server's 30 s idle timeout
     never closes them.

   The packet rate reported is what the app's capture stored over the measurement
   window (``PacketsView.capture.stats()``), whatever the target was.

   While the load runs, a thread of this process posts key presses to the app
   exactly as a terminal driver's input thread does (``driver.process_message`` of an
   ``events.Key``), ``up``/``down`` alternately so the cursor moves each time, each
   25-75 ms after the previous one was painted (random phase against the 10 Hz tick),
   first in the packet list (following the flood), then in the connections table,
   until ``--presses`` presses per widget have moved its cursor (a press that found
   the list empty is reported, not counted). "Painted" is the first frame the app
   hands to its terminal after the key whose content shows the cursor on the row
   the key moved it to: ``App._display`` is wrapped, the frame (a compositor update)
   is encoded to terminal bytes as a real driver does, and the frame's line for the
   new cursor row is checked for the cursor's background colour.
   Latency = painted - posted; "key -> action ran" splits off the input queue wait.
   To explain the figures it also times the UI thread's work (10 Hz tick, packet
   analysis, kernel snapshot into the table, frames, layout, garbage collection),
   attributes each press's latency to what ran meanwhile, and reports the CPU of
   every thread and process, and how far the packet list is behind the capture.

2. Refresh cost: ``PacketStore``s over ``PacketRing``s of 1,000 and 1,000,000
   synthetic echo-conversation frames (``tests/support/synth.py``) are
   shown by the real ``PacketsView`` of an app on recorded feeds. With the cursor at
   the end (following) and in the middle, it times (median of ``--repeats``):
   rendering every visible row via ``render_line`` after clearing the row cache; a
   compositor repaint of the packet list with its caches cleared, encoded to terminal
   bytes (what a frame after a key press costs for this panel); and a full-screen
   frame with the packet list invalidated.

Not a pytest test: it prints figures. Every child process stops by itself
(``--lifetime``, or when this process goes away) and Ctrl-C cleans up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import queue
import random
import selectors
import signal
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from waiting import until  # noqa: E402

SIZE = (120, 40)
#: struct tcp_info: tcpi_segs_out, tcpi_segs_in at byte 136 (Linux >= 4.2).
SEGS = struct.Struct("II")
SEGS_OFFSET = 136
PAYLOAD = b"echo 0123456789\n"  # 16 bytes: one small TCP_NODELAY segment per send
PING = b"ping\n"


# --------------------------------------------------------------------------- child processes


def _child_init() -> tuple[int, Callable[[], bool]]:
    """Common set-up of a load process: Ctrl-C is the parent's business; die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    return parent, lambda: os.getppid() != parent


def _segs(sock: socket.socket) -> int:
    """Packets the kernel counted on this connection (both directions)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return 0
    out, inn = SEGS.unpack_from(info, SEGS_OFFSET)
    return out + inn


def hold_connections(port: int, count: int, lifetime: float, stop: Any, ready: Any) -> None:
    """Child: open ``count`` connections and keep them; ping each about every 8 s; stop on ``stop``."""
    _, orphaned = _child_init()
    deadline = time.monotonic() + lifetime
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.setblocking(False)
            socks.append(sock)
        ready.put(len(socks))
        sel = selectors.DefaultSelector()
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        period = 8.0 / max(1, count)
        turn = 0
        next_ping = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline and not orphaned():
            now = time.monotonic()
            if now >= next_ping:
                try:
                    socks[turn % count].send(PING)
                except (BlockingIOError, OSError):
                    pass
                turn += 1
                next_ping = now + period
            for key, _ in sel.select(timeout=max(0.0, min(0.2, next_ping - time.monotonic()))):
                try:
                    if not key.fileobj.recv(4096):  # type: ignore[union-attr]
                        sel.unregister(key.fileobj)  # the server closed it (the app is going away)
                except BlockingIOError:
                    pass
                except OSError:
                    sel.unregister(key.fileobj)
    except OSError as exc:
        ready.put(f"holder: {exc}")
    finally:
        for sock in socks:
            sock.close()


def echo_load(port: int, conns: int, target_pps: float, depth: int, lifetime: float, stop: Any,
              ready: Any, report: Any) -> None:
    """Child: pipelined small echo requests on ``conns`` connections, paced to ``target_pps`` packets/s.

    Pacing: a token bucket of sends; every 0.2 s the rate is corrected by the ratio of
    the target to the packets the kernel counted on these connections (TCP_INFO).
    At most ``depth`` requests are in flight per connection, so a server that cannot
    keep up bounds the rate instead of piling up buffers.
    """
    _, orphaned = _child_init()
    deadline = time.monotonic() + lifetime
    size = len(PAYLOAD)
    socks: list[socket.socket] = []
    try:
        for _ in range(conns):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            socks.append(sock)
    except OSError as exc:
        ready.put(f"load: {exc}")
        return
    ready.put(len(socks))
    sel = selectors.DefaultSelector()
    inflight = {}
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
        inflight[sock] = 0
    limit = depth * size
    rate = target_pps / 2  # sends/s: one request packet and one echo packet per send when not pipelined
    tokens = 0.0
    sends = echoed = 0
    cpu0, started = time.process_time(), time.monotonic()
    segs0 = sum(_segs(s) for s in socks)
    last_tick, last_segs = started, segs0
    last = started
    turn = 0
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            tokens = min(tokens + (now - last) * rate, max(4.0, rate * 0.005))
            last = now
            tries = 0
            while tokens >= 1 and tries < conns:
                sock = socks[turn % conns]
                turn += 1
                if inflight[sock] >= limit:
                    tries += 1
                    continue
                tries = 0
                try:
                    sock.send(PAYLOAD)
                except (BlockingIOError, InterruptedError):
                    tries += 1
                    continue
                inflight[sock] += size
                sends += 1
                tokens -= 1
            for key, _ in sel.select(timeout=0.001):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                if not data:
                    raise ConnectionError("the server closed a load connection")
                inflight[sock] -= len(data)
                echoed += len(data)
            if now - last_tick >= 0.2:
                segs = sum(_segs(s) for s in socks)
                pps = (segs - last_segs) / (now - last_tick)
                if pps > 0:
                    rate = min(max(rate * min(2.0, max(0.5, target_pps / pps)) ** 0.7, 100.0), target_pps * 2)
                last_tick, last_segs = now, segs
                if orphaned():
                    break
    except OSError as exc:
        report.put({"error": str(exc)})
        return
    finally:
        elapsed = time.monotonic() - started
        segs = sum(_segs(s) for s in socks)
        for sock in socks:
            sock.close()
    report.put({"sends": sends, "echoed": echoed // size, "packets": segs - segs0, "elapsed": elapsed,
                "cpu": time.process_time() - cpu0})


class LoadProcesses:
    """The holder and the echo-load processes, stopped together (and by themselves)."""

    def __init__(self, port: int, args: argparse.Namespace) -> None:
        self.ctx = mp.get_context("spawn")
        self.stop = self.ctx.Event()
        self.ready = self.ctx.Queue()
        self.report = self.ctx.Queue()
        self.procs: list[Any] = []
        self.port = port
        self.args = args

    def start(self) -> tuple[int, int]:
        """Start every process; returns (idle connections held, load connections)."""
        a = self.args
        held = load_conns = 0
        busy = a.load_procs * a.load_conns if a.pps > 0 else 0
        if a.conns > busy:
            holder = self.ctx.Process(target=hold_connections, name="bench-holder", daemon=True,
                                      args=(self.port, a.conns - busy, a.lifetime, self.stop, self.ready))
            holder.start()
            self.procs.append(holder)
            held = self._ready()
        loaders = []
        for i in range(a.load_procs if a.pps > 0 else 0):
            proc = self.ctx.Process(target=echo_load, name=f"bench-load-{i}", daemon=True,
                                    args=(self.port, a.load_conns, a.pps / a.load_procs, a.depth, a.lifetime,
                                          self.stop, self.ready, self.report))
            proc.start()
            self.procs.append(proc)
            loaders.append(proc)
        for _ in loaders:
            load_conns += self._ready()
        return held, load_conns

    def _ready(self) -> int:
        """The next "ready" (a connection count) from a child; an error if one failed or died."""
        deadline = time.monotonic() + 60
        while True:
            try:
                got = self.ready.get(timeout=0.5)
            except queue.Empty:
                dead = [p.name for p in self.procs if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"load process {', '.join(dead) or '(slow)'} did not get ready") from None
                continue
            if isinstance(got, str):
                raise RuntimeError(got)
            return int(got)

    def finish(self, timeout: float = 10.0) -> list[dict[str, float]]:
        """Stop every process (terminate the ones that do not stop); returns the load processes' reports."""
        self.stop.set()
        reports = []
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
        while True:
            try:
                reports.append(self.report.get(timeout=0.2))
            except Exception:
                break
        return reports


# --------------------------------------------------------------------------- measuring the app


@dataclass
class Press:
    """One key press and what became of it (perf_counter seconds)."""

    key: str
    posted: float
    handled: float | None = None
    painted: float | None = None
    #: The cursor row the key moved to (set by the key's action).
    expected: int | None = None
    #: Frames handed to the terminal between the action and the one that showed it.
    frames: int = 0
    #: The key did not move the cursor (at an end of the list): nothing to paint, not counted.
    noop: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Target:
    """A widget whose cursor a key moves, and how to find the cursor's row on screen."""

    def __init__(self, name: str, widget: Any, component: str) -> None:
        self.name = name
        self.widget = widget
        self.component = component

    def cursor(self) -> int:
        w = self.widget
        return w.cursor if hasattr(w, "follow") else w.cursor_row

    def rows(self) -> int:
        w = self.widget
        return w.row_count() if hasattr(w, "follow") else w.row_count

    def screen_line(self, row: int) -> int | None:
        """Screen y of ``row`` as the widget is scrolled now (None: not visible)."""
        w = self.widget
        region = w.content_region
        header = w.header_height if getattr(w, "show_header", False) else 0
        y = region.y + header + row - int(w.scroll_y)
        return y if region.y + header <= y < region.bottom else None


class Meter:
    """Hooks on the app: when keys are acted on and when frames reach the terminal; time spent per activity."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pending: Press | None = None
        self.target: Target | None = None
        self.frames = 0
        self.intervals: dict[str, list[tuple[float, float]]] = {}
        self.recording = False
        original = app._display

        def display(screen: Any, update: Any) -> None:
            original(screen, update)
            if update is None or app._batch_count:
                return
            # What a real driver does on the UI thread: encode the frame for the terminal.
            update.render_segments(app.console)
            now = time.perf_counter()
            self.frames += 1
            press = self.pending
            if press is not None and press.handled is not None and press.painted is None:
                press.frames += 1
                if self._shows_cursor(update, press):
                    press.painted = now
                    press.done.set()

        app._display = display

    def timed(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` wrapped to record its (start, end) while recording."""
        spans = self.intervals.setdefault(name, [])

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                if self.recording:
                    spans.append((start, time.perf_counter()))

        return wrapper

    def install(self, main: Any) -> None:
        """Time the main screen's periodic work and frames (and the garbage collector's pauses)."""
        gc_spans = self.intervals.setdefault("garbage collection", [])
        full_spans = self.intervals.setdefault("  of which full (gen 2)", [])
        gc_start = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_start[0] = time.perf_counter()
            elif self.recording and threading.current_thread() is threading.main_thread():
                span = (gc_start[0], time.perf_counter())
                gc_spans.append(span)
                if info.get("generation") == 2:
                    full_spans.append(span)

        gc.callbacks.append(on_gc)
        self._gc_callback = on_gc
        main.tick = self.timed("10 Hz tick (all)", main.tick)
        main.packets.tick = self.timed("  packet analysis", main.packets.tick)
        main.events.add = self.timed("  event log add", main.events.add)
        main.refresh_status = self.timed("  status line", main.refresh_status)
        main.apply_snapshot = self.timed("kernel snapshot -> table", main.apply_snapshot)
        main._compositor_refresh = self.timed("frame: compose+encode", main._compositor_refresh)
        compositor = main._compositor
        compositor.reflow = self.timed("frame: layout reflow", compositor.reflow)
        compositor.reflow_visible = self.timed("frame: layout reflow", compositor.reflow_visible)

    def uninstall(self) -> None:
        """Stop listening to the garbage collector."""
        if getattr(self, "_gc_callback", None) in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)

    def watch(self, target: Target) -> None:
        """Record when a key's action ran on ``target`` and which row it moved the cursor to."""
        self.target = target
        widget = target.widget

        def mark(before: int) -> None:
            press = self.pending
            if press is not None and press.handled is None:
                press.handled = time.perf_counter()
                press.expected = target.cursor()
                if press.expected == before:
                    press.noop = True
                    press.done.set()

        if hasattr(widget, "follow"):  # a VirtualList
            action = widget.action_cursor

            def action_cursor(delta: int) -> None:
                before = target.cursor()
                action(delta)
                mark(before)

            widget.action_cursor = action_cursor
        else:  # the DataTable
            up, down = widget.action_cursor_up, widget.action_cursor_down

            def action_cursor_up() -> None:
                before = target.cursor()
                up()
                mark(before)

            def action_cursor_down() -> None:
                before = target.cursor()
                down()
                mark(before)

            widget.action_cursor_up = action_cursor_up
            widget.action_cursor_down = action_cursor_down

    def _shows_cursor(self, update: Any, press: Press) -> bool:
        """Does this frame draw the cursor on the row the key moved it to?"""
        from textual._compositor import ChopsUpdate, LayoutUpdate
        from textual.strip import Strip

        target = self.target
        assert target is not None and press.expected is not None
        y = target.screen_line(press.expected)
        if y is None:
            return False
        region = target.widget.region
        x1, x2 = region.x, region.right
        if isinstance(update, ChopsUpdate):
            if not any(sy == y and sx1 < x2 and sx2 > x1 for sy, sx1, sx2 in update.spans):
                return False
            segments = [seg for x, strip in update.chops[y].items() if strip is not None and x1 <= x < x2
                        for seg in strip]
        elif isinstance(update, LayoutUpdate):
            row = y - update.region.y
            if not 0 <= row < len(update.strips):
                return False
            segments = list(Strip.join(list(update.strips[row])).crop(x1, x2))
        else:
            return False
        bg = target.widget.get_component_rich_style(target.component).bgcolor
        return any(seg.style is not None and seg.style.bgcolor == bg for seg in segments)


def press_keys(app: Any, meter: Meter, count: int, presses: list[Press], stop: threading.Event) -> None:
    """Thread: post key presses like a terminal's input thread until ``count`` of them moved the cursor.

    Each press comes 25-75 ms after the previous one was painted. A press that could
    not move the cursor (the list had fewer than two rows at that moment) is kept but
    not counted. Gives up after 5 presses in a row that were not painted within 3 s,
    or after ``3 * count`` presses in all.
    """
    from textual import events

    driver = app._driver
    rng = random.Random(1234)
    misses = counted = 0
    for i in range(3 * count):
        if counted >= count or stop.wait(rng.uniform(0.025, 0.075)):
            break
        key = "up" if i % 2 == 0 else "down"
        press = Press(key, time.perf_counter())
        meter.pending = press
        presses.append(press)
        driver.process_message(events.Key(key, None))
        painted = press.done.wait(3.0)
        meter.pending = None
        misses = 0 if painted else misses + 1
        counted += not press.noop
        if press.noop:
            stop.wait(0.2)  # the list is (nearly) empty for now: give it a moment
        if misses >= 5 or stop.is_set():
            break
    meter.pending = None


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (values in any order)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process, by thread name."""
    import psutil

    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for t in psutil.Process().threads():
        name = names.get(t.id, f"tid {t.id}")
        out[name] = out.get(name, 0.0) + t.user_time + t.system_time
    return out


async def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> Any:
    """Let the app run until ``predicate()`` is truthy (the tests' helper, with a named failure)."""
    try:
        return await until(None, predicate, timeout)
    except AssertionError:
        raise RuntimeError(f"timed out waiting for {what}") from None


async def sample_list(view: Any, samples: list[int], stop: asyncio.Event) -> None:
    """Rows in the packet list, twice a second (how much of the capture it shows)."""
    while not stop.is_set():
        samples.append(view.list.row_count())
        await asyncio.sleep(0.5)


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late a 10 ms asyncio sleep wakes on the app's loop (how busy the UI thread is)."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        samples.append(time.perf_counter() - start - 0.01)


async def measure_target(app: Any, meter: Meter, target: Target, args: argparse.Namespace,
                         profile: Any, load_pids: list[Any]) -> dict[str, Any]:
    """Press keys on one target under load; returns the figures."""
    view = app.main.packets
    target.widget.focus()
    meter.watch(target)
    if target.name == "packet list":
        # Follow mode first (what a user sees while the flood comes in); the first "up" leaves it.
        target.widget.action_last()
    else:
        rows = target.widget.row_count
        target.widget.move_cursor(row=min(rows - 1, 5), animate=False)
    await asyncio.sleep(0.5)
    presses: list[Press] = []
    stop = threading.Event()
    lag: list[float] = []
    lag_stop = asyncio.Event()
    for spans in meter.intervals.values():
        spans.clear()
    import psutil

    children = [psutil.Process(proc.pid) for proc in load_pids]
    me = psutil.Process()
    me0 = sum(me.cpu_times()[:2])
    sys0 = psutil.cpu_times()
    kids0 = [sum(c.cpu_times()[:2]) for c in children]
    stats0, cpu0, server0 = view.capture.stats(), thread_cpu(), app.feeds.server.stats()
    t0 = time.perf_counter()
    meter.recording = True
    if profile is not None:
        profile.enable()
    lag_task = asyncio.create_task(loop_lag(lag, lag_stop))
    rows: list[int] = []
    rows_task = asyncio.create_task(sample_list(view, rows, lag_stop))
    skipped0 = view.store.skipped if view.store is not None else 0
    thread = threading.Thread(target=press_keys, args=(app, meter, args.presses, presses, stop),
                              name="key presser", daemon=True)
    thread.start()
    try:
        while thread.is_alive() or time.perf_counter() - t0 < args.seconds:
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        lag_stop.set()
        await lag_task
        await rows_task
        thread.join(5)
    if profile is not None:
        profile.disable()
    meter.recording = False
    t1 = time.perf_counter()
    stats1, cpu1, server1 = view.capture.stats(), thread_cpu(), app.feeds.server.stats()
    sys1 = psutil.cpu_times()
    kids1 = [sum(c.cpu_times()[:2]) for c in children]
    me1 = sum(me.cpu_times()[:2])
    elapsed = t1 - t0
    total = sum(sys1) - sum(sys0)
    machine = {name: (getattr(sys1, name) - getattr(sys0, name)) / total
               for name in ("user", "system", "softirq", "idle") if hasattr(sys1, name)}
    # CPU (in cores) used by processes other than this one and its load processes: someone else's work.
    busy_cores = (1 - machine.get("idle", 0.0)) * (os.cpu_count() or 1)
    others = busy_cores - (me1 - me0) / elapsed - sum(kids1) / elapsed + sum(kids0) / elapsed
    latencies = [p.painted - p.posted for p in presses if p.painted is not None]
    noops = sum(p.noop for p in presses)
    presses = [p for p in presses if not p.noop]
    return {
        "target": target.name,
        "noops": noops,
        "presses": len(presses),
        "painted": len(latencies),
        "latencies": latencies,
        "to_action": [p.handled - p.posted for p in presses if p.handled is not None],
        "frames_per_press": [p.frames for p in presses if p.painted is not None],
        "elapsed": elapsed,
        "pps": (stats1.captured - stats0.captured) / (stats1.elapsed - stats0.elapsed),
        "drops": stats1.kernel_drops - stats0.kernel_drops,
        "pending": view.store.pending if view.store is not None else 0,
        "skipped": (view.store.skipped - skipped0) if view.store is not None else 0,
        "list_rows": rows,
        "stored": stats1.stored,
        "server_bytes_in_per_s": (server1.bytes_in - server0.bytes_in) / elapsed,
        "active": server1.active,
        "table_rows": app.main.table.row_count,
        "cpu": {k: (cpu1.get(k, 0.0) - cpu0.get(k, 0.0)) / elapsed for k in cpu1},
        "load_cpu": [(a - b) / elapsed for a, b in zip(kids1, kids0, strict=False)],
        "machine": machine,
        "app_cpu": (me1 - me0) / elapsed,
        "others": others,
        "intervals": {k: list(v) for k, v in meter.intervals.items()},
        "lag": lag,
        "presses_raw": presses,
    }


async def live_phase(args: argparse.Namespace) -> dict[str, Any]:
    """The app under load: key-press latency per target."""
    from netlens.server import ServerConfig
    from netlens.ui.app import NetlensApp
    from netlens.ui.feeds import LiveFeeds
    from netlens.ui.widgets.connections import ConnectionsTable
    from netlens.ui.widgets.packets import PacketList

    app = NetlensApp(LiveFeeds(ServerConfig(mode="echo", port=0), capture=True), animate=False)
    meter = Meter(app)
    result: dict[str, Any] = {"targets": []}
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
    # Made before the app starts: inside run_test, sys.stderr is Textual's capture and has no
    # file descriptor for multiprocessing's resource tracker.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    load = LoadProcesses(0, args)
    workers: list[Any] = []
    view: Any = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            del pilot
            view = await wait_for(lambda: app.main is not None and app.main.is_mounted and app.main.packets,
                                  10, "the main screen")
            await wait_for(lambda: view.state in ("running", "failed"), 20, "the capture to start")
            if view.state == "failed":
                raise RuntimeError("capture failed to start (run as root): "
                                   + str(view.query_one("#packets-message").content))
            port = app.feeds.server.address[1]
            meter.install(app.main)
            result["filter"] = view.capture.filter_note if view.capture else ""
            try:
                load.port = port
                held, load_conns = await asyncio.to_thread(load.start)
                result["held"], result["load_conns"] = held, load_conns
                expected_rows = 2 * (held + load_conns) + 1  # both ends of each loopback connection, and LISTEN
                await wait_for(lambda: app.main.table.row_count >= expected_rows, 30,
                               f"{expected_rows} rows in the connections table")
                await asyncio.sleep(args.warmup)
                if args.gc_freeze:
                    # Experiment: what the garbage collector's full collections cost the UI (see --help).
                    gc.collect()
                    gc.freeze()
                targets = []
                if args.target in ("packets", "both"):
                    targets.append(Target("packet list", app.main.query_one(PacketList), "virtual-list--cursor"))
                if args.target in ("connections", "both"):
                    targets.append(Target("connections table", app.main.query_one(ConnectionsTable),
                                          "datatable--cursor"))
                for target in targets:
                    if target.rows() < 3:
                        print(f"  the {target.name} has {target.rows()} rows: no cursor to move, skipped", flush=True)
                        continue
                    print(f"  pressing keys on the {target.name} ...", flush=True)
                    result["targets"].append(await measure_target(app, meter, target, args, profile, load.procs))
            finally:
                result["load_reports"] = await asyncio.to_thread(load.finish)
                workers = list(app.workers)
    finally:
        # Belt and braces: whatever state the app ended in (an error, Ctrl-C), no thread of it may
        # outlive the benchmark, and no load process the end of this phase.
        if load.procs and any(proc.is_alive() for proc in load.procs):
            load.finish(timeout=2)
        for worker in workers + list(app.workers):
            worker.cancel()
        app.feeds.stop()
        if view is not None and view.capture is not None:
            view.capture.stop(timeout=0.5)
        meter.uninstall()
        if args.gc_freeze:
            gc.unfreeze()
    if profile is not None:
        profile.dump_stats(args.profile)
        result["profile"] = args.profile
    return result


# --------------------------------------------------------------------------- refresh cost


def build_store(count: int, server_port: int = 65432) -> Any:
    """A ring of ``count`` frames: echo conversations (handshake, 50 round trips, close) at 40k packets/s."""
    from support.synth import Conversation

    from netlens.capture import PacketRing, PacketStore

    ring = PacketRing(max_packets=max(count, 1000), max_bytes=max(256 << 20, count * 200))
    now = 1_767_261_600_000_000_000
    client_port = 20000
    while ring.last < count:
        conv = Conversation(ring, client=("127.0.0.1", client_port), server=("127.0.0.1", server_port),
                            isn=(client_port * 7919, client_port * 104729), start_ns=now, step_ns=25_000)
        client_port = client_port + 1 if client_port < 60999 else 20000
        if count - ring.last < 10:
            conv.client(b"x" * (1 + count % 7), flags="PA")
            while ring.last < count:
                conv.server(flags="A")
            now = conv.now
            break
        conv.handshake()
        for i in range(50):
            if ring.last + 5 > count:
                break
            message = b"Message %d from client %d." % (i, client_port)
            conv.client(message)
            conv.server(message)
        if ring.last + 3 <= count:
            conv.close(first=0)
        now = conv.now + 1_000_000
    store = PacketStore(ring, server_ports=(server_port,))
    store.update(limit=None)
    return store


def recorded_feeds_with(store: Any) -> Any:
    """The UI tests' recorded moment, with ``store`` as its packets."""
    from netlens.ui.feeds import RecordedFeeds

    sys.path.insert(0, str(ROOT / "tests" / "ui"))
    import recording  # the deterministic feed the snapshot tests use

    return RecordedFeeds(recording._server(), recording._events(), recording._kernel(), recording.NOW,
                         packets=store)


async def refresh_costs(store: Any, repeats: int) -> dict[str, dict[str, float]]:
    """Time refreshes of the packet list showing ``store``, cursor at the end and in the middle."""
    from netlens.ui.app import NetlensApp
    from netlens.ui.widgets.packets import PacketList

    app = NetlensApp(recorded_feeds_with(store), animate=False)
    out: dict[str, dict[str, float]] = {}
    async with app.run_test(size=SIZE) as pilot:
        plist = await wait_for(lambda: app.main is not None and app.main.is_mounted
                               and app.main.query_one(PacketList), 10, "the packet list")
        await wait_for(lambda: plist.row_count() == store.last - store.first + 1 and plist.size.height, 10,
                       "the packet list to show the store")
        plist.focus()
        screen = app.screen
        console = app.console
        for where in ("end", "middle"):
            if where == "end":
                plist.action_last()
            else:
                plist.follow = False
                mid = plist.row_count() // 2
                plist.cursor = mid
                plist.scroll_to(y=mid - plist.size.height // 2, animate=False, immediate=True)
            await pilot.pause(0.1)
            height = plist.size.height
            rows, list_frame, full_frame = [], [], []
            for _ in range(repeats):
                plist._cache.clear()
                start = time.perf_counter()
                for y in range(height):
                    plist.render_line(y)
                rows.append(time.perf_counter() - start)

                # The packet list repainted as the compositor does after a key press: row cache and
                # line cache invalidated, partial update of its region, encoded for the terminal.
                await pilot.pause()
                plist._cache.clear()
                start = time.perf_counter()
                plist.refresh()
                screen._compositor.update_widgets({plist})
                update = screen._compositor.render_update(screen_stack=app._background_screens)
                if update is not None:
                    update.render_segments(console)
                list_frame.append(time.perf_counter() - start)

                # A full-screen frame (every widget composed and encoded), packet list invalidated.
                await pilot.pause()
                plist._cache.clear()
                start = time.perf_counter()
                plist.refresh()
                screen._compositor.update_widgets({plist})
                update = screen._compositor.render_update(full=True, screen_stack=app._background_screens)
                update.render_segments(console)
                full_frame.append(time.perf_counter() - start)
            first_row = int(plist.scroll_y)
            out[where] = {"rows": statistics.median(rows), "list_frame": statistics.median(list_frame),
                          "full_frame": statistics.median(full_frame), "height": height,
                          "first_row": first_row, "cursor": plist.cursor}
    return out


# --------------------------------------------------------------------------- report


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.1f}"


def print_live(result: dict[str, Any], args: argparse.Namespace) -> None:
    for fig in result["targets"]:
        lat = fig["latencies"]
        print(f"\n  [{fig['target']}] {fig['presses']} presses, {fig['painted']} painted"
              f" ({fig['presses'] - fig['painted']} not painted within 3 s"
              + (f"; {fig['noops']} more could not move the cursor and are not counted" if fig["noops"] else "")
              + f"), window {fig['elapsed']:.1f} s")
        print(f"    capture: {fig['pps']:,.0f} packets/s stored, {fig['drops']} kernel drops, "
              f"{fig['stored']:,} in the ring, {fig['pending']:,} waiting for analysis at the end")
        rows = fig["list_rows"]
        if rows:
            print(f"    packet list: {min(rows):,} to {max(rows):,} rows (median {int(statistics.median(rows)):,}); "
                  f"{fig['skipped']:,} packets left the ring before they were analysed (never listed)")
        print(f"    server: {fig['active']} connections open, echo {fig['server_bytes_in_per_s'] / 1e3:,.0f} kB/s in;"
              f" connections table: {fig['table_rows']} rows")
        print(f"    key -> painted frame  p50 {ms(pct(lat, 50))}  p90 {ms(pct(lat, 90))}  p99 {ms(pct(lat, 99))}"
              f"  max {ms(max(lat) if lat else float('nan'))} ms")
        act = fig["to_action"]
        print(f"    key -> action ran     p50 {ms(pct(act, 50))}  p90 {ms(pct(act, 90))}  p99 {ms(pct(act, 99))}"
              f"  max {ms(max(act) if act else float('nan'))} ms")
        frames = fig["frames_per_press"]
        if frames:
            first = sum(1 for n in frames if n == 1) / len(frames)
            print(f"    the first frame after the key's action showed it for {first:.0%} of presses "
                  f"(at most {max(frames)} frames later)")
        lag = fig["lag"]
        print(f"    event-loop lag (10 ms sleeps, {len(lag)}): p50 {ms(pct(lag, 50))}  p99 {ms(pct(lag, 99))}  "
              f"max {ms(max(lag) if lag else float('nan'))} ms")
        print("    UI-thread work while measuring:      per s   share   p50 ms   p99 ms   max ms")
        for name, spans in fig["intervals"].items():
            durations = [b - a for a, b in spans]
            if not durations:
                continue
            print(f"      {name:<30} {len(durations) / fig['elapsed']:6.1f} {sum(durations) / fig['elapsed']:6.1%}"
                  f" {ms(pct(durations, 50))}  {ms(pct(durations, 99))}  {ms(max(durations))}")
        cpu = ", ".join(f"{name} {share:.0%}" for name, share in sorted(fig["cpu"].items(), key=lambda kv: -kv[1])
                        if share >= 0.01)
        print(f"    CPU of this process's threads (share of one core): {cpu}")
        load_cpu = ", ".join(f"{share:.0%}" for share in fig["load_cpu"])
        machine = ", ".join(f"{name} {share:.0%}" for name, share in fig["machine"].items())
        print(f"    CPU of the load processes (holder, echo...): {load_cpu}; "
              f"whole machine ({os.cpu_count()} cores): {machine}")
        print(f"    this process used {fig['app_cpu']:.2f} cores; everything else on the machine (kernel softirq work "
              f"included) {max(0.0, fig['others']):.2f} cores")
        attribution(fig)
    reports = result.get("load_reports", [])
    for rep in reports:
        if "error" in rep:
            print(f"  load process error: {rep['error']}")
    good = [rep for rep in reports if "error" not in rep and rep["elapsed"] > 0]
    if good:
        print(f"\n  echo load over the whole run ({len(good)} processes): "
              f"{sum(r['sends'] / r['elapsed'] for r in good):,.0f} requests/s sent, "
              f"{sum(r['echoed'] / r['elapsed'] for r in good):,.0f} echoed/s, "
              f"{sum(r['packets'] / r['elapsed'] for r in good):,.0f} packets/s on their connections (TCP_INFO), "
              f"{sum(r['cpu'] / r['elapsed'] for r in good):.0%} CPU in total")


def attribution(fig: dict[str, Any]) -> None:
    """Where the time between key and frame went: UI-thread work overlapping each press, by activity."""
    presses = [p for p in fig["presses_raw"] if p.painted is not None]
    if not presses:
        return
    top = [name for name in fig["intervals"] if not name.startswith(" ")]
    cut = pct([p.painted - p.posted for p in presses], 90)

    def overlap(name: str, p: Press) -> float:
        return sum(max(0.0, min(b, p.painted) - max(a, p.posted))  # type: ignore[type-var,arg-type]
                   for a, b in fig["intervals"][name])

    for label, group in (("all presses", presses), (f"slowest 10 % (>= {cut * 1e3:.0f} ms)",
                                                     [p for p in presses if p.painted - p.posted >= cut])):
        parts = {name: statistics.mean(overlap(name, p) for p in group) for name in top}
        total = statistics.mean(p.painted - p.posted for p in group)  # type: ignore[operator]
        # GC pauses happen inside the other activities; do not count them twice.
        accounted = sum(v for k, v in parts.items() if k != "garbage collection")
        shown = "  ".join(f"{name} {v * 1e3:.1f}" for name, v in sorted(parts.items(), key=lambda kv: -kv[1])
                          if v >= 0.0005)
        print(f"    mean latency of {label}: {total * 1e3:.1f} ms = {shown}  "
              f"other {max(0.0, total - accounted) * 1e3:.1f} (ms)")


def tree_state() -> str:
    """The commit measured, and which files under netlens/ differ from it (the figures belong to that state)."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "netlens"],
                                 capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    files = [line[3:] for line in changed if line.strip()]
    return f"commit {head}" + (f" + uncommitted changes in {', '.join(files)}" if files else " (clean)")


def other_load() -> str:
    """Other processes busy on the CPU right now (they would skew the figures)."""
    import psutil

    me = os.getpid()
    procs = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.info["pid"] != me]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(0.5)
    busy = []
    for p in procs:
        try:
            share = p.cpu_percent(None)
        except psutil.Error:
            continue
        if share >= 10:
            busy.append(f"{' '.join(p.info['cmdline'] or [p.info['name']])[:60]} ({share:.0f}%)")
    return "; ".join(busy)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="shortest measurement window per target")
    parser.add_argument("--presses", type=int, default=200, help="key presses per target")
    parser.add_argument("--target", choices=("packets", "connections", "both"), default="both")
    parser.add_argument("--pps", type=float, default=40_000, help="target loopback packets/s of the echo load")
    parser.add_argument("--conns", type=int, default=200,
                        help="connections open to the server in all (the echo ones included; the rest idle)")
    parser.add_argument("--load-procs", type=int, default=3, help="echo load processes")
    parser.add_argument("--load-conns", type=int, default=8, help="echo connections per load process")
    parser.add_argument("--depth", type=int, default=64, help="requests in flight per echo connection")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--lifetime", type=float, default=600.0, help="child processes stop by themselves after this")
    parser.add_argument("--sizes", default="1000,1000000", help="stored packets for the refresh cost")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-refresh", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the UI thread during the presses (slows it)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="experiment: gc.freeze() after the warm-up, so full collections skip the objects "
                             "alive by then (measures what the collector's pauses cost)")
    args = parser.parse_args()
    if not args.skip_live and os.geteuid() != 0:
        print("run as root: packet capture on lo needs CAP_NET_RAW (or --skip-live)", file=sys.stderr)
        return 2
    import textual

    cores = os.cpu_count()
    print(f"netlens UI benchmark: {cores} cores, Python {sys.version.split()[0]}, Textual {textual.__version__}, "
          f"terminal {SIZE[0]}x{SIZE[1]} (headless; frames encoded as for a real terminal)")
    print(f"  code: {tree_state()}")
    busy = other_load()
    if busy:
        print(f"  note: other processes were using CPU when the benchmark started: {busy}")
    live: dict[str, Any] | None = None
    refresh: dict[int, dict[str, dict[str, float]]] = {}
    try:
        if not args.skip_live:
            load_text = (f"{args.load_procs}x{args.load_conns} echo connections (depth {args.depth}) paced to "
                         f"{args.pps:,.0f} packets/s, the rest idle" if args.pps > 0 else "all idle (no echo load)")
            print(f"Live: echo server + capture on lo in the app; {args.conns} connections to it: {load_text}; "
                  f"{args.presses} presses per target"
                  + ("; EXPERIMENT: gc.freeze() after warm-up" if args.gc_freeze else ""))
            live = run_bounded(live_phase(args))
            print(f"  capture filter: {live.get('filter')}")
            print_live(live, args)
            if live.get("profile"):
                import pstats

                print(f"\n  cProfile of the UI thread (written to {live['profile']}), top 25 by cumulative time:")
                pstats.Stats(live["profile"]).sort_stats("cumulative").print_stats(25)
        if not args.skip_refresh:
            print("Packet panel refresh cost:")
            for size in (int(s) for s in args.sizes.split(",")):
                started = time.perf_counter()
                store = build_store(size)
                built = time.perf_counter() - started
                print(f"  built and analysed {store.last - store.first + 1:,} frames "
                      f"({store.ring.bytes_stored / 2**20:,.1f} MiB, {len(store.streams()):,} streams) "
                      f"in {built:.1f} s", flush=True)
                refresh[size] = run_bounded(refresh_costs(store, args.repeats))
                del store
                gc.collect()
            for size, figures in refresh.items():
                for where, f in figures.items():
                    print(f"  {size:>9,} stored, cursor {where:<6} (rows {f['first_row']:,}+{f['height']}): "
                          f"{f['height']} rows render_line {f['rows'] * 1e3:6.2f} ms   list repaint "
                          f"{f['list_frame'] * 1e3:6.2f} ms   full-screen frame {f['full_frame'] * 1e3:6.2f} ms")
    except KeyboardInterrupt:
        print("\ninterrupted; child processes stopped", file=sys.stderr)
        return 130
    summary(live, refresh, args)
    return 0


def run_bounded(coro: Any) -> Any:
    """``asyncio.run`` (Ctrl-C cancels the coroutine, so its clean-up runs), without its unbounded
    wait for the default executor's threads at the end: a thread the app left running is
    dealt with by :func:`exit_bounded` instead of hanging here."""
    runner = asyncio.Runner()
    loop = runner.get_loop()
    try:
        return runner.run(coro)
    finally:
        executor = getattr(loop, "_default_executor", None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            loop._default_executor = None  # type: ignore[attr-defined]
        runner.close()


def exit_bounded(code: int) -> None:
    """Exit, but never wait more than a few seconds for a thread the app left behind."""
    deadline = time.monotonic() + 5
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate() if t is not threading.current_thread() and t.is_alive()
            and not t.daemon]
    if left:
        print(f"threads still running after 5 s: {', '.join(left)}; exiting anyway", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def summary(live: dict[str, Any] | None, refresh: dict[int, dict[str, dict[str, float]]],
            args: argparse.Namespace) -> None:
    print("\nSummary")
    print(f"  machine: {os.cpu_count()} cores")
    if live is not None:
        for fig in live["targets"]:
            lat = fig["latencies"]
            verdict = "MEETS" if lat and pct(lat, 99) < 0.1 and fig["painted"] == fig["presses"] else "MISSES"
            print(f"  key->frame, {fig['target']:<18} n={fig['painted']:>3}/{fig['presses']:<3} "
                  f"p50 {ms(pct(lat, 50))} p90 {ms(pct(lat, 90))} p99 {ms(pct(lat, 99))} max "
                  f"{ms(max(lat) if lat else float('nan'))} ms  [{verdict} p99 < 100 ms]  "
                  f"at {fig['pps']:,.0f} packets/s (target {args.pps:,.0f}), {fig['active']} server connections "
                  f"({live['held']} idle + {live['load_conns']} echo); packet list {fig['pending']:,} packets "
                  f"behind the capture at the end")
    if refresh:
        sizes = sorted(refresh)
        for where in ("end", "middle"):
            for key, label in (("rows", "visible rows render_line"), ("list_frame", "packet list repaint"),
                               ("full_frame", "full-screen frame")):
                cells = "  ".join(f"{s:>9,}: {refresh[s][where][key] * 1e3:6.2f} ms" for s in sizes)
                ratio = (f"  ratio {sizes[-1]:,}/{sizes[0]:,} = "
                         f"{refresh[sizes[-1]][where][key] / refresh[sizes[0]][where][key]:.2f}"
                         if len(sizes) > 1 else "")
                print(f"  refresh, cursor {where:<6} {label:<25} {cells}{ratio}")


if __name__ == "__main__":
    exit_bounded(main())
