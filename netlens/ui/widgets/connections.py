"""The connections table: ss/netstat/lsof/TCPView in one, updated in place.

Rows are keyed by the connection's 4-tuple, so an update removes the rows
that are gone, rewrites only the cells that changed and appends new rows —
inside one ``batch_update()`` — and the cursor stays on the same connection.
New rows are green, changed ones yellow, closed ones red until they linger out.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from netlens.display import endpoint
from netlens.probe import ConnectionRow, RowStatus, SocketInfo, TrackerUpdate
from netlens.server import ConnectionSnapshot
from netlens.ui.format import duration, size, wire

#: Seconds a new/changed row keeps its colour.
HIGHLIGHT_HOLD = 2.0

COLUMNS = (
    ("state", "State"),
    ("local", "Local"),
    ("remote", "Remote"),
    ("recvq", "Recv-Q"),
    ("sendq", "Send-Q"),
    ("server", "Server view"),
    ("process", "Process"),
    ("age", "Age"),
    ("bytes", "Sent/Recv"),
)

_STATUS_STYLE = {
    RowStatus.NEW: "bold green",
    RowStatus.CHANGED: "bold yellow",
    RowStatus.CLOSED: "red strike",
    RowStatus.UNCHANGED: "",
}
_STATE_STYLE = {
    "LISTEN": "bold cyan",
    "ESTABLISHED": "green",
    "TIME_WAIT": "magenta",
    "CLOSE_WAIT": "yellow",
    "FIN_WAIT1": "yellow",
    "FIN_WAIT2": "yellow",
    "LAST_ACK": "yellow",
    "CLOSING": "yellow",
    "SYN_SENT": "blue",
    "SYN_RECV": "blue",
}


def row_key(key: tuple[object, ...]) -> str:
    """The DataTable key of a connection 4-tuple key."""
    return "|".join(str(part) for part in key)


def server_key(sock: SocketInfo) -> tuple[str, int, str, int]:
    """(local addr, local port, peer addr, peer port) — how a server snapshot names a socket."""
    return (sock.local_addr, sock.local_port, sock.remote_addr, sock.remote_port)


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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._signatures: dict[str, tuple[object, ...]] = {}
        self._moved: dict[str, tuple[float, str]] = {}
        self._rows: dict[str, ConnectionRow] = {}
        self._conns: dict[str, int] = {}

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

    def apply(self, update: TrackerUpdate, server: dict[tuple[str, int, str, int], ConnectionSnapshot],
              now: float) -> None:
        """Bring the table in line with one tracker update and the server's view.

        A row is redrawn only when something it shows changed (a cheap
        signature says so), so an update costs in proportion to what moved.
        """
        selected = self.selection
        # Only rows on screen are redrawn: any cell update makes DataTable re-render every
        # visible row, and an update costs ~0.1 ms a row, so 400 rows would take a frame's
        # worth of time each second. Off-screen rows catch up on the first update after
        # they scroll into view (within a second).
        top = int(self.scroll_y)
        bottom = top + self.size.height
        with self.app.batch_update():
            for key in update.removed:
                skey = row_key(key)
                if skey in self._rows:
                    self.remove_row(skey)
                    del self._rows[skey], self._cells[skey], self._signatures[skey]
                    self._conns.pop(skey, None)
                    self._moved.pop(skey, None)
            for row in update.rows:
                skey = row_key(row.key)
                self._rows[skey] = row
                sock = row.socket
                snap = server.get(server_key(sock)) if row.status is not RowStatus.CLOSED else None
                if snap is not None:
                    self._conns[skey] = snap.conn
                previous = self._signatures.get(skey)
                if previous is not None and not top <= self.get_row_index(skey) < bottom:
                    continue
                status = row.highlight(now, HIGHLIGHT_HOLD)
                age = duration(now - (snap.created if snap is not None else row.first_seen))
                signature = (status, sock.state, sock.recv_q, sock.send_q, sock.owners, row.last_change, age,
                             snap and (snap.conn, snap.mask, snap.stage, snap.paused))
                if previous == signature:
                    continue
                self._signatures[skey] = signature
                cells = self._render_cells(skey, row, snap, status, age)
                old = self._cells.get(skey)
                if old is None:
                    self.add_row(*cells, key=skey)
                else:
                    for (column, _), before, after in zip(COLUMNS, old, cells, strict=False):
                        if before != after:
                            self.update_cell(skey, column, after)
                self._cells[skey] = cells
            if selected is not None and selected.key in self._rows:
                index = self.get_row_index(selected.key)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False)

    def _bytes_moved(self, skey: str, row: ConnectionRow) -> str:
        # Decoding TCP_INFO costs ~12 µs: only again when the tracker saw the counters move.
        cached = self._moved.get(skey)
        if cached is not None and cached[0] == row.last_change:
            return cached[1]
        sock = row.socket
        info = sock.tcp_info
        if info is not None and info.bytes_sent is not None and sock.state != "LISTEN":
            moved = f"{size(info.bytes_sent)}/{size(info.bytes_received)}"
        else:
            moved = "-"
        self._moved[skey] = (row.last_change, moved)
        return moved

    def _render_cells(self, skey: str, row: ConnectionRow, snap: ConnectionSnapshot | None, status: RowStatus,
                age: str) -> tuple[Text, ...]:
        sock = row.socket
        tint = _STATUS_STYLE[status]
        if snap is not None:
            server = f"#{snap.conn} {snap.mask_name} {snap.stage}" + (" (paused)" if snap.paused else "")
        elif sock.state == "LISTEN":
            server = "listening"
        else:
            server = ""
        process = f"{sock.process}/{sock.pid}" if sock.pid is not None else "-"
        recv_q = "-" if sock.recv_q is None else str(sock.recv_q)
        send_q = "-" if sock.send_q is None else str(sock.send_q)
        queue_style = "bold yellow" if (sock.recv_q or 0) > 0 and sock.state != "LISTEN" else ""
        return (
            Text(sock.state, style=tint or _STATE_STYLE.get(sock.state, "")),
            Text(endpoint(sock.local_addr, sock.local_port), style=tint),
            Text(endpoint(sock.remote_addr, sock.remote_port) if sock.state != "LISTEN" else "*", style=tint),
            Text(recv_q, style=queue_style or tint, justify="right"),
            Text(send_q, style=("bold yellow" if (sock.send_q or 0) > 0 and sock.state != "LISTEN" else tint),
                 justify="right"),
            wire(server, 60, style=tint),
            wire(process, 24, style=tint),
            Text(age, style=tint, justify="right"),
            Text(self._bytes_moved(skey, row), style=tint, justify="right"),
        )
