"""Keys first: a gate the UI closes while a key is being handled, and the server's loop waits at.

The app, its server, capture, analysis and probe share one process and one
GIL. Under a search flood the server's loop wants the GIL back after every
system call, thousands of times a second, so every step of a key's handling
(Textual passes a key through several turns of its event loop, each of which
lets the GIL go) waited for the loop. Measured with
``tests/benchmarks/bench_tui_flood.py`` (8 looping clients, 200 idle
connections, capture on; arrow keys against the lightest Textual app's):
without the gate 2.2-2.7x and the palette's worst 601 ms; with the loop
waiting only until the key's frame was composed, 2.2-2.9x still (the frame's
bytes and the next key met a running loop); with the gate closed until
:data:`TAIL` after the frame, 1.1-2.0x in seven runs and the palette's worst
139-388 ms (the lightest app's own: 188-320 ms).

A pause is bounded: at most :data:`LONGEST` seconds at a time, then the loop
runs at least :data:`RUN_AT_LEAST` seconds before it waits again, so held
keys slow the server down (their frames come first) but never stop it.
:attr:`KeyGate.paused` counts the time given up, to be said where the
server's figures are shown.
"""

from __future__ import annotations

import threading
import time

#: Longest a waiter waits for one key (seconds): a palette's first frame takes ~0.1 s under a flood.
LONGEST = 0.1
#: After a wait, the waiter runs at least this long before it waits again (seconds).
RUN_AT_LEAST = 0.02
#: The gate stays closed this long after a key's frame was composed: Textual's writer thread still has
#: to send it to the terminal (it needs the GIL too), and the next key of a series comes meanwhile (seconds).
TAIL = 0.15


class KeyGate:
    """Closed from a key's arrival until TAIL after its frame; one thread (the server's loop) waits at it."""

    def __init__(self, longest: float = LONGEST, run_at_least: float = RUN_AT_LEAST) -> None:
        self.longest = longest
        self.run_at_least = run_at_least
        self._open = threading.Event()
        self._open.set()
        self._waits_again = 0.0
        #: Keys seen so far (an opening meant for an earlier key must not open it for a later one).
        self.generation = 0
        #: Seconds the waiter spent waiting, and how many times it waited.
        self.paused = 0.0
        self.pauses = 0

    def close(self) -> None:
        """A key arrived (any thread: the terminal's input thread closes it as early as it can)."""
        self.generation += 1
        self._open.clear()

    def open(self, generation: int | None = None) -> None:
        """The key's frame is out; ``generation``: only if no key came since :attr:`generation` was that."""
        if generation is None or generation == self.generation:
            self._open.set()

    @property
    def is_open(self) -> bool:
        """True when no key is being handled."""
        return self._open.is_set()

    def wait_turn(self) -> None:
        """Wait while a key is handled, within the bounds (call between units of work; cheap when open)."""
        if self._open.is_set():
            return
        started = time.monotonic()
        if started < self._waits_again:
            return
        self._open.wait(self.longest)
        ended = time.monotonic()
        self._waits_again = ended + self.run_at_least
        self.paused += ended - started
        self.pauses += 1
