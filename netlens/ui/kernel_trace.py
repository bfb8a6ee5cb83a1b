"""The main screen's side of kernel tracing: start the feed off the UI thread, drain it on the tick, answer queries.

The screen owns one :class:`KernelTraceView`; the feed (``netlens.ui.trace_feed``)
does the work and knows nothing of textual. Starting a live trace creates a
tracefs instance (tens of milliseconds), so it runs in a thread worker; until
it is up, and forever without root or tracefs, the parts say why there is
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rich.text import Text
from textual.app import App

from netlens.server.events import EVENT_CODES, Accepted
from netlens.trace.timeline import SocketLike
from netlens.ui.kernel_events import KernelRecord, Tuple4, kernel_records, number_at_time
from netlens.ui.kernel_panel import signature, trace_sections
from netlens.ui.tcp_states import PacketLike
from netlens.ui.trace_feed import KernelTraceFeed

#: Server connections remembered for labelling kernel events (the newest).
MAX_CONNS = 20_000
ACCEPTED = EVENT_CODES[Accepted]
#: Packets of a connection searched for the one that caused each transition (the newest).
MAX_TIMELINE_PACKETS = 4000


class KernelTraceView:
    """Kernel tracing as the main screen uses it (``feed`` None: tracing is not part of this app)."""

    def __init__(self, feed: KernelTraceFeed | None) -> None:
        self.feed = feed
        self.started = False
        #: Server connection ids by (local, lport, peer, pport), learned from "accepted" events: a
        #: connection may be gone from the server's snapshots before its kernel events are drained.
        self._conns: dict[Tuple4, int] = {}

    def start(self, app: App[Any], live: bool) -> None:
        """Start the feed: in a thread worker when live, at once for a recording."""
        feed = self.feed
        if feed is None or self.started:
            return
        self.started = True
        if live:
            app.run_worker(feed.start, thread=True, name="kernel trace", group="kernel-trace", exit_on_error=False)
        else:
            feed.start()

    def drain(self, server_records: Sequence[tuple[Any, ...]], poll: bool = True) -> list[KernelRecord]:
        """New kernel events as events-panel records (folded into the timelines too).

        ``server_records``: the socket events drained in the same tick, whose
        ``accepted`` records say which server connection each 4-tuple is.
        """
        if self.feed is None:
            return []
        conns = self._conns
        for record in server_records:
            if record[0] == ACCEPTED:
                peer, local = record[3], record[4]
                conns[(local[0], local[1], peer[0], peer[1])] = record[2]
        while len(conns) > MAX_CONNS:
            del conns[next(iter(conns))]  # the oldest
        if not poll:
            return []  # a key was just pressed: its frame first, the kernel's events next tick
        return kernel_records(self.feed.poll(), conns, self.feed.tuple_of)

    def fold(self, sockets: Sequence[SocketLike], ts: float) -> None:
        """A sock_diag snapshot of the port: TIME_WAIT and cookies for the timelines."""
        if self.feed is not None:
            self.feed.fold_snapshot(sockets, ts)

    def sections(self, sock: SocketLike, packets: Sequence[PacketLike], now: float, width: int) -> list[Text]:
        """The inspector's parts for ``sock`` (empty when tracing is not part of this app)."""
        return trace_sections(self.feed, sock, packets, now, spark_width=max(8, min(48, width - 40)))

    def signature(self, sock: SocketLike | None) -> object:
        """Changes when :meth:`sections` would show something new for ``sock``."""
        return signature(self.feed, sock)

    def status(self) -> Text:
        """The status line's few words (empty without a feed)."""
        if self.feed is None:
            return Text()
        words = self.feed.status()
        return Text(words, style="yellow" if self.feed.unavailable else "")

    def stop(self) -> None:
        """Stop the trace and remove its instance."""
        if self.feed is not None:
            self.feed.stop()


class PacketSource(Protocol):
    """What the jumps and the timeline read of the packets (``netlens.capture.feed.PacketFeed`` has it)."""

    def status(self) -> Any: ...
    def summary(self, no: int) -> Any: ...
    def rows_at(self, numbers: Sequence[int]) -> Sequence[Any]: ...
    def stream_packets(self, stream_id: int) -> Sequence[int]: ...


def connection_packets(feed: PacketSource | None, stream_id: int | None, limit: int = MAX_TIMELINE_PACKETS
                       ) -> list[PacketLike]:
    """The newest ``limit`` captured packets of one stream, for the timeline's "on packet #N"."""
    if feed is None or stream_id is None:
        return []
    rows = feed.rows_at(feed.stream_packets(stream_id)[-limit:])
    return [row for row in rows if row is not None]  # None: evicted from the ring meanwhile


def packet_near(feed: PacketSource | None, when: float) -> int | None:
    """The stored packet captured nearest ``when`` (None when nothing is stored)."""
    if feed is None:
        return None
    status = feed.status()
    try:
        return number_at_time(int(status.first), int(status.last), lambda no: float(feed.summary(no).time), when)
    except (KeyError, IndexError):
        return None
