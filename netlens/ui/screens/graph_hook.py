"""How the main screen opens the graph and conversations screens: which feed, which stream.

Kept out of the main screen so that it needs only two one-line actions. Both
screens ask the packets panel's feed for plain data (see
:class:`~netlens.capture.stats.views.StatsViews`): the graph of one stream,
the conversation table of all of them, wherever the packets are.
"""

from __future__ import annotations

from typing import Any

from netlens.capture.feed import PacketFeed, StreamView
from netlens.ui.screens.conversations import ConversationsScreen
from netlens.ui.screens.graph import GraphScreen, kernel_sampler
from netlens.ui.screens.packet import PacketScreen


def _feed(main: Any) -> PacketFeed | None:
    """The packets panel's feed, or None (and a notice) when there is nothing to show."""
    feed: PacketFeed | None = getattr(main.packets, "feed", None)
    if feed is None:
        main.app.notify("Nothing captured yet.", severity="warning", markup=False)
    return feed


def _selected_stream(main: Any, feed: PacketFeed) -> StreamView | None:
    sock = main.selected_socket()
    if sock is not None:
        stream = feed.find_stream((sock.local_addr, sock.local_port), (sock.remote_addr, sock.remote_port))
        if stream is not None:
            return stream
    no = main.packets.selected_number()
    return feed.stream_of(no) if no is not None else None


def open_graph(main: Any, stream_id: int | None = None) -> None:
    """Push the graph screen of ``stream_id`` (default: the selected connection's stream)."""
    feed = _feed(main)
    if feed is None:
        return
    stream: StreamView | None
    if stream_id is None:
        stream = _selected_stream(main, feed)
    else:
        try:
            stream = feed.stream(stream_id)
        except KeyError:
            stream = None
    if stream is None:
        main.app.notify("No captured packets for that connection yet.", severity="warning", markup=False)
        return

    def open_packet(no: int | None) -> None:
        if no is not None:
            main.app.push_screen(PacketScreen(feed, no))

    sampler = kernel_sampler(lambda: getattr(main, "last_snapshot", None), stream)
    main.app.push_screen(GraphScreen(feed, stream, kernel=sampler), open_packet)


def open_conversations(main: Any) -> None:
    """Push the conversation table; Enter on a row opens that stream's graphs."""
    feed = _feed(main)
    if feed is None:
        return

    def open_stream(stream_id: int | None) -> None:
        if stream_id is not None:
            open_graph(main, stream_id)

    main.app.push_screen(ConversationsScreen(feed), open_stream)
