"""The status line shows what the server did and what memory it holds; the events panel keeps its byte budget."""

from __future__ import annotations

import asyncio
import re
import socket

from rich.console import Console
from waiting import until

from netlens.server import ServerConfig, clients
from netlens.server.bus import record_size
from netlens.ui.app import NetlensApp
from netlens.ui.feeds import LiveFeeds
from netlens.ui.widgets.events import FORGET_TO, EventLog

SIZE = (200, 40)


def status_text(app: NetlensApp) -> str:
    console = Console(width=400, record=True, color_system=None)
    console.print(app.screen.query_one("#status").content)
    return console.export_text()


async def test_echo_mode_shows_echoed_work_not_requests_and_the_budgets() -> None:
    app = NetlensApp(LiveFeeds(ServerConfig(mode="echo", port=0), capture=False), animate=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.feeds.server.running)
        port = app.feeds.server.address[1]
        await asyncio.to_thread(clients.echo, "127.0.0.1", port, list(clients.TUTORIAL_MESSAGES))
        # One recv() or two, depending on timing: the bytes are what is certain.
        await until(pilot, lambda: "(44 B)" in status_text(app))
        assert "echoed 1 (44 B)" in status_text(app) or "echoed 2 (44 B)" in status_text(app)
        assert "requests" not in status_text(app)
        # Each memory budget with its use, under the events panel.
        subtitle = str(app.screen.query_one("#events-panel").border_subtitle)
        assert re.fullmatch(r"log \d+\.\d/64M · ring \d+\.\d/32M", subtitle), subtitle


async def test_the_events_panel_forgets_by_bytes() -> None:
    budget = 256 * 1024
    app = NetlensApp(LiveFeeds(ServerConfig(mode="echo", port=0), capture=False), animate=False)
    async with app.run_test(size=SIZE) as pilot:
        log = app.screen.query_one(EventLog)
        log.budget = budget
        await until(pilot, lambda: app.feeds.server.running)
        port = app.feeds.server.address[1]

        def stream() -> None:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for _ in range(3000):
                    sock.sendall(b"y" * 200)
                    sock.recv(65536)

        await asyncio.to_thread(stream)
        await until(pilot, lambda: log.total >= 6000 and "closed by peer" in log.render_row(log.row_count() - 1).plain,
                    timeout=15)  # the newest events stay...
        assert log.bytes <= budget
        assert log.bytes == sum(record_size(r) for r in log._records)
        assert log.row_count() < log.total  # ...and the oldest were let go
        # An eighth at a time (short pauses), not half the log: what is kept stays near the budget.
        assert log.bytes >= FORGET_TO * budget - 1024
