"""The capture budget bounds the packet ring by bytes and, for small packets, by count (their analysis costs too)."""

from __future__ import annotations

import asyncio
import socket

from waiting import until

from netlens.server import ServerConfig
from netlens.ui.app import NetlensApp
from netlens.ui.feeds import BUDGET_BYTES_PER_PACKET, LiveFeeds

SIZE = (160, 45)


async def test_a_flood_of_small_packets_keeps_at_most_one_packet_per_kib_of_budget() -> None:
    budget = 256 * 1024
    limit = budget // BUDGET_BYTES_PER_PACKET
    app = NetlensApp(LiveFeeds(ServerConfig(mode="echo", port=0), capture=True, capture_budget=budget,
                               kernel_trace=False), animate=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.feeds.server.running)
        port = app.feeds.server.address[1]
        feed = app.feeds.packet_feed()
        assert feed is not None
        await until(pilot, lambda: feed.status().state == "running", timeout=10)

        def chatter() -> None:
            # ~4 small packets per round trip: far more packets than the limit, far fewer bytes than the budget.
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for _ in range(600):
                    sock.sendall(b"z" * 40)
                    sock.recv(65536)

        await asyncio.to_thread(chatter)
        await until(pilot, lambda: feed.ring.last >= 4 * limit, timeout=15)
        assert feed.ring.max_packets == limit
        assert len(feed.ring) <= limit and feed.ring.bytes_stored <= budget
        assert feed.ring.evicted > 0
