"""The screen tells the truth and every action lands: Pilot on live loopback connections.

Where a test must show that the *server's* event (not the next kernel
snapshot) changed the screen, it first stalls the kernel probe (its
interval set to a minute), so only the event can have done it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from test_app_live import lines_of, live_app, select, server_port, table_row, text_of
from textual import events
from textual.widgets import Button
from textual.widgets._footer import FooterKey
from waiting import until

import netlens.ui.app as app_module
from netlens.server import ServerConfig
from netlens.ui.app import NetlensApp
from netlens.ui.feeds import LiveFeeds
from netlens.ui.screens.help import HELP
from netlens.ui.screens.prompts import PortInUseScreen
from netlens.ui.widgets.connections import ConnectionsTable
from netlens.ui.widgets.inspector import SocketInspector

SIZE = (120, 40)


def cell(app: NetlensApp, local_port: int, remote_port: int, column: str):  # type: ignore[no-untyped-def]
    """The Text in one cell of the row for one socket (or None)."""
    table = app.screen.query_one(ConnectionsTable)
    for key in list(table.ordered_keys):
        sock = table._rows[key].socket
        if sock.local_port == local_port and sock.remote_port == remote_port:
            return table.get_cell(key, column)
    return None


async def stall_probe(pilot, app: NetlensApp, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """From now on the kernel is asked once a minute: what changes on screen comes from the server's events."""
    monkeypatch.setattr(app_module, "PROBE_INTERVAL", 60.0)
    # Let the probe's current wait (a second at most) run out, so it starts its minute-long one.
    await pilot.pause(1.3)


def key_now(app: NetlensApp, key: str) -> None:
    """Deliver a key press as the terminal would, without Pilot's waiting for the screen to settle."""
    event = events.Key(key, None)
    event.set_sender(app)
    app._driver.send_message(event)


def inspector_text(app: NetlensApp) -> str:
    return text_of(app.screen.query_one(SocketInspector).query_one("Static"), 200)


async def test_a_closed_connection_changes_state_and_style_at_the_servers_event(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        client = socket.create_connection(("127.0.0.1", port))
        me = client.getsockname()[1]
        state = await until(pilot, lambda: (c := cell(app, port, me, "state")) and c.plain == "ESTABLISHED" and c)
        await stall_probe(pilot, app, monkeypatch)
        assert cell(app, port, me, "state").plain == "ESTABLISHED"
        client.close()  # FIN: the echo server reads end-of-file and closes its end at once
        closed_at = time.monotonic()
        state = await until(pilot, lambda: (c := cell(app, port, me, "state")) and c.plain != "ESTABLISHED" and c,
                            timeout=3)
        took = time.monotonic() - closed_at
        assert state.plain == "CLOSED by server"
        assert "red" in str(state.style) and "green" not in str(state.style)
        # The whole row follows, not just its State cell (Text equality ignores style: compare it too).
        assert "red" in str(cell(app, port, me, "local").style)
        # Within one refresh (0.1 s) of the event, with a margin for a busy machine.
        assert took < 0.6, f"the row changed {took:.2f} s after the close"


async def test_new_highlight_fades_and_the_listen_row_is_not_green_forever() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        listening = await until(pilot, lambda: cell(app, port, 0, "local"))
        assert "green" in str(listening.style)  # new
        await until(pilot, lambda: str(cell(app, port, 0, "local").style) == "", timeout=6)
        assert cell(app, port, 0, "state").plain == "LISTEN"
        assert "cyan" in str(cell(app, port, 0, "state").style)


async def test_after_rst_the_row_and_the_inspector_both_say_reset(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        with socket.create_connection(("127.0.0.1", port)) as client:
            me = client.getsockname()[1]
            await select(pilot, app, port, me)
            await until(pilot, lambda: "server's view" in inspector_text(app))
            await stall_probe(pilot, app, monkeypatch)
            await pilot.press("X")
            client.settimeout(3)
            with pytest.raises(ConnectionResetError):
                await asyncio.to_thread(client.recv, 10)
            await until(pilot, lambda: cell(app, port, me, "state").plain == "RST sent", timeout=2)
            assert cell(app, me, port, "state").plain == "RST received"
            assert "red" in str(cell(app, port, me, "state").style)
            text = await until(pilot, lambda: (t := inspector_text(app)) and "RST sent" in t and t, timeout=2)
            state_line = next(line for line in text.splitlines() if line.startswith("state"))
            assert "RST sent" in state_line and "ESTABLISHED" not in state_line.split("(")[0]
            assert "The server reset the connection (RST)" in text


async def test_200_rapid_presses_give_200_confirmations() -> None:
    app = live_app("echo", capture=False)
    shown: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        add = app._notifications.add

        def record(notification):  # type: ignore[no-untyped-def]
            shown.append(notification.message)
            return add(notification)

        app._notifications.add = record  # type: ignore[method-assign]
        port = await server_port(pilot, app)
        with socket.create_connection(("127.0.0.1", port)) as client:
            me = client.getsockname()[1]
            await select(pilot, app, port, me)
            await until(pilot, lambda: app.main.selected_conn() is not None)
            for n in range(200):
                key_now(app, "d")  # as fast as a terminal delivers them, without waiting for each frame
                if n % 20 == 0:
                    await asyncio.sleep(0)
            confirmations = await until(
                pilot, lambda: (c := [m for m in shown if "TCP_NODELAY" in m]) and len(c) >= 200 and c, timeout=20)
            await pilot.pause(0.5)
            confirmations = [m for m in shown if "TCP_NODELAY" in m]
            assert len(confirmations) == 200
            # Each press flipped the option: on, off, on, off... and the server agrees with the last one.
            assert confirmations[0].endswith("TCP_NODELAY=on"), confirmations[:6]
            assert confirmations[-1].endswith("TCP_NODELAY=off")
            assert all(m.endswith("=on" if i % 2 == 0 else "=off") for i, m in enumerate(confirmations))
            snap = app.feeds.server.snapshot()[0]
            assert snap.options["TCP_NODELAY"] == 0
            # ...but the screen never stacks 200 toasts.
            assert len(app._notifications) <= 4


async def test_a_server_loop_iteration_held_for_a_second_does_not_freeze_keys() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        server = app.feeds.server
        with socket.create_connection(("127.0.0.1", port)) as client:
            me = client.getsockname()[1]
            await select(pilot, app, port, me)
            await until(pilot, lambda: app.main.selected_conn() is not None)
            await pilot.pause(0.5)
            holding = threading.Event()
            released: list[float] = []
            timers = server._timers

            def slow_iteration() -> None:
                if not holding.is_set():
                    holding.set()
                    time.sleep(1.0)  # inside the loop's lock, as a long iteration would be
                    released.append(time.monotonic())
                timers()

            server._timers = slow_iteration  # type: ignore[method-assign]
            server._wake()
            await until(pilot, holding.is_set, timeout=2)
            key_now(app, "d")  # a control: it waits in the queue until the iteration ends
            focused = app.focused
            key_now(app, "tab")
            while app.focused is focused and not released:
                await asyncio.sleep(0.005)
            handled = time.monotonic()
            # The key was handled while the loop was still held (its iteration had not ended).
            assert app.focused is not focused and not released, "the key waited for the server loop"
            await until(pilot, lambda: any("TCP_NODELAY=on" in n.message for n in app._notifications), timeout=3)
            assert released and released[0] > handled  # the confirmation came once the loop went on


async def test_an_exception_in_a_worker_is_one_sentence_and_the_app_keeps_running() -> None:
    app = live_app("search", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        real_probe = app.feeds.probe
        calls = {"n": 0}

        def broken_once():  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("netlink went away\n  with a second line")
            return real_probe()

        app.feeds.probe = broken_once  # type: ignore[method-assign]
        sentence = "Kernel probe stopped: RuntimeError: netlink went away with a second line."
        await until(pilot, lambda: any(n.message == sentence for n in app._notifications), timeout=5)
        assert app.is_running and app.return_code is None
        # The probe came back by itself: a new connection still shows up in the table.
        with socket.create_connection(("127.0.0.1", port)) as client:
            await until(pilot, lambda: table_row(app, port, client.getsockname()[1]), timeout=8)


async def test_m_fills_the_screen_for_each_panel() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        await server_port(pilot, app)
        for panel, widget in (("connections-panel", "#connections"), ("inspector-panel", "#inspector"),
                              ("events-panel", "#events"), ("packets-panel", "#packet-list")):
            app.screen.query_one(widget).focus()
            await pilot.press("m")
            await pilot.pause(0.1)
            region = app.screen.query_one(f"#{panel}").region
            # All of the screen but the footer's line.
            assert (region.width, region.height) == (SIZE[0], SIZE[1] - 1), (panel, region)
            await pilot.press("m")
            await pilot.pause(0.1)
            assert app.screen.query_one(f"#{panel}").region.height < SIZE[1] - 10, panel


async def test_rows_scrolled_back_into_view_are_current(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        try:
            table = app.screen.query_one(ConnectionsTable)
            await until(pilot, lambda: table.row_count >= 25)
            first = clients[0]
            me = first.getsockname()[1]
            key = next(k for k, r in table._rows.items() if (r.socket.local_port, r.socket.remote_port) == (port, me))
            index = table.get_row_index(key)
            # Out of sight: scroll to whichever end of the table it is not at.
            (table.scroll_end if index < table.size.height else table.scroll_home)(animate=False)
            await pilot.pause(0.2)
            assert not table.scroll_y <= index < table.scroll_y + table.size.height
            first.sendall(b"x" * 100_000)
            await until(pilot, lambda: table._rows[key].socket.tcp_info.bytes_received >= 100_000, timeout=5)
            await stall_probe(pilot, app, monkeypatch)
            table.scroll_to(y=max(0, table.get_row_index(key) - 2), animate=False)
            await pilot.pause(0.1)
            moved = cell(app, port, me, "bytes").plain
            assert moved.endswith(("/98K", "/97.7 KiB")), moved
        finally:
            for client in clients:
                client.close()


async def test_the_socket_panel_never_goes_blank_when_its_content_shrinks() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"y" * 3000)
            me = client.getsockname()[1]
            await select(pilot, app, port, me)
            inspector = app.screen.query_one(SocketInspector)
            await select(pilot, app, me, port)  # the client's end is not "server side"

            def headline() -> str:
                return " ".join(inspector_text(app).split("kernel's view")[0].split())  # it may wrap

            await until(pilot, lambda: f"{me} ⇄" in headline() and "#1" in headline())
            assert "client's end; peer of #1" in headline() and "server" not in headline(), headline()
            await select(pilot, app, port, me)
            await until(pilot, lambda: "last recv()" in inspector_text(app))

            def scrolled_down() -> bool:
                # Again until it holds: the long text may not be laid out yet on a busy machine (nothing to scroll).
                inspector.scroll_end(animate=False)
                return inspector.scroll_y > 10

            await until(pilot, scrolled_down)
            await select(pilot, app, port, 0)  # the listener: a much shorter text
            await until(pilot, lambda: "listening socket" in inspector_text(app))
            await pilot.pause(0.3)
            # What the panel shows: the body's lines from the scroll position on, one screen's worth.
            body = inspector.query_one("Static")
            top = int(inspector.scroll_y)
            shown = [body.render_line(y).text for y in range(top, min(body.size.height, top + inspector.size.height))]
            assert len([line for line in shown if line.strip()]) >= 5, (top, shown)


async def test_footer_at_80x24_keeps_quit_and_help() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await server_port(pilot, app)
        await pilot.pause(0.3)
        keys = {key.key: key.region for key in app.screen.query(FooterKey)}
        for key in ("q", "question_mark"):
            assert keys[key].width > 0 and keys[key].right <= 80, keys


async def test_status_line_keeps_whole_words_and_help() -> None:
    app = live_app("search", capture=False)
    async with app.run_test(size=(96, 30)) as pilot:
        await server_port(pilot, app)
        line = await until(pilot, lambda: (line := lines_of(app.screen.query_one("#status"))[0]) and "conns" in line
                           and line)
        assert line.rstrip().endswith("? help") and "…" not in line, line
        assert "requests 0" in line


async def test_echo_mode_header_does_not_count_requests() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=(140, 45)) as pilot:
        port = await server_port(pilot, app)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"z" * 3000)
            await until(pilot, lambda: "(2.9 KiB)" in lines_of(app.screen.query_one("#status"))[0])
        assert "requests" not in lines_of(app.screen.query_one("#status"))[0]


async def test_help_names_the_real_tab_order_and_the_palette_one_screenshot_command() -> None:
    app = live_app("echo", capture=False)
    async with app.run_test(size=SIZE) as pilot:
        await server_port(pilot, app)
        order = []
        for _ in range(4):
            node = app.focused
            while node is not None and not (node.id or "").endswith("-panel"):
                node = node.parent
            order.append(node.border_title.lower())
            await pilot.press("tab")
        assert f"({', '.join(order)})" in HELP
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert sum("creenshot" in title for title in titles) == 1, titles


async def test_quit_in_the_port_in_use_dialog_returns_2() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    app = NetlensApp(LiveFeeds(ServerConfig(port=busy.getsockname()[1]), capture=False), animate=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await until(pilot, lambda: isinstance(app.screen, PortInUseScreen) and app.screen)
            await until(pilot, lambda: screen.query("#quit"))
            screen.query_one("#quit", Button).press()
            await until(pilot, lambda: app.return_code is not None)
        assert app.return_code == 2
    finally:
        busy.close()

