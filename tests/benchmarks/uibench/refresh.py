"""The refresh phase: what repainting the packet list costs with 1,000 and 1,000,000 packets stored."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from uibench.live import SIZE, wait_for

ROOT = Path(__file__).resolve().parents[3]


def build_feed(count: int, server_port: int = 65432) -> Any:
    """A recorded feed of ``count`` frames: echo conversations (handshake, 50 round trips, close) at 40k packets/s."""
    from support.synth import Conversation

    from netlens.capture import PacketRing, RecordedPacketFeed

    ring = PacketRing(max_packets=max(count, 1000), max_bytes=max(256 << 20, count * 200))
    now = 1_767_261_600_000_000_000
    client_port = 20000
    while ring.last < count:
        conv = Conversation(ring, client=("127.0.0.1", client_port), server=("127.0.0.1", server_port),
                            isn=(client_port * 7919, client_port * 104729), start_ns=now, step_ns=25_000)
        client_port = client_port + 1 if client_port < 60999 else 20000
        if count - ring.last < 10:
            conv.client(b"x" * (1 + count % 7), flags="PA")
            while ring.last < count:
                conv.server(flags="A")
            now = conv.now
            break
        conv.handshake()
        for i in range(50):
            if ring.last + 5 > count:
                break
            message = b"Message %d from client %d." % (i, client_port)
            conv.client(message)
            conv.server(message)
        if ring.last + 3 <= count:
            conv.close(first=0)
        now = conv.now + 1_000_000
    return RecordedPacketFeed(ring, server_ports=(server_port,))


def recorded_feeds_with(feed: Any) -> Any:
    """The UI tests' recorded moment, with ``feed`` as its packets."""
    from netlens.ui.feeds import RecordedFeeds

    sys.path.insert(0, str(ROOT / "tests" / "ui"))
    import recording  # the deterministic feed the snapshot tests use

    return RecordedFeeds(recording._server(), recording._events(), recording._kernel(), recording.NOW,
                         packets=feed)


async def refresh_costs(feed: Any, repeats: int) -> dict[str, dict[str, float]]:
    """Time refreshes of the packet list showing ``feed``, cursor at the end and in the middle."""
    from netlens.ui.app import NetlensApp
    from netlens.ui.widgets.packets import PacketList

    app = NetlensApp(recorded_feeds_with(feed), animate=False)
    out: dict[str, dict[str, float]] = {}
    async with app.run_test(size=SIZE) as pilot:
        plist = await wait_for(lambda: app.main is not None and app.main.is_mounted
                               and app.main.query_one(PacketList), 10, "the packet list")
        stored = feed.status().stored
        await wait_for(lambda: plist.row_count() == stored and plist.size.height, 10,
                       "the packet list to show the feed")
        plist.focus()
        screen = app.screen
        console = app.console
        for where in ("end", "middle"):
            if where == "end":
                plist.action_last()
            else:
                plist.follow = False
                mid = plist.row_count() // 2
                plist.cursor = mid
                plist.scroll_to(y=mid - plist.size.height // 2, animate=False, immediate=True)
            await pilot.pause(0.1)
            height = plist.size.height
            rows, list_frame, full_frame = [], [], []
            for _ in range(repeats):
                plist._cache.clear()
                start = time.perf_counter()
                for y in range(height):
                    plist.render_line(y)
                rows.append(time.perf_counter() - start)

                # The packet list repainted as the compositor does after a key press: row cache and
                # line cache invalidated, partial update of its region, encoded for the terminal.
                await pilot.pause()
                plist._cache.clear()
                start = time.perf_counter()
                plist.refresh()
                screen._compositor.update_widgets({plist})
                update = screen._compositor.render_update(screen_stack=app._background_screens)
                if update is not None:
                    update.render_segments(console)
                list_frame.append(time.perf_counter() - start)

                # A full-screen frame (every widget composed and encoded), packet list invalidated.
                await pilot.pause()
                plist._cache.clear()
                start = time.perf_counter()
                plist.refresh()
                screen._compositor.update_widgets({plist})
                update = screen._compositor.render_update(full=True, screen_stack=app._background_screens)
                update.render_segments(console)
                full_frame.append(time.perf_counter() - start)
            first_row = int(plist.scroll_y)
            out[where] = {"rows": statistics.median(rows), "list_frame": statistics.median(list_frame),
                          "full_frame": statistics.median(full_frame), "height": height,
                          "first_row": first_row, "cursor": plist.cursor}
    return out
