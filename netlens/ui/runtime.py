"""The app's process policy in one place: the GIL switch interval and the garbage collector's schedule.

Both are process-wide settings, so only the app (which owns the process
while it runs) sets them, and it puts them back when it ends; the engines
(server, probe, capture) leave them alone.

* Switch interval: the server, capture and probe threads share the process's
  GIL with the UI. Every syscall the server makes gives the GIL up, and
  getting it back waits for the switch interval (5 ms by default) whenever the
  UI is busy: at that default the server manages a few dozen requests a second
  under a busy UI. 0.5 ms keeps it fast.
* Garbage collector: a full collection scans every tracked object: with
  Textual's 150,000 and ours it paused the UI for 0.1-0.5 s a few times a
  minute, the worst key-press latencies there were. Everything built by the
  first frame lives as long as the app, so it is frozen out of the collector's
  sight; full collections no longer start by themselves but run when nobody
  has pressed a key for a moment (and at least every minute). Young objects
  are still collected as usual, in smaller batches less often.
"""

from __future__ import annotations

import gc
import sys
import time

#: GIL switch interval while the app runs (seconds).
SWITCH_INTERVAL = 0.0005
#: Young-generation threshold of the garbage collector (default 700): fewer, slightly larger pauses.
GC_YOUNG_THRESHOLD = 5000
#: Full collections: after this many seconds without a key press...
GC_QUIET = 2.0
#: ...but not more often than this, and at the latest after that (seconds).
GC_MIN_INTERVAL = 10.0
GC_MAX_INTERVAL = 60.0


class ProcessPolicy:
    """Sets the switch interval and the collector's schedule for the app, and restores both."""

    def __init__(self) -> None:
        self._switch_interval: float | None = None
        self._gc_thresholds: tuple[int, int, int] | None = None
        self._last_full_gc = time.monotonic()

    def fast_thread_switches(self) -> None:
        """Let the server's and capture's threads get the GIL back quickly (call once the app runs)."""
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)

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
        overdue = now - self._last_full_gc > GC_MAX_INTERVAL
        if (quiet and now - self._last_full_gc > GC_MIN_INTERVAL) or overdue:
            gc.collect()
            self._last_full_gc = time.monotonic()
            return True
        return False

    def restore(self) -> None:
        """Put the process's settings back as they were."""
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            gc.unfreeze()
