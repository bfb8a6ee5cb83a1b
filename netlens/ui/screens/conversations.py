"""The conversations screen: Wireshark's TCP conversation table over everything captured, kept current.

A :class:`~netlens.capture.stats.StatsTracker` follows the packet store on a
thread of its own (small batches, asleep most of the time); the table is
refreshed every second. Enter on a row opens that stream's graphs.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from netlens.capture.ring import PacketRing
from netlens.capture.stats import Conversation, StatsTracker, conversations

BATCH = 500
DUTY = 0.25
COLUMNS = ("stream", "client", "server", "pkts →", "bytes →", "pkts ←", "bytes ←", "start s", "duration s",
           "completeness")


def row_cells(row: Conversation) -> tuple[Text, ...]:
    """The table cells of one conversation (addresses are formatted by netlens, not taken from the wire)."""
    values = (row.stream, row.client, row.server, f"{row.packets_c2s:,}", f"{row.bytes_c2s:,}",
              f"{row.packets_s2c:,}", f"{row.bytes_s2c:,}", f"{row.start:.6f}", f"{row.duration:.6f}",
              row.completeness)
    return tuple(Text(str(value), justify="right" if i in range(3, 9) else "left") for i, value in enumerate(values))


class ConversationsScreen(Screen[int | None]):
    """Every TCP conversation; dismisses with the stream id to graph (or None)."""

    BINDINGS = [Binding("escape,q", "close", "Back"), Binding("enter", "graph", "Graphs")]

    def __init__(self, ring: PacketRing, store: Any, store_lock: AbstractContextManager[Any] | None = None) -> None:
        super().__init__()
        self.tracker = StatsTracker(ring, store)
        #: Guards the tracker; ``store_lock`` (the packet feed's, if it has one) guards the store it reads.
        self._counting = threading.Lock()
        self._store_lock = store_lock or nullcontext()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="netlens-conversations", daemon=True)

    def compose(self) -> ComposeResult:
        yield Static(id="conversations-status")
        yield DataTable(id="conversations", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        self._thread.start()
        self.set_interval(1.0, self.refresh_table)
        self.refresh_table()
        table.focus()

    def on_unmount(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _follow(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            with self._counting, self._store_lock:
                done = self.tracker.update(BATCH)
            spent = time.perf_counter() - started
            self._stop.wait(0.1 if not done else spent * (1 - DUTY) / DUTY)

    def refresh_table(self) -> None:
        """Show the current counts (rows keep their place; new streams are appended)."""
        with self._counting, self._store_lock:
            rows = conversations(self.tracker)
            behind = self.tracker.store.last - self.tracker.last
        table = self.query_one(DataTable)
        with self.app.batch_update():
            for row in rows:
                key = str(row.stream)
                cells = row_cells(row)
                if key in table.rows:
                    for column, cell in zip(table.columns, cells, strict=False):
                        table.update_cell(key, column, cell)
                else:
                    table.add_row(*cells, key=key)
        status = Text(f" {len(rows)} conversations", no_wrap=True)
        if behind > 0:
            status.append(f"  ({behind:,} packets still to count)", style="yellow")
        status.append("   Enter: graphs of the stream  Esc: back", style="dim")
        self.query_one("#conversations-status", Static).update(status, layout=False)

    def action_graph(self) -> None:
        """Leave with the stream under the cursor."""
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.dismiss(int(key) if key is not None else None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table takes the key first)."""
        event.stop()
        self.dismiss(int(event.row_key.value) if event.row_key.value is not None else None)

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)
