"""Arrow keys under load: the cursor's frame first, the panes that follow it within a bounded time.

A live app (real server, real kernel snapshots) with real loopback
connections, driven with Pilot. While keys keep coming the inspector is
brought up to date at most SELECTION_WAIT seconds after the first move it
has not shown; once they stop it shows the selected socket at once (after
the app's input grace).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from typing import Any

from waiting import until

from netlens.server import ServerConfig
from netlens.ui.app import INPUT_GRACE, NetlensApp
from netlens.ui.feeds import LiveFeeds
from netlens.ui.screens.main import SELECTION_WAIT
from netlens.ui.widgets.connections import ConnectionsTable
from netlens.ui.widgets.inspector import SocketInspector

SIZE = (120, 40)
#: Slack for a loaded machine on top of the documented bound (seconds).
SLACK = 1.0


def echo_app() -> NetlensApp:
    return NetlensApp(LiveFeeds(ServerConfig(mode="echo", port=0, idle_timeout=30), capture=False), animate=False)


@contextmanager
def connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` open client connections to the server, closed whatever happens."""
    with ExitStack() as stack:
        yield [stack.enter_context(socket.create_connection(("127.0.0.1", port))) for _ in range(count)]


def inspected(app: NetlensApp) -> str:
    """The inspector's first line: the socket it shows (its two endpoints)."""
    body = app.screen.query_one(SocketInspector).query_one("Static")
    return str(body.content).split("\n", 1)[0]


def selected(app: NetlensApp) -> str:
    """The endpoints of the socket under the cursor, as the inspector's first line names them."""
    selection = app.screen.query_one(ConnectionsTable).selection
    assert selection is not None
    sock = selection.socket
    return f"{sock.local_addr}:{sock.local_port} ⇄ {sock.remote_addr}:{sock.remote_port}"


@asynccontextmanager
async def table_with(count: int) -> AsyncIterator[tuple[Any, NetlensApp, ConnectionsTable]]:
    """A live echo app with ``count`` connections open: its pilot, the app and its table once it lists the
    listener and both ends of each, focused, on the first one."""
    app = echo_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.feeds.server.running)
        with connections(app.feeds.server.address[1], count):
            table = app.screen.query_one(ConnectionsTable)
            await until(pilot, lambda: table.row_count >= 1 + 2 * count, timeout=10)
            table.focus()
            table.move_cursor(1)  # row 0 is the listener
            await until(pilot, lambda: app.screen.selection_shown and inspected(app).startswith(selected(app)))
            yield pilot, app, table


async def test_after_keys_stop_the_inspector_shows_the_selected_socket() -> None:
    async with table_with(3) as (pilot, app, table):
        before = inspected(app)
        await pilot.press("down", "down", "down")
        stopped = time.monotonic()
        assert table.cursor_row == 4
        await until(pilot, lambda: app.screen.selection_shown, timeout=10)
        assert time.monotonic() - stopped <= SELECTION_WAIT + INPUT_GRACE + SLACK
        # The truth about the socket under the cursor: its ends, the kernel's state, its facts.
        shown = str(app.screen.query_one(SocketInspector).query_one("Static").content)
        assert inspected(app).startswith(selected(app)) and inspected(app) != before
        assert "ESTABLISHED" in shown and "kernel's view" in shown


async def test_while_keys_keep_coming_the_inspector_is_never_far_behind() -> None:
    async with table_with(20) as (pilot, app, table):
        first = inspected(app)
        seen = set()
        started = time.monotonic()
        # Down every 50 ms for twice the bound: the keys never pause for the input grace.
        while time.monotonic() - started < 2 * SELECTION_WAIT + SLACK:
            await pilot.press("down")
            await asyncio.sleep(0.05)
            seen.add(inspected(app))
        assert table.cursor_row > 5
        # It moved along while the keys kept coming (not only once they stopped).
        assert seen - {first}
        await until(pilot, lambda: app.screen.selection_shown, timeout=10)
        assert inspected(app).startswith(selected(app))
