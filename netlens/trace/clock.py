"""Trace timestamps on the wall clock packets use.

Packets carry the kernel's CLOCK_REALTIME (``skb->tstamp``, taken by
``ktime_get_real()``), as do ``SO_TIMESTAMPNS`` and the server's
``time.time()``. ftrace has no realtime clock, but it has ``tai``
(``ktime_get_tai_fast_ns()``: the same monotonic clocksource reading plus the
kernel's TAI offset). CLOCK_TAI and CLOCK_REALTIME differ by exactly the TAI
offset, a whole number of seconds (0 until NTP sets it, 37 today), and both
move together when the time is set or slewed; so ``realtime = tai - offset``
is exact to the nanosecond, with the offset read from the two clocks and
rounded to whole seconds. (``mono``/``boot`` would need the realtime -
monotonic offset, which user space can only sample with tens of nanoseconds
of jitter and which changes whenever the time is stepped.)

Kernels before 5.19 have no ``tai`` trace clock: there we fall back to
``mono`` plus a sampled offset, and say the conversion is approximate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

NS = 1_000_000_000


def tai_offset_ns(read: Callable[[int], int] = time.clock_gettime_ns) -> int:
    """CLOCK_TAI - CLOCK_REALTIME: whole seconds by definition, so round away the microseconds between reads."""
    delta = read(time.CLOCK_TAI) - read(time.CLOCK_REALTIME)
    return round(delta / NS) * NS


def monotonic_offset_ns(read: Callable[[int], int] = time.clock_gettime_ns) -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC, sampled between two monotonic reads (best of five)."""
    best: tuple[int, int] | None = None
    for _ in range(5):
        before = read(time.CLOCK_MONOTONIC)
        real = read(time.CLOCK_REALTIME)
        after = read(time.CLOCK_MONOTONIC)
        sample = (after - before, real - (before + after) // 2)
        if best is None or sample[0] < best[0]:
            best = sample
    assert best is not None
    return best[1]


@dataclass(frozen=True, slots=True)
class ClockConversion:
    """How the instance's ``trace_clock`` maps onto CLOCK_REALTIME."""

    trace_clock: str  # "tai" or "mono"
    exact: bool

    def offset_ns(self) -> int:
        """What to add to a trace timestamp to get CLOCK_REALTIME nanoseconds, now."""
        if self.trace_clock == "tai":
            return -tai_offset_ns()
        return monotonic_offset_ns()


TAI = ClockConversion("tai", exact=True)
MONO = ClockConversion("mono", exact=False)


def choose(available: str) -> ClockConversion:
    """The best conversion among the clocks listed in a ``trace_clock`` file (``[local] global ... tai``)."""
    names = available.replace("[", " ").replace("]", " ").split()
    return TAI if "tai" in names else MONO
