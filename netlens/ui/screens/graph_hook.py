"""How the main screen opens the graph and conversations screens: where the packets are, which stream.

Kept out of the main screen so that it needs only two one-line actions. The
packets panel hands out its ring and store (and the lock that guards the
store, when the panel's packet feed has one); the graph follows one live
stream of that store, the conversation table all of them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from netlens.capture.ring import PacketRing
from netlens.capture.streams import Stream
from netlens.ui.screens.conversations import ConversationsScreen
from netlens.ui.screens.graph import GraphScreen, kernel_sampler
from netlens.ui.screens.packet import PacketScreen


def packet_source(packets: Any) -> tuple[PacketRing, Any, AbstractContextManager[Any]] | None:
    """(ring, store, lock) behind the packets panel, or None before anything was captured."""
    feed = getattr(packets, "feed", None)
    if feed is not None and hasattr(feed, "ring") and hasattr(feed, "store"):
        return feed.ring, feed.store, feed.lock
    ring, store = getattr(packets, "ring", None), getattr(packets, "store", None)
    if ring is None or store is None:
        return None
    return ring, store, nullcontext()


def _selected_stream(main: Any, store: Any) -> Stream | None:
    sock = main.selected_socket()
    if sock is not None:
        local, remote = (sock.local_addr, sock.local_port), (sock.remote_addr, sock.remote_port)
        streams: list[Stream] = store.streams()
        for candidate in reversed(streams):
            if candidate.key.matches(local, remote):
                return candidate
    no = main.packets.selected_number()
    stream = store.stream_of(no) if no is not None else None
    return stream if isinstance(stream, Stream) else None


def open_graph(main: Any, stream_id: int | None = None) -> None:
    """Push the graph screen of ``stream_id`` (default: the selected connection's stream)."""
    source = packet_source(main.packets)
    if source is None:
        main.app.notify("Nothing captured yet.", severity="warning", markup=False)
        return
    ring, store, lock = source
    with lock:
        stream = _selected_stream(main, store) if stream_id is None else store.stream(stream_id)
    if stream is None:
        main.app.notify("No captured packets for that connection yet.", severity="warning", markup=False)
        return

    # The packet screen reads from the panel's packet feed where there is one, else from the store.
    packets_of = getattr(main.packets, "feed", None) or store

    def open_packet(no: int | None) -> None:
        if no is not None:
            main.app.push_screen(PacketScreen(packets_of, no))

    sampler = kernel_sampler(lambda: getattr(main, "last_snapshot", None), stream)
    main.app.push_screen(GraphScreen(ring, stream, kernel=sampler), open_packet)


def open_conversations(main: Any) -> None:
    """Push the conversation table; Enter on a row opens that stream's graphs."""
    source = packet_source(main.packets)
    if source is None:
        main.app.notify("Nothing captured yet.", severity="warning", markup=False)
        return
    ring, store, lock = source

    def open_stream(stream_id: int | None) -> None:
        if stream_id is not None:
            open_graph(main, stream_id)

    main.app.push_screen(ConversationsScreen(ring, store, lock), open_stream)
