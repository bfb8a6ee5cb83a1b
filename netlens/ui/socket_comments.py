"""The server's socket events as packet comments for a saved pcapng (what ``ctrl+s`` passes to the feed).

The events log keeps raw records; a connection's addresses come from its
``accepted`` event, so events of connections accepted before the oldest kept
record (or the listener's own) have no packets to go with and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from netlens.capture.annotate import SocketEvent
from netlens.server.bus import EventRecord, materialize
from netlens.server.events import Accepted, Address
from netlens.ui.kernel_events import is_kernel


def socket_events(records: Iterable[EventRecord]) -> Iterator[SocketEvent]:
    """``(ts_ns, local, remote, text)`` of every server event in ``records`` whose connection is known."""
    ends: dict[int, tuple[Address, Address]] = {}
    for record in records:
        if is_kernel(record):
            continue
        event = materialize(record)
        if isinstance(event, Accepted):
            ends[event.conn] = (event.local, event.peer)
        known = ends.get(event.conn)
        if known is not None:
            yield round(event.ts * 1e9), known[0], known[1], event.describe()
