"""``ctrl+s`` to a .pcapng on a real app run: the server's socket events travel as packet comments."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from waiting import until

from netlens.server import ServerConfig, clients
from netlens.ui.app import NetlensApp
from netlens.ui.feeds import LiveFeeds
from netlens.ui.screens.prompts import PromptScreen
from netlens.ui.widgets.packets import PacketsView


async def test_saved_pcapng_carries_the_servers_socket_events(tmp_path: Path) -> None:
    app = NetlensApp(LiveFeeds(ServerConfig(mode="search", port=0, idle_timeout=30)), animate=False)
    target = tmp_path / "session.pcapng"
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(PacketsView)
        await until(pilot, lambda: view.state == "running", timeout=10)
        await until(pilot, lambda: app.feeds.server.running)
        port = app.feeds.server.address[1]
        reply = await asyncio.to_thread(clients.search, "127.0.0.1", port, "morpheus")
        client_port = reply.local[1]
        # Wait for the server's events to reach the log and the packets to be analysed.
        await until(pilot, lambda: any(r[0] != "kernel" and "morpheus" in str(r) for r in app.screen.events.records()))
        await until(pilot, lambda: view.feed.status().last >= 8)
        await pilot.press("ctrl+s")
        prompt = await until(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen)
        prompt.query_one("Input").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists() and target.stat().st_size > 0, timeout=10)
        await asyncio.sleep(0.2)  # the writer closes the file right after its first bytes
    out = subprocess.run(["tshark", "-n", "-r", str(target), "-Y", "frame.comment", "-T", "fields",
                          "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "frame.comment"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    socket_rows = [row for row in rows if "server socket: " in row[2]]
    assert any("server socket: accepted" in row[2] for row in socket_rows), out
    assert any("server socket: recv" in row[2] and "morpheus" in row[2] for row in socket_rows), out
    # Each event sits on a packet of its own connection.
    assert all({row[0], row[1]} == {str(port), str(client_port)} for row in socket_rows), out
