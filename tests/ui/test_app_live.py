"""The app on real loopback traffic, driven with Pilot: server, kernel view and capture all live."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console
from textual.events import Resize
from textual.geometry import Size
from textual.widgets import Button
from waiting import until

from netlens.capture import read_pcap
from netlens.server import ServerConfig, clients
from netlens.ui.app import NetlensApp
from netlens.ui.feeds import LiveFeeds
from netlens.ui.screens.prompts import PortInUseScreen, PromptScreen, TooSmallScreen
from netlens.ui.widgets.connections import ConnectionsTable
from netlens.ui.widgets.events import EventLog
from netlens.ui.widgets.inspector import SocketInspector
from netlens.ui.widgets.packets import PacketsView

SIZE = (120, 40)


def lines_of(widget) -> list[str]:
    """The text a widget puts on screen, line by line (what the user sees)."""
    return [widget.render_line(y).text for y in range(widget.size.height)]


def text_of(widget, width: int = 110) -> str:
    """Plain text of what a Static shows (rendered by Rich, wrapped at ``width``)."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()


def rows_of(vlist) -> list[str]:
    """Every row a virtual list draws (in full, before the panel's width crops it)."""
    return [vlist.render_row(i).plain for i in range(vlist.row_count())]


def live_app(mode: str = "search", capture: bool = True) -> NetlensApp:
    return NetlensApp(LiveFeeds(ServerConfig(mode=mode, port=0, idle_timeout=30), capture=capture),
                      animate=False)


def table_row(app: NetlensApp, local_port: int, remote_port: int) -> list[str] | None:
    """Cells (as text) of the table row for one socket, or None."""
    table = app.screen.query_one(ConnectionsTable)
    for key in list(table.ordered_keys):
        sock = table._rows[key].socket
        if sock.local_port == local_port and sock.remote_port == remote_port:
            return [str(cell) for cell in table.get_row(key)]
    return None


async def select(pilot, app: NetlensApp, local_port: int, remote_port: int) -> None:
    """Wait for the socket's row, put the cursor on it and focus the table (as a user would)."""
    await until(pilot, lambda: table_row(app, local_port, remote_port))
    table = app.screen.query_one(ConnectionsTable)
    key = next(k for k in table.ordered_keys if table._rows[k].socket.local_port == local_port
               and table._rows[k].socket.remote_port == remote_port)
    assert table.select_key(key)
    table.focus()
    await until(pilot, lambda: app.screen.selection_shown)


async def server_port(pilot, app: NetlensApp) -> int:
    """The live server's port, once the app has started it (after its first frame)."""
    await until(pilot, lambda: app.feeds.server.running)
    return app.feeds.server.address[1]


async def capture_running(pilot, app: NetlensApp) -> PacketsView:
    view = app.screen.query_one(PacketsView)
    await until(pilot, lambda: view.state == "running", timeout=10)
    return view


async def test_a_request_makes_a_row_events_and_packets() -> None:
    app = live_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await capture_running(pilot, app)
        port = await server_port(pilot, app)
        reply = await asyncio.to_thread(clients.search, "127.0.0.1", port, "morpheus")
        client_port = reply.local[1]
        # The server side of the connection, now in TIME_WAIT because the server closed first.
        row = await until(pilot, lambda: table_row(app, port, client_port))
        assert row[0] == "TIME_WAIT"
        log = app.screen.query_one(EventLog)
        await until(pilot, lambda: any("closed by server: response sent" in line for line in rows_of(log)))
        events = "\n".join(rows_of(log))
        assert f"accepted 127.0.0.1:{client_port}" in events and "request complete: search 'morpheus'" in events
        packets = view.list
        await until(pilot, lambda: packets.row_count() >= 10)
        shown = "\n".join(rows_of(packets))
        assert f"{client_port} → {port}" in shown and "search request 'morpheus'" in shown
        assert "S " in shown and "FA" in shown


async def test_selecting_a_row_fills_the_inspector() -> None:
    app = live_app("echo")
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"hello inspector")
            assert sock.recv(100) == b"hello inspector"
            me = sock.getsockname()[1]
            await select(pilot, app, port, me)
            inspector = app.screen.query_one(SocketInspector)

            def shown() -> str:
                return text_of(inspector.query_one("Static"))

            await until(pilot, lambda: "server's view" in shown())
            text = shown()
            assert "ESTABLISHED" in text and "kernel's view" in text
            assert "echoing" in text and "READ" in text and "bytes in/out" in text
            assert "rtt / rttvar" in text


async def test_pause_read_makes_recv_q_grow_and_resume_drains_it() -> None:
    app = live_app("echo")
    async with app.run_test(size=SIZE) as pilot:
        port = await server_port(pilot, app)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            me = sock.getsockname()[1]
            await select(pilot, app, port, me)
            await pilot.press("r")
            await until(pilot, lambda: any(s.paused for s in app.feeds.server.snapshot()))
            sock.sendall(b"z" * 6000)
            row = await until(pilot, lambda: (r := table_row(app, port, me)) and r[3] == "6000" and r)
            assert "paused" in row[5]
            await pilot.press("r")
            got = b""
            sock.settimeout(3)
            while len(got) < 6000:
                got += await asyncio.to_thread(sock.recv, 65536)
            await until(pilot, lambda: (r := table_row(app, port, me)) and r[3] == "0")


async def test_rst_action_sends_an_rst_packet() -> None:
    app = live_app("echo")
    async with app.run_test(size=SIZE) as pilot:
        view = await capture_running(pilot, app)
        port = await server_port(pilot, app)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            me = sock.getsockname()[1]
            await select(pilot, app, port, me)
            await pilot.press("X")
            sock.settimeout(3)
            with pytest.raises(ConnectionResetError):
                await asyncio.to_thread(sock.recv, 10)

        def rst_seen() -> bool:
            status = view.feed.status()
            return any("R" in row.flags and row.sport == port for row in view.feed.rows(status.first, status.last))

        await until(pilot, rst_seen)


async def test_save_pcap_writes_a_file_others_can_read(tmp_path: Path) -> None:
    app = live_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await capture_running(pilot, app)
        port = await server_port(pilot, app)
        await asyncio.to_thread(clients.search, "127.0.0.1", port, "ring")
        await until(pilot, lambda: view.feed.status().last >= 10)
        count = view.feed.status().stored
        await pilot.press("ctrl+s")
        prompt = await until(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen)
        target = tmp_path / "session.pcap"
        prompt.query_one("Input").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists() and target.stat().st_size > 0)
    result = read_pcap(str(target))
    assert len(result.ring) >= count
    tshark = shutil.which("tshark")
    assert tshark, "tshark (Debian package) is the independent reader of our pcap files"
    out = subprocess.run([tshark, "-r", str(target), "-T", "fields", "-e", "tcp.srcport"],
                         capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert len(out) == len(result.ring) and str(port) in out


async def test_hostile_search_value_is_shown_literally() -> None:
    app = live_app()
    hostile = "[bold red]x[/]\x1b[2J"
    async with app.run_test(size=SIZE) as pilot:
        view = await capture_running(pilot, app)
        port = await server_port(pilot, app)
        await asyncio.to_thread(clients.search, "127.0.0.1", port, hostile)
        log = app.screen.query_one(EventLog)
        literal = "[bold red]x[/]\\x1b[2J"
        await until(pilot, lambda: any(literal in line for line in rows_of(log)))
        await until(pilot, lambda: any(literal in line for line in rows_of(view.list)))
        for widget in (log, view.list, app.screen.query_one(ConnectionsTable)):
            for y in range(widget.size.height):
                strip = widget.render_line(y)
                assert "\x1b" not in strip.text
                # Had the value been parsed as markup, "x" would be bold red and the brackets gone.
                for segment in strip:
                    if "x[/]" in segment.text:
                        assert not (segment.style and segment.style.color
                                    and segment.style.color.name == "red" and segment.style.bold)


async def test_port_in_use_offers_another_port() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = busy.getsockname()[1]
    app = NetlensApp(LiveFeeds(ServerConfig(port=taken), capture=False), animate=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await until(pilot, lambda: isinstance(app.screen, PortInUseScreen) and app.screen)
            await until(pilot, lambda: screen.query("#any"))  # its buttons are mounted a moment later
            assert "already in use" in text_of(screen.query_one("#sentence"))
            screen.query_one("#any", Button).press()
            await until(pilot, lambda: app.feeds.server.running)
            assert app.feeds.server.address[1] not in (taken, 0)
            assert app.feeds.server.key_gate is app.key_gate  # the new server gives way to keys too
            reply = await asyncio.to_thread(clients.search, "127.0.0.1", app.feeds.server.address[1], "ring")
            assert reply.response.value is not None
    finally:
        busy.close()


async def test_terminal_too_small_says_so_and_recovers() -> None:
    app = live_app(capture=False)
    async with app.run_test(size=(60, 16)) as pilot:
        screen = await until(pilot, lambda: isinstance(app.screen, TooSmallScreen) and app.screen)
        message = await until(pilot, lambda: text_of(screen.query_one("#too-small")).strip())
        assert "The terminal is 60x16; netlens needs at least 80x24." in message
        # What pilot.resize_terminal does, without its wait on the screen we are about to pop.
        app._driver._size = Size(*SIZE)
        app.post_message(Resize(Size(*SIZE), Size(*SIZE)))
        await until(pilot, lambda: not isinstance(app.screen, TooSmallScreen))
        assert app.screen.query_one(ConnectionsTable).size.width > 0


async def test_help_and_send_dialog() -> None:
    app = live_app(capture=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        await pilot.press("escape")
        await pilot.press("s")
        await until(pilot, lambda: type(app.screen).__name__ == "SendScreen")
        await pilot.press("enter")  # sends the default search: morpheus
        await until(pilot, lambda: app.feeds.server.stats().requests == 1)
        await until(pilot, lambda: any("Follow the white rabbit" in n.message for n in app._notifications))


NO_PRIVILEGE = textwrap.dedent("""
    import asyncio, sys
    sys.path[:0] = [{here!r}, {tests!r}]
    from netlens.server import ServerConfig, clients
    from netlens.ui.app import NetlensApp
    from netlens.ui.feeds import LiveFeeds
    from netlens.ui.widgets.packets import PacketsView
    from netlens.ui.widgets.events import EventLog
    from test_app_live import rows_of, server_port, table_row, text_of
    from waiting import until

    async def main():
        app = NetlensApp(LiveFeeds(ServerConfig(port=0)), animate=False)
        async with app.run_test(size=(120, 40)) as pilot:
            view = app.screen.query_one(PacketsView)
            await until(pilot, lambda: view.state == "failed", timeout=10)
            message = text_of(view.query_one("#packets-message"), 300)
            port = await server_port(pilot, app)
            reply = await asyncio.to_thread(clients.search, "127.0.0.1", port, "ring")
            await until(pilot, lambda: table_row(app, port, reply.local[1]))
            log = app.screen.query_one(EventLog)
            await until(pilot, lambda: any("request complete" in l for l in rows_of(log)))
            print("MESSAGE", message)
            print("STATUS", text_of(app.screen.query_one("#status"), 300))
    asyncio.run(main())
""")


def test_capture_without_privilege_shows_why_and_the_rest_works() -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) drops CAP_NET_RAW for this test"
    script = NO_PRIVILEGE.format(here=str(Path(__file__).parent), tests=str(Path(__file__).parent.parent))
    out = subprocess.run([setpriv, "--inh-caps=-net_raw", "--bounding-set=-net_raw", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, TZ="UTC"))
    assert out.returncode == 0, out.stderr[-3000:]
    message = next(line for line in out.stdout.splitlines() if line.startswith("MESSAGE"))
    # Root without CAP_NET_RAW: the sentence names the missing capability, once, and does not suggest sudo.
    assert "needs the CAP_NET_RAW capability, which this process lacks" in message and "sudo" not in message
    assert message.count("Everything else keeps working") == 1 and "works without it" not in message
    assert "capture: unavailable" in out.stdout
    assert "Traceback" not in out.stdout
