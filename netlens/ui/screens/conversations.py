"""The conversations screen: Wireshark's TCP conversation table over everything captured, kept current.

The packet feed counts the conversations where the packets are (a
:class:`~netlens.capture.stats.StatsTracker` in the app for a recording, in
the capture's helper process for a live capture): a thread of the screen asks
it to count in small batches (asleep most of the time) and fetches the rows
once a second, which the table shows. Enter on a row opens that stream's
graphs.
"""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from netlens.capture.feed import PacketFeed
from netlens.capture.stats import Conversation
from netlens.capture.stats.views import ConversationTable

BATCH = 500
DUTY = 0.25
#: Seconds between two fetches of the rows.
REFRESH_EVERY = 1.0
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

    def __init__(self, feed: PacketFeed) -> None:
        super().__init__()
        self.feed = feed
        #: The newest rows fetched by the thread (None before the first), and those on screen.
        self.table: ConversationTable | None = None
        self._shown: ConversationTable | None = None
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
        self.set_interval(REFRESH_EVERY / 4, self.refresh_table)
        self.refresh_table()
        table.focus()

    def on_unmount(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.feed.release_statistics()

    def _follow(self) -> None:
        """Have the feed count new packets (at most ``DUTY`` of the time) and fetch the rows once a second."""
        fetched = 0.0
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                done = self.feed.count_conversations(BATCH)
                if started - fetched >= REFRESH_EVERY or (not done and self.table is None):
                    self.table, fetched = self.feed.conversations(), started
            except RuntimeError:  # the capture's helper failed on it: the table stays as it was, no traceback
                done = 0
            spent = time.perf_counter() - started
            self._stop.wait(0.1 if not done else spent * (1 - DUTY) / DUTY)

    def refresh_table(self) -> None:
        """Show the newest rows fetched (rows keep their place; new streams are appended)."""
        fetched = self.table
        if fetched is None or fetched is self._shown:
            return
        self._shown = fetched
        rows, behind = fetched.rows, fetched.behind
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
