"""StatsViews: each screen that closes lets go of its own part only."""

from __future__ import annotations

from support.synth import Conversation

from netlens.capture import PacketRing, PacketStore
from netlens.capture.stats.views import StatsViews


def test_a_closing_screen_takes_only_what_it_used() -> None:
    ring = PacketRing()
    for client_port in (50001, 50002):
        conv = Conversation(ring, client=("127.0.0.1", client_port))
        conv.handshake()
        conv.client(b"ping")
        conv.server(b"pong")
        conv.close()
    store = PacketStore(ring, server_ports=(65432,))
    store.update()
    views = StatsViews(ring, store)
    first, second = views.follower(1), views.follower(2)
    graphed, counted = views.graph_state(first, 100).graphed, views.count_conversations(100)
    assert graphed > 0 and counted == len(ring) and len(views.conversations().rows) == 2
    views.release()  # the conversations screen closed (it may have opened a graph of stream 1)
    assert views.follower(1) is first and views.graph_state(first, 100).graphed == graphed
    assert views.conversations().rows == () and views.conversations().behind == counted
    views.release(2)  # a graph of stream 2 closed
    assert views.follower(1) is first and views.follower(2) is not second
