"""The live phase: the real app under load, key presses on the packet list and the connections table."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waiting import until

from uibench.load import LoadProcesses
from uibench.meter import Meter, Press, Target, press_keys

SIZE = (120, 40)
ROOT = Path(__file__).resolve().parents[3]


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
        target.widget.move_cursor(min(rows - 1, 5))
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
    status0, cpu0, server0 = view.feed.status(), thread_cpu(), app.feeds.server.stats()
    t0 = time.perf_counter()
    meter.recording = True
    if profile is not None:
        profile.enable()
    lag_task = asyncio.create_task(loop_lag(lag, lag_stop))
    rows: list[int] = []
    rows_task = asyncio.create_task(sample_list(view, rows, lag_stop))
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
    status1, cpu1, server1 = view.feed.status(), thread_cpu(), app.feeds.server.stats()
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
        "pps": (status1.captured - status0.captured) / elapsed,
        "drops": status1.kernel_drops - status0.kernel_drops,
        "pending": status1.pending,
        "skipped": status1.skipped - status0.skipped,
        "list_rows": rows,
        "stored": status1.stored,
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

    app = NetlensApp(LiveFeeds(ServerConfig(mode="echo", port=0), capture=True,
                               kernel_trace=not args.no_kernel_trace), animate=False)
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
            result["filter"] = view.status.sentence
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
                                          "virtual-table--cursor"))
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
        app.feeds.stop()  # stops the packet feed's capture and analysis thread too
        meter.uninstall()
        if args.gc_freeze:
            gc.unfreeze()
    if profile is not None:
        profile.dump_stats(args.profile)
        result["profile"] = args.profile
    return result
