"""Connections that stay, opened from the TUI (``o``), and workers that never outlive the app."""

from __future__ import annotations

import subprocess
import sys
import time

from test_app_live import live_app, server_port
from textual.widgets import Button, Input, Select
from waiting import until, wait_for

from netlens.ui.app import NetlensApp
from netlens.ui.screens.prompts import OpenClientScreen

SIZE = (120, 40)


async def open_connection(pilot, app: NetlensApp, preset: int, seconds: str = "0") -> None:  # type: ignore[no-untyped-def]
    """Press o, pick a preset of the dialog, and open."""
    await pilot.press("o")
    screen = await until(pilot, lambda: isinstance(app.screen, OpenClientScreen) and app.screen)
    await until(pilot, lambda: screen.query("#open"))
    screen.query_one("#open-kind", Select).value = preset
    screen.query_one("#open-seconds", Input).value = seconds
    screen.query_one("#open", Button).press()


async def test_o_opens_a_connection_that_stays_and_the_actions_work_on_it() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        await open_connection(pilot, app, 0)  # hold: connect and wait
        # Its server end is selected as soon as the kernel lists it.
        selection = await until(pilot, lambda: (s := app.main.table.selection) and s.socket.local_port == port
                                and s.socket.state == "ESTABLISHED" and s, timeout=8)
        client_port = selection.socket.remote_port
        ss = subprocess.run(["ss", "-tanH", "sport", "=", f":{client_port}"], capture_output=True, text=True,
                            timeout=10, check=True).stdout
        assert ss.split()[0] == "ESTAB", ss
        await pilot.press("r")
        await until(pilot, lambda: any("paused reading" in m for m in app.confirmations))
        await pilot.press("X")
        await until(pilot, lambda: any("reset the connection (RST)" in n.message for n in app._notifications))


async def test_no_worker_outlives_the_app() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        await server_port(pilot, app)
        await open_connection(pilot, app, 0)
        await open_connection(pilot, app, 3)  # stream without reading: its send blocks on a full window
        await until(pilot, lambda: len(app.feeds.server.snapshot()) == 2, timeout=8)
        await pilot.pause(1.0)
        assert busy_netlens_threads()
        left = time.monotonic()
    # Every worker ends within a fraction of a second of the app: none can hold the process's exit.
    wait_for(lambda: not busy_netlens_threads(), timeout=2)
    assert time.monotonic() - left < 3


WORKER_FUNCTIONS = {"probe_loop", "watch_server", "open_client", "send_request", "run_clients", "_read_server_view"}


def busy_netlens_threads() -> list[str]:
    """Threads now running one of the app's workers."""
    found = []
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name in WORKER_FUNCTIONS and "netlens" in frame.f_code.co_filename:
                found.append(frame.f_code.co_name)
                break
            frame = frame.f_back
    return found
