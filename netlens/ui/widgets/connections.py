"""The connections table: ss/netstat/lsof/TCPView in one, updated in place.

Rows are keyed by the connection's 4-tuple, so an update removes the rows
that are gone, rewrites only the rows whose cells changed and appends new
rows — inside one ``batch_update()`` — and the cursor stays on the same
connection. A cell counts as changed when its text *or its style* changed
(Rich's ``Text.__eq__`` compares text only), so a row's colour always follows
its state: new rows are green and changed ones yellow for a moment, closed
ones red. The table is a :class:`~netlens.ui.widgets.virtual_table.VirtualTable`:
only rows whose cells changed are rendered again, a cursor move repaints two
lines (Textual's DataTable re-rendered every visible row for either).
The server's events reach a row at once (:meth:`ConnectionsTable.apply_facts`),
the kernel's snapshots once a second (:meth:`ConnectionsTable.apply`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text

from netlens.display import endpoint
from netlens.probe import ConnectionRow, RowStatus, SocketInfo, TrackerUpdate
from netlens.probe.fastbuild import fast_builder
from netlens.server import ConnectionSnapshot
from netlens.textsafe import safe_str
from netlens.ui.conn_rows import (
    Placed,
    StateCell,
    age_cell,
    born,
    compact_size,
    order,
    pair_id,
    state_cell,
    state_group,
)
from netlens.ui.facts import Fact, FactBook
from netlens.ui.fit import clip_words
from netlens.ui.format import wire
from netlens.ui.widgets.virtual_table import VirtualTable

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
End = tuple[str, int, str, int]

_placed = fast_builder(Placed)


def row_key(key: tuple[object, ...]) -> str:
    """The table's row key of a connection 4-tuple key."""
    return "|".join(str(part) for part in key)


def server_key(sock: SocketInfo) -> tuple[str, int, str, int]:
    """(local addr, local port, peer addr, peer port) — how a server snapshot names a socket."""
    return (sock.local_addr, sock.local_port, sock.remote_addr, sock.remote_port)


def peer_key(sock: SocketInfo) -> tuple[str, int, str, int]:
    """How a server snapshot names the *other* end of ``sock``'s connection."""
    return (sock.remote_addr, sock.remote_port, sock.local_addr, sock.local_port)


@dataclass(frozen=True)
class Selection:
    """What the cursor is on: the kernel's record and, for a server socket, the server's id."""

    key: str
    socket: SocketInfo
    status: RowStatus
    conn: int | None


class ConnectionsTable(VirtualTable):
    """One row per TCP socket on the server's port (both ends of loopback connections)."""

    DEFAULT_CSS = """
    ConnectionsTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(COLUMNS, id=id)
        self._signatures: dict[str, tuple[object, ...]] = {}
        self._moved: dict[str, tuple[float, str]] = {}
        self._rows: dict[str, ConnectionRow] = {}
        self._conns: dict[str, int] = {}
        self._states: dict[str, StateCell] = {}
        self._created: dict[str, float] = {}
        self._by_end: dict[tuple[str, int, str, int], str] = {}
        #: Per row, what never changes for its 4-tuple: its end and its peer's as the server names them,
        #: and the pair both ends share (ordering thousands of rows every second asks for them).
        self._ends: dict[str, tuple[End, End, object]] = {}
        self._skeys: dict[tuple[object, ...], str] = {}
        self._facts_since_order = False
        #: What the last update brought: the rows re-render from these when they scroll into view.
        self._server: ServerConns = {}
        self._facts = FactBook()
        self._kernel_ts = 0.0
        self._now = time.time()
        self._listening_since: float | None = None
        self._server_port = 0

    @property
    def selection(self) -> Selection | None:
        """The connection under the cursor, if any."""
        key = self.cursor_key
        row = self._rows.get(key) if key is not None else None
        if key is None or row is None:
            return None
        return Selection(key, row.socket, row.status, self._conns.get(key))

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
        self.move_cursor(self.get_row_index(key))
        return True

    # ------------------------------------------------------------------ updates

    def apply(self, update: TrackerUpdate, server: ServerConns, now: float, facts: FactBook,
              listening_since: float | None = None, server_port: int = 0) -> None:
        """Bring the table in line with one tracker update, the server's view and its facts.

        A row is redrawn only when something it shows changed (a cheap
        signature says so), so an update costs in proportion to what moved;
        rows are re-sorted only when one came, went or changed state.
        """
        self._server, self._facts, self._now = server, facts, now
        self._kernel_ts = update.ts
        self._listening_since, self._server_port = listening_since, server_port
        reorder = bool(update.added or update.removed or update.closed or self._facts_since_order)
        ends, conns, created = self._ends, self._conns, self._created
        with self.app.batch_update(), self.changes():
            self._remove_all([self._skey(key) for key in update.removed])
            new = []
            for row in update.rows:
                skey = self._skey(row.key)
                previous = self._rows.get(skey)
                if previous is None:
                    sock = row.socket
                    mine = server_key(sock)
                    self._by_end[mine] = skey
                    ends[skey] = (mine, peer_key(sock), pair_id(sock))
                    new.append(skey)
                elif previous.socket.state != row.socket.state:
                    reorder = True
                self._rows[skey] = row
                mine, theirs, _ = ends[skey]
                snap = server.get(mine) if row.status is not RowStatus.CLOSED else None
                if snap is not None:
                    conns[skey] = snap.conn
                if skey not in created:
                    # Remembered now, drawn or not: the row keeps its age after the server forgets it.
                    known = snap or server.get(theirs)
                    if known is not None:
                        created[skey] = known.created
            # Only rows on screen get their cells worked out: new ones are built when first drawn, the others
            # catch up when they scroll into view. (The cursor follows its row: VirtualTable keeps it on its key.)
            self._render_rows(self.visible_keys())
            self.reserve_rows(new)
            if reorder:
                self._reorder()
                self._render_rows(self.visible_keys())

    def apply_facts(self, ends: set[tuple[str, int, str, int]], now: float) -> list[str]:
        """The server just published news about these connection ends: redraw their rows on screen at once.

        Returns the keys of the rows with news. (They move to their new place
        at the next kernel snapshot, not under the reader's eyes right now.
        Rows off screen show their news when they come into view: under a
        flood hundreds of rows a second have news, and nobody sees them.)
        """
        keys = [key for end in ends if (key := self._by_end.get(end)) is not None]
        if keys:
            self._now = now
            self._facts_since_order = True
            shown = set(self.visible_keys())
            with self.app.batch_update():
                self._render_rows([key for key in keys if key in shown])
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
        self.remove_rows(gone)
        for skey in gone:
            row = self._rows.pop(skey)
            self._by_end.pop(server_key(row.socket), None)
            self._skeys.pop(row.key, None)
            for table in (self._signatures, self._conns, self._moved, self._states, self._created, self._ends):
                table.pop(skey, None)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Rows that scroll into view show current values, not the ones from when they were last on screen."""
        super().watch_scroll_y(old_value, new_value)
        if int(old_value) != int(new_value) and self._rows:
            self._render_rows(self.visible_keys())

    def late_cells(self, key: str) -> tuple[Text, ...]:
        """A new row's cells, built when it is first drawn or read (from the latest update's data)."""
        self._signatures.pop(key, None)  # never drawn: nothing to compare with
        self._render_row(key)
        return self._cells[key]

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
        age = age_cell(sock, row.first_seen, created, now, gone=closed)
        signature = (state, sock.recv_q, sock.send_q, sock.owners, row.last_change, age,
                     snap and (snap.conn, snap.mask, snap.stage, snap.paused))
        if self._signatures.get(skey) == signature:
            return
        self._signatures[skey] = signature
        # Re-rendered only if a cell looks different; a value wider than its column (17 KiB -> 6.2 MiB)
        # widens it instead of being cut.
        self.put_row(skey, self._row_cells(skey, row, snap, state, age))

    def _reorder(self) -> None:
        """Sort the rows into display order if it changed (see :func:`netlens.ui.conn_rows.order`)."""
        self._facts_since_order = False
        placed = []
        fact, kernel_ts, server, ends, known, now = (self._facts.fact, self._kernel_ts, self._server, self._ends,
                                                     self._created, self._now)
        for skey, row in self._rows.items():
            sock = row.socket
            mine, theirs, pair = ends[skey]
            snap = server.get(mine) or server.get(theirs)
            created = snap.created if snap is not None else known.get(skey)
            group = state_group(row, fact(mine, row.first_seen), kernel_ts)
            placed.append(_placed(skey, sock, group, born(sock, row.first_seen, created, now), pair))
        self.place_rows(order(placed, self._server_port))

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

    def _row_cells(self, skey: str, row: ConnectionRow, snap: ConnectionSnapshot | None, state: StateCell,
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
