"""The connections table: ss/netstat/lsof/TCPView in one, updated in place.

Rows are keyed by the connection's 4-tuple, so an update removes the rows
that are gone, rewrites only the cells that changed and appends new rows —
inside one ``batch_update()`` — and the cursor stays on the same connection.
A cell counts as changed when its text *or its style* changed (Rich's
``Text.__eq__`` compares text only), so a row's colour always follows its
state: new rows are green and changed ones yellow for a moment, closed ones red.
The server's events reach a row at once (:meth:`ConnectionsTable.apply_facts`),
the kernel's snapshots once a second (:meth:`ConnectionsTable.apply`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

from netlens.display import endpoint
from netlens.probe import ConnectionRow, RowStatus, SocketInfo, TrackerUpdate
from netlens.server import ConnectionSnapshot
from netlens.textsafe import safe_str
from netlens.ui.conn_rows import Placed, StateCell, age_cell, born, compact_size, order, state_cell, state_group
from netlens.ui.facts import Fact, FactBook
from netlens.ui.fit import clip_words
from netlens.ui.format import wire

#: Seconds a new/changed row keeps its colour.
HIGHLIGHT_HOLD = 2.0
#: The Server view column's widest text (cut between words): with it every column fits 140 columns.
SERVER_VIEW_WIDTH = 32

COLUMNS = (
    ("state", "State"),
    ("local", "Local"),
    ("remote", "Remote"),
    ("recvq", "Recv-Q"),
    ("sendq", "Send-Q"),
    ("server", "Server view"),
    ("process", "Process"),
    ("age", "Age"),
    ("bytes", "Sent/Rcvd"),
)

ServerConns = dict[tuple[str, int, str, int], ConnectionSnapshot]


def row_key(key: tuple[object, ...]) -> str:
    """The DataTable key of a connection 4-tuple key."""
    return "|".join(str(part) for part in key)


def server_key(sock: SocketInfo) -> tuple[str, int, str, int]:
    """(local addr, local port, peer addr, peer port) — how a server snapshot names a socket."""
    return (sock.local_addr, sock.local_port, sock.remote_addr, sock.remote_port)


def peer_key(sock: SocketInfo) -> tuple[str, int, str, int]:
    """How a server snapshot names the *other* end of ``sock``'s connection."""
    return (sock.remote_addr, sock.remote_port, sock.local_addr, sock.local_port)


def same_cell(before: Text, after: Text) -> bool:
    """True when two cells look the same: text, style and spans (``Text.__eq__`` ignores style)."""
    return before.plain == after.plain and before.style == after.style and before.spans == after.spans


@dataclass(frozen=True)
class Selection:
    """What the cursor is on: the kernel's record and, for a server socket, the server's id."""

    key: str
    socket: SocketInfo
    status: RowStatus
    conn: int | None


class ConnectionsTable(DataTable[Text]):
    """One row per TCP socket on the server's port (both ends of loopback connections)."""

    DEFAULT_CSS = """
    ConnectionsTable { height: 1fr; }
    """

    BINDINGS = [
        Binding("home", "first_row", "First row", show=False),
        Binding("end", "last_row", "Last row", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._signatures: dict[str, tuple[object, ...]] = {}
        self._moved: dict[str, tuple[float, str]] = {}
        self._rows: dict[str, ConnectionRow] = {}
        self._conns: dict[str, int] = {}
        self._states: dict[str, StateCell] = {}
        self._created: dict[str, float] = {}
        self._by_end: dict[tuple[str, int, str, int], str] = {}
        #: Row keys in the order the table shows them.
        self._order: list[str] = []
        self._skeys: dict[tuple[object, ...], str] = {}
        self._facts_since_order = False
        #: What the last update brought: the rows re-render from these when they scroll into view.
        self._server: ServerConns = {}
        self._facts = FactBook()
        self._kernel_ts = 0.0
        self._now = time.time()
        self._listening_since: float | None = None
        self._server_port = 0

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def selection(self) -> Selection | None:
        """The connection under the cursor, if any."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # the cursor is between updates
            return None
        row = self._rows.get(key or "")
        if row is None:
            return None
        return Selection(key or "", row.socket, row.status, self._conns.get(key or ""))

    def state_of(self, key: str) -> StateCell | None:
        """What the State column of row ``key`` says now (and where that came from)."""
        return self._states.get(key)

    def row(self, key: str) -> ConnectionRow | None:
        """The tracker's row ``key`` (the kernel's latest record of it), if shown."""
        return self._rows.get(key)

    def key_of_end(self, end: tuple[str, int, str, int]) -> str | None:
        """The row key of the socket with these (local addr, local port, remote addr, remote port), if shown."""
        return self._by_end.get(end)

    def conn_key(self, conn: int) -> str | None:
        """The row key of server connection ``conn``, if shown."""
        for key, cid in self._conns.items():
            if cid == conn:
                return key
        return None

    def select_key(self, key: str) -> bool:
        """Move the cursor to row ``key``; False if it is not shown."""
        if key not in self._rows:
            return False
        self.move_cursor(row=self.get_row_index(key), animate=False)
        return True

    def action_first_row(self) -> None:
        """Home: the first row (the listener)."""
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        """End: the last row."""
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    # ------------------------------------------------------------------ updates

    def apply(self, update: TrackerUpdate, server: ServerConns, now: float, facts: FactBook,
              listening_since: float | None = None, server_port: int = 0) -> None:
        """Bring the table in line with one tracker update, the server's view and its facts.

        A row is redrawn only when something it shows changed (a cheap
        signature says so), so an update costs in proportion to what moved;
        rows are re-sorted only when one came, went or changed state.
        """
        selected = self.selection
        self._server, self._facts, self._now = server, facts, now
        self._kernel_ts = update.ts
        self._listening_since, self._server_port = listening_since, server_port
        reorder = bool(update.added or update.removed or update.closed or self._facts_since_order)
        with self.app.batch_update():
            self._remove_all([self._skey(key) for key in update.removed])
            if update.removed:
                self._order = [key for key in self._order if key in self._rows]
            for row in update.rows:
                skey = self._skey(row.key)
                previous = self._rows.get(skey)
                if previous is None:
                    self._by_end[server_key(row.socket)] = skey
                elif previous.socket.state != row.socket.state:
                    reorder = True
                self._rows[skey] = row
                snap = server.get(server_key(row.socket)) if row.status is not RowStatus.CLOSED else None
                if snap is not None:
                    self._conns[skey] = snap.conn
            # Only rows on screen (and new ones) are drawn: any cell update makes DataTable re-render
            # every visible row (~0.1 ms a row). The others catch up when they scroll into view.
            self._render_rows([*self._visible_keys(), *(k for k in self._rows if k not in self._cells)])
            if reorder:
                self._reorder()
            if selected is not None and selected.key in self._rows:
                index = self.get_row_index(selected.key)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False)

    def apply_facts(self, ends: set[tuple[str, int, str, int]], now: float) -> list[str]:
        """The server just published news about these connection ends: redraw their rows at once.

        Returns the keys of the rows redrawn. (They move to their new place
        at the next kernel snapshot, not under the reader's eyes right now.)
        """
        keys = [key for end in ends if (key := self._by_end.get(end)) is not None]
        if keys:
            self._now = now
            self._facts_since_order = True
            with self.app.batch_update():
                self._render_rows(keys)
        return keys

    def _skey(self, key: tuple[object, ...]) -> str:
        skey = self._skeys.get(key)
        if skey is None:
            skey = self._skeys[key] = row_key(key)
        return skey

    def _remove_all(self, skeys: list[str]) -> None:
        """Remove these rows (those shown)."""
        gone = [skey for skey in skeys if skey in self._rows]
        if not gone:
            return
        self._remove_rows(gone)
        for skey in gone:
            row = self._rows.pop(skey)
            self._by_end.pop(server_key(row.socket), None)
            self._skeys.pop(row.key, None)
            for table in (self._cells, self._signatures, self._conns, self._moved, self._states, self._created):
                table.pop(skey, None)

    def _remove_rows(self, skeys: list[str]) -> None:
        """``DataTable.remove_row`` for many rows at once: one pass over the row index, not one per row.

        Under a flood a snapshot removes hundreds of rows of a table of
        hundreds, and each ``remove_row`` rebuilds the whole row index: 60 ms
        of the UI thread per snapshot, in the way of key presses. This does
        what ``remove_row`` does (pinned Textual 8.2.8) with one rebuild.
        """
        if len(skeys) == 1:
            self.remove_row(skeys[0])
            return
        gone = {RowKey(skey) for skey in skeys}
        locations = self._row_locations
        kept = sorted(((locations.get(key) or 0, key) for key in locations if key not in gone),
                      key=lambda pair: pair[0])
        self._require_update_dimensions = True
        self.check_idle()
        self._row_locations = TwoWayDict({key: index for index, (_, key) in enumerate(kept)})
        for key in gone:
            for column_key in self._data.get(key, {}):
                self._updated_cells.discard(CellKey(key, column_key))
            del self.rows[key]
            del self._data[key]
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self.refresh(layout=True)

    def _visible_keys(self) -> list[str]:
        top = int(self.scroll_y)
        keys = []
        for index in range(top, min(self.row_count, top + self.size.height)):
            key = self.coordinate_to_cell_key(Coordinate(index, 0)).row_key.value
            if key is not None:
                keys.append(key)
        return keys

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Rows that scroll into view show current values, not the ones from when they were last on screen."""
        super().watch_scroll_y(old_value, new_value)
        if int(old_value) != int(new_value) and self._rows:
            self._render_rows(self._visible_keys())

    def _render_rows(self, keys: Iterable[str]) -> None:
        for skey in keys:
            if skey in self._rows:
                self._render_row(skey)

    def _state(self, row: ConnectionRow) -> StateCell:
        fact: Fact | None = self._facts.fact(server_key(row.socket), row.first_seen)
        return state_cell(row, row.highlight(self._now, HIGHLIGHT_HOLD), fact, self._kernel_ts)

    def _render_row(self, skey: str) -> None:
        row = self._rows[skey]
        sock = row.socket
        now = self._now
        closed = row.status is RowStatus.CLOSED
        state = self._states[skey] = self._state(row)
        # The server's view shows while its connection is open (not once its close or reset is known).
        over = closed or state.ended is not None
        snap = None if over else self._server.get(server_key(sock))
        # The client's end of a server connection is as old as the server's end.
        peer = self._server.get(peer_key(sock)) if snap is None else None
        created = snap.created if snap is not None else peer.created if peer is not None else None
        if created is None and sock.state == "LISTEN":
            created = self._listening_since
        # Remembered: a connection keeps its known age after the server forgot it.
        created = self._created.setdefault(skey, created) if created is not None else self._created.get(skey)
        age = age_cell(sock, row.first_seen, created, now)
        signature = (state, sock.recv_q, sock.send_q, sock.owners, row.last_change, age,
                     snap and (snap.conn, snap.mask, snap.stage, snap.paused))
        if self._signatures.get(skey) == signature:
            return
        self._signatures[skey] = signature
        cells = self._render_cells(skey, row, snap, state, age)
        old = self._cells.get(skey)
        if old is None:
            self.add_row(*cells, key=skey)
            self._order.append(skey)
        else:
            for (column, _), before, after in zip(COLUMNS, old, cells, strict=False):
                if not same_cell(before, after):
                    # A value wider than its column (17 KiB -> 6.2 MiB) widens it instead of being cut.
                    wider = after.cell_len > self.columns[ColumnKey(column)].content_width
                    self.update_cell(skey, column, after, update_width=wider)
        self._cells[skey] = cells

    def _reorder(self) -> None:
        """Sort the rows into display order if it changed (see :func:`netlens.ui.conn_rows.order`)."""
        self._facts_since_order = False
        placed = []
        facts, kernel_ts = self._facts, self._kernel_ts
        for skey, row in self._rows.items():
            sock = row.socket
            snap = self._server.get(server_key(sock)) or self._server.get(peer_key(sock))
            created = snap.created if snap is not None else self._created.get(skey)
            group = state_group(row, facts.fact(server_key(sock), row.first_seen), kernel_ts)
            placed.append(Placed(skey, sock, group, born(sock, row.first_seen, created, self._now)))
        wanted = order(placed, self._server_port)
        if wanted == self._order:
            return
        self._order = wanted
        self._place_rows(wanted)

    def _place_rows(self, wanted: list[str]) -> None:
        """Show the rows in the order ``wanted`` (row keys): what ``DataTable.sort`` does, without a sort.

        The order is known already; sorting by a key made of every row's
        cells cost more than working the order out (pinned Textual 8.2.8).
        """
        keys = {key.value: key for key in self._data}
        placed = [keys[skey] for skey in wanted if skey in keys]
        if len(placed) < len(keys):  # rows the order does not know keep their order, after the others
            known = set(placed)
            placed += sorted((key for key in keys.values() if key not in known),
                             key=lambda key: self._row_locations.get(key) or 0)
        self._row_locations = TwoWayDict({key: index for index, key in enumerate(placed)})
        self._update_count += 1
        self.refresh()

    def _bytes_moved(self, skey: str, row: ConnectionRow) -> str:
        # Decoding TCP_INFO costs ~12 µs: only again when the tracker saw the counters move.
        cached = self._moved.get(skey)
        if cached is not None and cached[0] == row.last_change:
            return cached[1]
        sock = row.socket
        info = sock.tcp_info
        if info is not None and info.bytes_sent is not None and sock.state != "LISTEN":
            moved = f"{compact_size(info.bytes_sent)}/{compact_size(info.bytes_received)}"
        else:
            moved = "-"
        self._moved[skey] = (row.last_change, moved)
        return moved

    def _render_cells(self, skey: str, row: ConnectionRow, snap: ConnectionSnapshot | None, state: StateCell,
                      age: str) -> tuple[Text, ...]:
        sock = row.socket
        tint = state.tint
        if snap is not None:
            # Paused reading means no READ interest: "paused" says more than the mask's "-".
            mask = "paused" if snap.paused and snap.mask_name == "-" else snap.mask_name + (
                " paused" if snap.paused else "")
            server = clip_words(safe_str(f"#{snap.conn} {mask} {snap.stage}"), SERVER_VIEW_WIDTH)
        elif state.ended is not None and sock.local_port == self._server_port:
            server = f"#{state.ended} closed"
        elif sock.state == "LISTEN":
            server = "listening"
        else:
            server = ""
        process = f"{sock.process}/{sock.pid}" if sock.pid is not None else "-"
        recv_q = "-" if sock.recv_q is None else str(sock.recv_q)
        send_q = "-" if sock.send_q is None else str(sock.send_q)
        live = sock.state != "LISTEN" and row.status is not RowStatus.CLOSED
        return (
            Text(state.text, style=state.style),
            Text(endpoint(sock.local_addr, sock.local_port), style=tint),
            Text(endpoint(sock.remote_addr, sock.remote_port) if sock.state != "LISTEN" else "*", style=tint),
            Text(recv_q, style="bold yellow" if live and (sock.recv_q or 0) > 0 else tint, justify="right"),
            Text(send_q, style="bold yellow" if live and (sock.send_q or 0) > 0 else tint, justify="right"),
            Text(server, style=tint),
            wire(process, 24, style=tint),
            Text(age, style=tint, justify="right"),
            Text(self._bytes_moved(skey, row), style=tint, justify="right"),
        )
