"""Compact, bounded columns of numbers: what graph series are stored in.

A series of a long capture has millions of points; a Python tuple per point
costs ~100 bytes, an ``array`` column 8. Each :class:`Columns` keeps parallel
``array('q')`` columns and, past ``limit`` rows, drops its oldest half at once
(amortised O(1) per row) so a stream that runs for hours stays bounded.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right

#: Rows a series keeps at most before it forgets its oldest half.
DEFAULT_LIMIT = 400_000


class Columns:
    """Parallel integer columns, the first of which (time, ns) is non-decreasing."""

    __slots__ = ("names", "data", "limit", "dropped")

    def __init__(self, *names: str, limit: int = DEFAULT_LIMIT) -> None:
        self.names = names
        self.data = tuple(array("q") for _ in names)
        self.limit = limit
        #: Rows forgotten to stay under ``limit``.
        self.dropped = 0

    def add(self, *values: int) -> None:
        """Append one row (as many values as columns)."""
        for column, value in zip(self.data, values, strict=True):
            column.append(value)
        if len(self.data[0]) > self.limit:
            half = self.limit // 2
            for column in self.data:
                del column[:half]
            self.dropped += half

    def __len__(self) -> int:
        return len(self.data[0])

    def column(self, name: str) -> array[int]:
        """The column called ``name``."""
        return self.data[self.names.index(name)]

    def window(self, start_ns: int | None, stop_ns: int | None) -> tuple[int, int]:
        """Index range of the rows whose time lies in ``[start_ns, stop_ns]`` (None: unbounded)."""
        times = self.data[0]
        lo = 0 if start_ns is None else bisect_left(times, start_ns)
        hi = len(times) if stop_ns is None else bisect_right(times, stop_ns)
        return lo, hi
