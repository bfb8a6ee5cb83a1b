"""Compact, bounded columns of numbers: what graph series are stored in.

A series of a long capture has millions of points; a Python tuple per point
costs ~100 bytes, an ``array`` slot 8. Rows are stored interleaved in one
``array('q')`` (one C call to append a row: this runs once per packet) and
split into columns only when a graph is drawn. Past ``limit`` rows the oldest
half is dropped at once (amortised O(1) per row), so a stream that runs for
hours stays bounded.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right

#: Rows a series keeps at most before it forgets its oldest half.
DEFAULT_LIMIT = 400_000


class Columns:
    """Rows of integers; the first column (time, ns) is non-decreasing."""

    __slots__ = ("names", "flat", "width", "limit", "dropped")

    def __init__(self, *names: str, limit: int = DEFAULT_LIMIT) -> None:
        self.names = names
        self.width = len(names)
        self.flat = array("q")
        self.limit = limit
        #: Rows forgotten to stay under ``limit``.
        self.dropped = 0

    def add(self, *values: int) -> None:
        """Append one row (as many values as columns)."""
        self.flat.extend(values)
        if len(self.flat) > self.limit * self.width:
            half = self.limit // 2
            del self.flat[:half * self.width]
            self.dropped += half

    def __len__(self) -> int:
        return len(self.flat) // self.width

    @property
    def data(self) -> tuple[array[int], ...]:
        """Every column, split out of the rows (a copy: O(rows))."""
        return tuple(self.flat[i::self.width] for i in range(self.width))

    def column(self, name: str) -> array[int]:
        """The column called ``name`` (a copy)."""
        return self.flat[self.names.index(name)::self.width]

    def window(self, start_ns: int | None, stop_ns: int | None) -> tuple[int, int]:
        """Index range of the rows whose time lies in ``[start_ns, stop_ns]`` (None: unbounded)."""
        times = self.flat[::self.width]
        lo = 0 if start_ns is None else bisect_left(times, start_ns)
        hi = len(times) if stop_ns is None else bisect_right(times, stop_ns)
        return lo, hi
