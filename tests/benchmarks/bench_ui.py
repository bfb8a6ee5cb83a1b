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
   window (the packet feed's status), whatever the target was.

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

2. Refresh cost: recorded packet feeds over rings of 1,000 and 1,000,000
   synthetic echo-conversation frames (``tests/support/synth.py``) are
   shown by the real ``PacketsView`` of an app on recorded feeds. With the cursor at
   the end (following) and in the middle, it times (median of ``--repeats``):
   rendering every visible row via ``render_line`` after clearing the row cache; a
   compositor repaint of the packet list with its caches cleared, encoded to terminal
   bytes (what a frame after a key press costs for this panel); and a full-screen
   frame with the packet list invalidated.

Not a pytest test: it prints figures. Every child process stops by itself
(``--lifetime``, or when this process goes away) and Ctrl-C cleans up.

``--against DIR`` (another checkout) runs that tree's own ``bench_ui.py`` and this one in
turn, ``--rounds`` times, with the same options, and prints the medians of both
"Summary" sections side by side (``uibench/trees.py`` says why and how).

The parts live in ``uibench/``: ``load.py`` (the child processes), ``meter.py``
(press → frame measurement, and the Textual internals it has to hook),
``live.py`` and ``refresh.py`` (the two phases), ``report.py`` (the figures),
``trees.py`` (``--against``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# Runnable from a fresh clone with the README's venv: the tests' helpers and this benchmark's parts.
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]

from uibench.live import SIZE, live_phase  # noqa: E402
from uibench.refresh import build_feed, refresh_costs  # noqa: E402
from uibench.report import other_load, print_live, summary, tree_state  # noqa: E402


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
    parser.add_argument("--no-kernel-trace", action="store_true",
                        help="live phase without the kernel-trace feed (as the app was before it had one; with "
                             "--against, other trees run without this option)")
    parser.add_argument("--against", type=Path, action="append", default=[],
                        help="another checkout: run its bench_ui.py and this one in turn, figures side by side")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: runs of each tree (medians)")
    args = parser.parse_args()
    if args.against:
        from uibench.trees import compare, without

        return compare([ROOT, *[tree.resolve() for tree in args.against]], args.rounds,
                       without(sys.argv[1:], ("--against", "--rounds")))
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
                feed = build_feed(size)
                built = time.perf_counter() - started
                print(f"  built and analysed {feed.status().stored:,} frames "
                      f"({feed.ring.bytes_stored / 2**20:,.1f} MiB, {len(feed.store.streams()):,} streams) "
                      f"in {built:.1f} s", flush=True)
                refresh[size] = run_bounded(refresh_costs(feed, args.repeats))
                del feed
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


if __name__ == "__main__":
    exit_bounded(main())
