"""Graphs and conversations of a live capture (root), through the packet feed's plain-data calls."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable
from waiting import until

from netlens.server import ServerConfig, clients
from netlens.ui.app import NetlensApp
from netlens.ui.feeds import LiveFeeds
from netlens.ui.screens.conversations import ConversationsScreen
from netlens.ui.screens.graph import GraphScreen
from netlens.ui.widgets.packets import PacketsView


async def test_conversations_and_graphs_of_a_live_capture() -> None:
    app = NetlensApp(LiveFeeds(ServerConfig(mode="search", port=0, idle_timeout=30), kernel_trace=False),
                     animate=False)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(PacketsView)
        await until(pilot, lambda: view.state == "running", timeout=15)
        port = app.feeds.server.address[1]
        for value in ("morpheus", "trinity"):
            await asyncio.to_thread(clients.search, "127.0.0.1", port, value)
        feed = view.feed
        await until(pilot, lambda: len(feed.stream_packets(2)) >= 8 and not feed.status().pending)
        await pilot.press("v")
        screen = await until(pilot, lambda: isinstance(app.screen, ConversationsScreen)
                             and app.screen.query_one(DataTable).row_count == 2 and app.screen)
        table = screen.query_one(DataTable)
        second = [str(cell) for cell in table.get_row_at(1)]
        assert second[0] == "2" and second[2].endswith(f":{port}")
        assert int(second[3]) + int(second[5]) == len(feed.stream_packets(2))
        table.move_cursor(row=1)
        await pilot.press("enter")
        # (The live app's workers never complete: wait for the graph itself.)
        graph = await until(pilot, lambda: isinstance(app.screen, GraphScreen) and app.screen.state is not None
                            and app.screen.graph is not None and app.screen.drawn_packets
                            == app.screen.state.graphed > 0 and app.screen, timeout=10)
        assert graph.stream.id == 2 and graph.state is not None
        assert graph.state.graphed == len(feed.stream_packets(2)) == graph.drawn_packets
        assert graph.graph is not None and graph.graph.kind == "tsg" and graph.graph.traces
        await pilot.press("escape")
