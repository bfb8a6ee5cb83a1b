"""The app's process policy in one place: the GIL switch interval, the garbage collector's schedule, the C heap.

Both are process-wide settings, so only the app (which owns the process
while it runs) sets them, and it puts them back when it ends; the engines
(server, probe, capture) leave them alone.

* Switch interval: the server, capture and probe threads share the process's
  GIL with the UI. Every syscall the server makes gives the GIL up, and
  getting it back waits for the switch interval whenever another thread is
  busy. It was 0.5 ms while the UI read every event on every tick. Since the
  UI reads nothing while a key is being handled, CPython's own 5 ms is better
  for keys and only a little worse for the server (bench_tui_flood.py, quiet
  machine, same flood: palette p50 110-130 ms, worst 147-166 ms at 5 ms
  against 134-189 ms, worst 299-450 ms at 0.5 ms and 307/485 ms at 0.1 ms; the
  server in the TUI 1,520-1,570 against 1,670-2,090 req/s). So a key sets
  5 ms, and the first tick without a key sets 0.5 ms again for the server.
* Garbage collector: a full collection scans every tracked object: with
  Textual's 150,000 and ours it paused the UI for 0.1-0.5 s a few times a
  minute, the worst key-press latencies there were. Everything built by the
  first frame lives as long as the app, so it is frozen out of the collector's
  sight; full collections no longer start by themselves but run when nobody
  has pressed a key for a moment. Young objects are still collected as
  usual, in smaller batches less often.
* Under a flood the heap grows by millions of objects a minute (streams,
  rows, events); a full collection over all of them took ~1 s, and forcing
  one every minute while keys were coming in was the worst key latency left
  (measured with a gc callback in the TUI under an 8-client search flood).
  So what survives an idle collection is frozen too: the next one scans only
  what is newer. Objects freed by reference counting (nearly all) still go
  at once; only cyclic garbage among frozen objects waits, for the complete
  collection that every GC_COMPLETE_EVERY-th idle collection makes. None is
  forced while keys come in, unless one is GC_MAX_INTERVAL overdue, and
  then only in a lull between keys. The complete one scans everything (~0.45 s
  under a flood): it waits for a longer lull, GC_COMPLETE_QUIET without a key,
  since a key that comes while it runs waits for all of it.
* C heap: glibc serves a block of 128 KiB or more with its own mmap, but
  after the first such block is freed it raises that threshold (up to 32 MiB)
  and carves later big blocks out of per-thread heaps, where a few long-lived
  small blocks between them keep the freed space resident. The packet ring's
  4 MiB chunks are the big blocks that come and go all the time (the oldest
  goes when the budget is full). Measured with 400 unique 1 MB searches
  through the TUI (main's code, glibc's variable, same window): RSS after the
  clients left +124..+148 MB with the moving threshold, +93..+100 MB with it
  fixed at 3.5 MiB (the ring's 62 MB included), and 10 s later (after the idle
  trim) +106..+148 against +81..+85. So the threshold is fixed just below the
  ring's chunks: a chunk goes back to the system the moment the ring lets it
  go, while smaller blocks (1 MB request bodies) are still reused in place.
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

#: GIL switch interval while a key is being handled (seconds): CPython's default, best for keys (see above).
SWITCH_INTERVAL = 0.005
#: ...and between keys, when the server should get the GIL back quickly after each syscall.
SERVER_SWITCH_INTERVAL = 0.0005
#: Young-generation threshold of the garbage collector (default 700): fewer, slightly larger pauses.
GC_YOUNG_THRESHOLD = 5000
#: Blocks of this many bytes or more get their own mapping, returned to the system when freed.
MMAP_THRESHOLD = 7 << 19  # 3.5 MiB
#: glibc's mallopt() parameter number for the mmap threshold (malloc.h: M_MMAP_THRESHOLD).
_M_MMAP_THRESHOLD = -3
#: Full collections: after this many seconds without a key press...
GC_QUIET = 2.0
#: ...but not more often than this, and at the latest after that (seconds).
GC_MIN_INTERVAL = 3.0
GC_MAX_INTERVAL = 300.0
#: An overdue collection still waits for this long a pause between keys (seconds).
GC_LULL = 0.5
#: Every this many idle collections, the frozen objects are collected too.
GC_COMPLETE_EVERY = 20  # with GC_MIN_INTERVAL: at most once a minute
#: ...and only when no key came for this long (seconds): under a flood it takes ~0.45 s (a gc callback
#: in the TUI under bench_tui_flood.py), and a key arriving meanwhile waits for all of it.
GC_COMPLETE_QUIET = 10.0
#: ...unless this many idle collections went by without such a lull: then at the usual quiet.
GC_COMPLETE_LATEST = 5 * GC_COMPLETE_EVERY


class ProcessPolicy:
    """Sets the switch interval and the collector's schedule for the app, and restores both."""

    def __init__(self) -> None:
        self._switch_interval: float | None = None
        self._gc_thresholds: tuple[int, int, int] | None = None
        self._last_full_gc = time.monotonic()
        #: Idle collections since the last complete one (which also scans the frozen objects).
        self._collections = 0
        self.complete_collections = 0

    def pin_switch_interval(self, keys: bool = True) -> None:
        """Set the GIL switch interval for a key being handled (``keys``) or for the server (call once the app runs)."""
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
        wanted = SWITCH_INTERVAL if keys else SERVER_SWITCH_INTERVAL
        if sys.getswitchinterval() != wanted:
            sys.setswitchinterval(wanted)

    def tame_garbage_collector(self) -> None:
        """Freeze what exists, collect young objects in bigger batches, and full collections only when idle."""
        gc.collect()
        gc.freeze()
        if self._gc_thresholds is None:
            self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 1 << 30)
        self._last_full_gc = time.monotonic()

    def collect_if_idle(self, last_input: float) -> bool:
        """Run a full collection if no key came for a while (or one is overdue); call about once a second."""
        now = time.monotonic()
        quiet = now - last_input > GC_QUIET
        overdue = now - self._last_full_gc > GC_MAX_INTERVAL and now - last_input > GC_LULL
        if not ((quiet and now - self._last_full_gc > GC_MIN_INTERVAL) or overdue):
            return False
        self._collections += 1
        due = self._collections >= GC_COMPLETE_EVERY
        if due and (now - last_input > GC_COMPLETE_QUIET or self._collections >= GC_COMPLETE_LATEST):
            self._collections = 0
            self.complete_collections += 1
            gc.unfreeze()  # this time the frozen objects' cycles are looked at too
        gc.collect()
        gc.freeze()  # survivors: the next collection scans only what is newer
        _return_free_memory()
        self._last_full_gc = time.monotonic()
        return True

    @staticmethod
    def return_big_blocks_promptly() -> None:
        """Fix glibc's mmap threshold so freed big blocks leave the process at once (see the module's notes)."""
        libc = _libc()
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)

    def restore(self) -> None:
        """Put the process's settings back as they were."""
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            gc.unfreeze()


def _return_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).

    Captured frames and big recv()s are allocated outside Python's small-object
    arenas; once freed, glibc keeps the pages for reuse, so a 1 GiB transfer
    would leave the TUI's RSS high long after the ring dropped its frames. Only
    at idle, next to the full collection: a trim walks the heap (milliseconds).
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _libc() -> Any:
    """glibc, once loaded (None where the C library is another one: nothing to tune or trim)."""
    global _glibc
    if _glibc is None:
        try:
            import ctypes

            library = ctypes.CDLL("libc.so.6")
            _glibc = library if hasattr(library, "malloc_trim") and hasattr(library, "mallopt") else False
        except OSError:
            _glibc = False
    return _glibc or None


#: glibc once looked up (False where there is none).
_glibc: Any = None
