"""The socket events log: every server event as it happens, optionally only one connection's."""

from __future__ import annotations

from rich.text import Text
from textual.cache import LRUCache

from netlens.display import clock
from netlens.server.bus import EventRecord, materialize, record_size
from netlens.server.events import CloseCause, Closed, SocketEvent
from netlens.ui.kernel_events import index_at_time, interleave, is_kernel, kernel_row
from netlens.ui.widgets.virtual_list import VirtualList

#: Default bytes of records kept (estimated, see record_size); past the budget the
#: oldest are forgotten until FORGET_TO of it is used (the newest always stay).
DEFAULT_BUDGET = 64 * 1024 * 1024
#: Share of the budget kept after forgetting. Freeing records is one pause of the UI
#: thread (~0.13 ms per thousand records, 26 ms for half a 64 MiB log under a flood):
#: an eighth at a time keeps each pause short, for the same work in all.
FORGET_TO = 7 / 8
#: Newest rows a late batch (kernel events come a tick after the server's) may be merged among.
MERGE_TAIL = 2_000

_KIND_STYLES = {
    "listening": "bold green",
    "accepted": "green",
    "mask": "magenta",
    "recv": "cyan",
    "stage": "yellow",
    "queued": "blue",
    "send": "blue",
    "peer-fin": "bright_red",
    "closed": "red",
    "error": "bold red",
    "control": "bold magenta",
    "stopped": "bold red",
}


class EventLog(VirtualList):
    """A virtual list over raw event records; events are built only for rows on screen."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    """

    #: The budget of logs created without one (``netlens serve --event-log`` sets it).
    default_budget = DEFAULT_BUDGET

    def __init__(self, *, id: str | None = None, budget: int | None = None) -> None:
        super().__init__(id=id)
        #: Bytes of records this log may keep, and the estimated bytes it keeps now.
        self.budget = budget or EventLog.default_budget
        self.bytes = 0
        self._records: list[EventRecord] = []
        self._view: list[int] | None = None  # indices into _records when filtered
        self._events: LRUCache[int, SocketEvent] = LRUCache(1024)
        #: Only this connection's events (None: all).
        self.conn_filter: int | None = None
        self.total = 0

    def add(self, records: list[EventRecord], paint: bool = True) -> None:
        """Append newly drained records and redraw if anything changed.

        ``paint`` False keeps them without repainting (the main screen's tick
        under a flood or between keys): the rows on screen stay as they are
        (appending moves none of them) until :meth:`paint` (or a forgetting,
        which renumbers the rows and repaints at once).
        """
        if not records:
            return
        self.total += len(records)
        self.bytes += sum(map(record_size, records))
        start = self._merge_point(records[0][1])
        if start < len(self._records):
            # Kernel events reach the panel a tick after the server's: put each in its place in time.
            records = interleave(self._records[start:], records)
            del self._records[start:]
            self._events.clear()
            self._cache.clear()  # the rows from ``start`` on are other records now
            if self._view is not None:
                self._view = [i for i in self._view if i < start]
        self._records.extend(records)
        if self._view is not None:
            wanted = self.conn_filter
            self._view.extend(i for i in range(start, len(self._records)) if self._records[i][2] == wanted)
        if self.bytes > self.budget:
            self._forget(*self._oldest_over(int(self.budget * FORGET_TO)))
        if paint:
            self.rows_changed()

    def paint(self) -> None:
        """Show the records kept since the last repaint (nothing to do if there are none)."""
        if self.row_count() != self._count:
            self.rows_changed()

    def _merge_point(self, oldest: float) -> int:
        """Where a batch starting at time ``oldest`` goes: after every kept row not newer than it."""
        records, index = self._records, len(self._records)
        floor = max(0, index - MERGE_TAIL)
        while index > floor and records[index - 1][1] > oldest:
            index -= 1
        return index

    def records(self) -> list[EventRecord]:
        """Every kept record (server and kernel events), oldest first, whatever the filter: a copy."""
        return list(self._records)

    def record_at(self, row: int) -> tuple[object, ...]:
        """The raw record on display row ``row``."""
        return self._records[self._view[row] if self._view is not None else row]

    def row_at_time(self, when: float) -> int | None:
        """The first display row at or after ``when`` (the last row if none; None when empty)."""
        rows = self.row_count()
        if not rows:
            return None
        if self._view is not None:
            return index_at_time([self._records[i][1] for i in self._view], when)
        return index_at_time([record[1] for record in self._records], when)

    def _oldest_over(self, keep: int) -> tuple[int, int]:
        """How many of the oldest records to forget so that at most ``keep`` bytes remain, and their bytes."""
        excess = self.bytes - keep
        n = freed = 0
        last = len(self._records) - 1
        for record in self._records:
            if freed >= excess or n == last:
                break
            freed += record_size(record)
            n += 1
        return n, freed

    def _forget(self, n: int, freed: int) -> None:
        self.bytes -= freed
        del self._records[:n]
        self._events.clear()
        if self._view is not None:
            self._view = [i - n for i in self._view if i >= n]
        self.rows_changed(reset=True)

    def set_filter(self, conn: int | None) -> None:
        """Show only connection ``conn``'s events (``None``: every event)."""
        self.conn_filter = conn
        if conn is None:
            self._view = None
        else:
            self._view = [i for i, record in enumerate(self._records) if record[2] == conn]
        self._events.clear()
        self.follow = True
        self.rows_changed(reset=True)

    def clear(self) -> None:
        """Forget every event shown so far."""
        self._records.clear()
        self.bytes = 0
        self._view = [] if self._view is not None else None
        self._events.clear()
        self.rows_changed(reset=True)

    def row_count(self) -> int:
        return len(self._view) if self._view is not None else len(self._records)

    def event_at(self, row: int) -> SocketEvent:
        """The event on display row ``row`` (built once, then cached)."""
        index = self._view[row] if self._view is not None else row
        event = self._events.get(index)
        if event is None:
            event = materialize(self._records[index])
            self._events[index] = event
        return event

    def render_row(self, index: int) -> Text:
        record = self.record_at(index)
        if is_kernel(record):
            return kernel_row(record)
        event = self.event_at(index)
        text = Text(no_wrap=True)
        text.append(clock(event.ts) + " ", style="dim")
        text.append(f"#{event.conn:<4}" if event.conn else "srv  ", style="bold")
        style = _KIND_STYLES.get(event.kind, "")
        if isinstance(event, Closed) and event.by in (CloseCause.RESET, CloseCause.ERROR, CloseCause.TIMEOUT):
            style = "bold red"
        # describe() escapes wire bytes; Text() never parses markup.
        text.append(" " + event.describe(), style=style)
        return text

    def row_width(self) -> int:
        return max(self.size.width, 200)

