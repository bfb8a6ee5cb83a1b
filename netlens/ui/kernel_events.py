"""Kernel trace events in the events panel, on the server events' clock, and the jumps between panels.

The events panel keeps raw server records ``(code, ts, conn, *fields)``; a
kernel event rides in the same list as ``(KERNEL, ts, conn, event, side)`` so the
panel's per-connection filter (on ``record[2]``) covers both sources, and
:func:`interleave` merges one tick's batches by time. Rows are marked
``kernel`` so nobody mistakes them for the server's own socket calls.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from rich.text import Text

from netlens.display import clock
from netlens.textsafe import safe_str
from netlens.trace import TraceEvent
from netlens.trace.text import detail

#: ``record[0]`` of a kernel event in the events panel (server event codes are ints).
KERNEL = "kernel"
#: ``(local address, local port, remote address, remote port)``.
Tuple4 = tuple[str, int, str, int]
KernelRecord = tuple[Any, ...]
#: A record's time (``record[1]``, server and kernel records alike).
_time_of = itemgetter(1)

_STYLES = {
    "state": "bold yellow",
    "retransmit": "bold magenta",
    "retransmit-synack": "bold magenta",
    "reset-sent": "bold red",
    "reset-received": "bold red",
    "cong-state": "magenta",
    "drop": "red",
    "destroy": "dim",
}
_WORDS = {
    "state": "state",
    "retransmit": "retransmission fired",
    "retransmit-synack": "SYN-ACK retransmitted",
    "reset-sent": "reset sent",
    "reset-received": "reset received",
    "cong-state": "congestion state",
    "drop": "packet dropped",
    "destroy": "socket freed",
}


def conn_of(ends: Tuple4, conns: Mapping[Tuple4, int]) -> tuple[int | None, str]:
    """The server connection of a socket with these ends, and which end it is (``srv``, ``cli`` or ``""``)."""
    conn = conns.get(ends)
    if conn is not None:
        return conn, "srv"
    conn = conns.get((ends[2], ends[3], ends[0], ends[1]))
    return conn, "cli" if conn is not None else ""


def kernel_records(events: Sequence[TraceEvent], conns: Mapping[Tuple4, int],
                   ends_of: Callable[[TraceEvent], Tuple4] = lambda event: event.tuple) -> list[KernelRecord]:
    """Events as events-panel records ``(KERNEL, ts, conn, event, side)``: the server connection (or None), which end.

    ``ends_of`` gives a socket's bound 4-tuple (the feed's :meth:`tuple_of`):
    a client's first ``SYN_SENT`` carries port 0, the port is bound later.
    """
    records = []
    for event in events:
        conn, side = conn_of(ends_of(event), conns)
        records.append((KERNEL, event.time, conn, event, side))
    return records


def interleave(server: Sequence[tuple[Any, ...]], kernel: Sequence[KernelRecord]) -> list[tuple[Any, ...]]:
    """One tick's server records and kernel records, merged by time (each list is already in order).

    A kernel record goes after the server records of the same time. The
    kernel's batch is the short one (at most a few hundred a poll, the
    server's thousands under a flood): each kernel record is placed by a
    binary search, and the server's records between them are copied in
    slices, not compared one by one.
    """
    if not kernel:
        return list(server)
    if not server:
        return list(kernel)
    merged: list[tuple[Any, ...]] = []
    taken = 0
    for record in kernel:
        place = bisect.bisect_right(server, record[1], lo=taken, key=_time_of)
        merged += server[taken:place]
        merged.append(record)
        taken = place
    merged += server[taken:]
    return merged


def is_kernel(record: tuple[Any, ...]) -> bool:
    """True for a kernel event's record."""
    return bool(record) and record[0] == KERNEL


def kernel_row(record: KernelRecord) -> Text:
    """One events-panel row: time, connection, a ``kernel`` badge, what happened, where."""
    event: TraceEvent = record[3]
    conn = record[2]
    text = Text(no_wrap=True)
    text.append(clock(event.time) + " ", style="dim")
    text.append(f"#{conn:<4}" if conn else "     ", style="bold")
    text.append(" kernel ", style="bold white on dark_magenta")
    text.append(f" {record[4]:<3}" if len(record) > 4 else "", style="dim")
    label = event.event
    text.append(" " + _WORDS.get(label, label), style=_STYLES.get(label, ""))
    what = detail(event)
    if what:
        text.append(" " + safe_str(what))
    ends = f"{event.src}:{event.sport} → {event.dst}:{event.dport}" if event.src else ""
    if ends:
        text.append("  " + safe_str(ends), style="dim")
    return text


def index_at_time(times: Sequence[float], when: float) -> int:
    """Index of the first entry at or after ``when`` in ascending ``times`` (the last one if none)."""
    return min(bisect.bisect_left(times, when), max(0, len(times) - 1))


def number_at_time(first: int, last: int, time_of: Callable[[int], float], when: float) -> int | None:
    """The packet number in ``[first, last]`` nearest ``when`` (capture times ascend with numbers)."""
    if last < first:
        return None
    low, high = first, last
    while low < high:
        middle = (low + high) // 2
        if time_of(middle) < when:
            low = middle + 1
        else:
            high = middle
    if low > first and abs(time_of(low - 1) - when) <= abs(time_of(low) - when):
        return low - 1
    return low
