"""The connections table on real loopback sockets: what it renders, where the cursor stays, how rows go.

The kernel's snapshots come from the real probe (sock_diag) and the real
tracker, as in the app; the table is the app's own widget in a headless app.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.strip import Strip
from waiting import until

from netlens.probe import ConnectionTracker, Prober, RowStatus
from netlens.ui.facts import FactBook
from netlens.ui.widgets.connections import ConnectionsTable

LINGER = 0.5


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ConnectionsTable(id="connections")


class Loopback:
    """A listener on 127.0.0.1 and the connections made to it (both ends kept, nothing read)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.prober = Prober()
        self.tracker = ConnectionTracker(linger=LINGER)

    def connect(self) -> tuple[socket.socket, socket.socket]:
        client = socket.create_connection(("127.0.0.1", self.port))
        server, _ = self.listener.accept()
        self.pairs.append((client, server))
        return client, server

    def reset(self, pair: tuple[socket.socket, socket.socket]) -> None:
        """Close both ends with a RST: the kernel forgets both at once (no TIME_WAIT)."""
        for sock in pair:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        self.pairs.remove(pair)

    def apply(self, table: ConnectionsTable, now: float | None = None) -> None:
        update = self.tracker.update(self.prober.snapshot(self.port))
        table.apply(update, {}, update.ts if now is None else now, FactBook(), None, self.port)

    def close(self) -> None:
        for pair in list(self.pairs):
            self.reset(pair)
        self.listener.close()


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    net = Loopback()
    try:
        yield net
    finally:
        net.close()


def key_of(table: ConnectionsTable, sock: socket.socket) -> str | None:
    """The row key of ``sock``'s end (its local and remote ports)."""
    here, there = sock.getsockname()[1], sock.getpeername()[1]
    return table.key_of_end(("127.0.0.1", here, "127.0.0.1", there))


@contextmanager
def rendered_rows(table: ConnectionsTable) -> Iterator[list[tuple[str, str]]]:
    """(local, remote) of every row the table renders while inside."""
    rows: list[tuple[str, str]] = []
    render_cells = table._render_cells

    def counting(cells: tuple[Text, ...], *args: object) -> Strip:
        rows.append((cells[1].plain, cells[2].plain))
        return render_cells(cells, *args)  # type: ignore[arg-type]

    table._render_cells = counting  # type: ignore[method-assign]
    try:
        yield rows
    finally:
        del table._render_cells


async def test_the_cursor_keeps_its_connection_while_others_come_and_go(loopback: Loopback) -> None:
    app = TableApp()
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(ConnectionsTable)
        _, mine = loopback.connect()
        loopback.apply(table)
        key = key_of(table, mine)
        assert key is not None and table.select_key(key)
        others = [loopback.connect() for _ in range(3)]
        loopback.apply(table)
        # Newer connections sort first: the cursor's row moved down, the cursor with it.
        assert table.cursor_key == key and table.get_row_index(key) > 1
        gone = [key_of(table, end) for end in others[1]]
        assert all(g is not None for g in gone)
        loopback.reset(others[1])
        loopback.apply(table)
        assert all(table.row(g or "").status is RowStatus.CLOSED for g in gone)  # type: ignore[union-attr]
        assert table.cursor_key == key
        selection = table.selection
        assert selection is not None and selection.socket.local_port == mine.getsockname()[1]
        await pilot.pause()
        time.sleep(LINGER + 0.05)
        loopback.apply(table)
        assert table.cursor_key == key and all(g not in table.ordered_keys for g in gone)
        await pilot.pause()
        line = table.render_line(table.cursor_row - int(table.scroll_y) + table.header_height).text
        assert str(mine.getsockname()[1]) in line and str(mine.getpeername()[1]) in line


async def test_a_closed_row_turns_red_and_goes(loopback: Loopback) -> None:
    app = TableApp()
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(ConnectionsTable)
        pair = loopback.connect()
        loopback.apply(table)
        client_port = pair[0].getsockname()[1]
        key = key_of(table, pair[0])
        assert key is not None
        loopback.reset(pair)
        loopback.apply(table)
        row = table.row(key)
        assert row is not None and row.status is RowStatus.CLOSED
        await pilot.pause()
        strip = table.render_line(table.get_row_index(key) - int(table.scroll_y) + table.header_height)
        closed = [seg for seg in strip if seg.text.strip() == "CLOSED"]
        assert closed and all(seg.style is not None and seg.style.color is not None
                              and seg.style.color.name == "red" and seg.style.strike for seg in closed)
        assert any(str(client_port) in seg.text and seg.style is not None and seg.style.strike for seg in strip)
        time.sleep(LINGER + 0.05)
        loopback.apply(table)
        await pilot.pause()
        assert key not in table.ordered_keys and table.row(key) is None
        assert all(str(client_port) not in table.render_line(y).text for y in range(table.size.height))


async def test_data_on_one_connection_renders_only_its_rows(loopback: Loopback) -> None:
    app = TableApp()
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(ConnectionsTable)
        pairs = [loopback.connect() for _ in range(4)]
        now = time.time()  # one clock for both updates: ages and highlights stay as they were
        loopback.apply(table, now)
        await pilot.pause()
        assert table.row_count == 1 + 2 * len(pairs)
        client, server = pairs[2]
        with rendered_rows(table) as rows:
            client.sendall(b"x" * 1000)  # nobody reads it: the server end's Recv-Q, the client's counters
            mine = (loopback.port, client.getsockname()[1])
            await until(pilot, lambda: any(s.recv_q == 1000 for s in loopback.prober.snapshot(loopback.port).sockets
                                           if (s.local_port, s.remote_port) == mine))
            loopback.apply(table, now)
            await pilot.pause()
        ends = {f"127.0.0.1:{client.getsockname()[1]}", f"127.0.0.1:{loopback.port}"}
        assert rows and all(set(row) == ends for row in rows), rows
        assert len(rows) == 2
        assert table.get_cell(key_of(table, server) or "", "recvq").plain == "1000"
