"""What the connections table costs the UI thread: 200 real loopback connections (401 rows), in-process.

Run: ``python tests/benchmarks/bench_conn_table.py [--rounds 100] [--against OTHER_TREE]``

The real ``ConnectionsTable`` in a headless app (160x40), fed by the real probe
(sock_diag) and tracker, as in the TUI. Figures (medians and p90):

* ``apply``: one kernel snapshot into the table (rows and time unchanged);
* ``churn apply``: a snapshot after 5 connections closed and 5 opened;
* ``frame after a one-row update``: one connection on screen sent a byte, its snapshot
  was applied (same clock, so only that connection's rows change); the work of the
  screen update that follows (``Screen._compositor_refresh``: rendering + compositing);
* ``frame after a cursor move``: the same, for the next arrow key (``action_cursor_*``).

``--against OTHER_TREE`` runs the same measurement on another checkout's
``netlens`` (e.g. one before the table became a VirtualTable) in a child
process, and prints both side by side. Not a pytest test: it prints figures.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    return f"p50 {statistics.median(ordered):7.2f}  p90 {ordered[int(len(ordered) * 0.9) - 1]:7.2f} ms"


async def measure(rounds: int) -> dict[str, list[float]]:
    """The figures of the module docstring, for the ``netlens`` this interpreter imports."""
    from textual.app import App, ComposeResult

    from netlens.probe import ConnectionTracker, Prober
    from netlens.ui.facts import FactBook
    from netlens.ui.widgets.connections import ConnectionsTable

    class TableApp(App[None]):
        CSS = "ConnectionsTable { height: 1fr; }"

        def compose(self) -> ComposeResult:
            yield ConnectionsTable()

    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    port = listener.getsockname()[1]
    pairs: list[tuple[socket.socket, socket.socket]] = []

    def connect() -> None:
        client = socket.create_connection(("127.0.0.1", port))
        pairs.append((client, listener.accept()[0]))

    out: dict[str, list[float]] = {"apply": [], "churn apply": [], "frame after a one-row update": [],
                                   "frame after a cursor move": []}
    try:
        for _ in range(200):
            connect()
        prober, tracker, facts = Prober(), ConnectionTracker(linger=6.0), FactBook()
        app = TableApp()
        async with app.run_test(size=(160, 40)) as pilot:
            table = app.query_one(ConnectionsTable)
            table.focus()

            def apply(now: float) -> float:
                update = tracker.update(prober.snapshot(port))
                started = time.perf_counter()
                table.apply(update, {}, now, facts, None, port)
                return (time.perf_counter() - started) * 1e3

            for _ in range(rounds // 3 + 1):
                out["apply"].append(apply(time.time()))
                await pilot.pause()
            for _ in range(10):
                for client, server in pairs[:5]:
                    client.close()
                    server.close()
                del pairs[:5]
                for _ in range(5):
                    connect()
                out["churn apply"].append(apply(time.time()))
                await pilot.pause()
            frames: list[float] = []
            screen: Any = app.screen
            refresh = screen._compositor_refresh

            def timed_refresh() -> None:
                started = time.perf_counter()
                try:
                    refresh()
                finally:
                    frames.append((time.perf_counter() - started) * 1e3)

            async def frame_work() -> float:
                deadline = time.perf_counter() + 0.3
                while not frames and time.perf_counter() < deadline:
                    await asyncio.sleep(0.002)
                await asyncio.sleep(0.02)
                return sum(frames)

            screen._compositor_refresh = timed_refresh
            fixed = time.time() + 60  # one clock: ages and highlights do not move between rounds
            clients = {pair[0].getsockname()[1]: pair[0] for pair in pairs}
            # Connections whose rows are on screen (either end); the older table names it _visible_keys.
            visible = getattr(table, "visible_keys", None) or table._visible_keys
            shown = [sock for key in visible() if (row := table.row(key)) is not None
                     for sock in (clients.get(row.socket.local_port), clients.get(row.socket.remote_port)) if sock]
            for press in range(rounds):
                shown[press % len(shown)].sendall(b"x")
                await asyncio.sleep(0.01)
                frames.clear()
                apply(fixed)
                out["frame after a one-row update"].append(await frame_work())
                frames.clear()
                (table.action_cursor_down if press % 2 == 0 else table.action_cursor_up)()
                out["frame after a cursor move"].append(await frame_work())
            screen._compositor_refresh = refresh
    finally:
        for client, server in pairs:
            client.close()
            server.close()
        listener.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--against", metavar="OTHER_TREE", help="also measure another checkout's netlens")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(repr(asyncio.run(measure(args.rounds))))
        return 0
    trees = [("this tree", ROOT)] + ([("other tree", Path(args.against).resolve())] if args.against else [])
    results = {}
    for label, tree in trees:
        env = dict(os.environ, PYTHONPATH=str(tree))
        out = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds)], env=env,
                             capture_output=True, text=True, timeout=600, check=True).stdout
        results[label] = ast.literal_eval(out.strip().splitlines()[-1])
    print(f"Connections table, 200 loopback connections, {args.rounds} rounds (ms of the UI thread):")
    for name in results["this tree"]:
        for label in results:
            print(f"  {name:30s} {label:10s} {percentiles(results[label][name])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
