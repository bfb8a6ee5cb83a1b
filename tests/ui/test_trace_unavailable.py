"""Without root or tracefs the app works and the inspector says, in one sentence, what is missing."""

from __future__ import annotations

import recording
from test_app_live import text_of
from test_snapshots import select_connection_2

from netlens.ui.app import NetlensApp
from netlens.ui.feeds import RecordedFeeds
from netlens.ui.trace_feed import RecordedTraceFeed
from netlens.ui.widgets.inspector import SocketInspector

# What LiveTraceFeed.start() says as a user without root (tests/integration/test_ui_trace_feed.py checks it live).
SENTENCE = ("No kernel events: kernel tracing needs root (it reads tracefs at /sys/kernel/tracing): "
            "run netlens with sudo.")


async def test_inspector_says_what_is_missing_and_the_rest_works() -> None:
    feeds = RecordedFeeds(recording._server(), recording._events(), recording._kernel(), recording.NOW,
                          packets=recording._packets(), trace=RecordedTraceFeed([], unavailable=SENTENCE))
    app = NetlensApp(feeds, animate=False)
    async with app.run_test(size=(180, 60)) as pilot:
        await select_connection_2(pilot)
        text = text_of(app.screen.query_one(SocketInspector).query_one("Static"), 200)
        assert SENTENCE in text
        assert "server's view" in text and "kernel's view" in text  # everything else is there
        # The diagram still shows where the socket is now, from sock_diag.
        assert "ESTABLISHED" in text and "TCP state machine" in text
        assert "state timeline" not in text
        assert "kernel trace off" in app.screen.query_one("#status").content.plain
