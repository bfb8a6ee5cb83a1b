"""PacketFeed.find_stream: the newest stream between a socket's two ends, remembered between calls."""

from __future__ import annotations

from support.synth import tcp_frame

from netlens.capture.feed import RecordedPacketFeed
from netlens.capture.frames import LINKTYPE_ETHERNET
from netlens.capture.ring import PacketRing

SERVER = ("127.0.0.1", 7000)


def _connect(ring: PacketRing, ts_ns: int, client_port: int, isn: int) -> None:
    """A handshake from 127.0.0.1:client_port to the server."""
    for sport, dport, seq, ack, flags in ((client_port, 7000, isn, 0, "S"), (7000, client_port, 900, isn + 1, "SA"),
                                          (client_port, 7000, isn + 1, 901, "A")):
        frame = tcp_frame(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags)
        ring.append(ts_ns, frame, len(frame))
        ts_ns += 1000


def test_find_stream_answers_the_newest_stream_and_sees_new_ones() -> None:
    ring = PacketRing(linktype=LINKTYPE_ETHERNET)
    for port in range(40000, 40300):
        _connect(ring, port * 10_000, port, isn=port)
    feed = RecordedPacketFeed(ring, server_ports=(7000,))
    first = feed.find_stream(("127.0.0.1", 40005), SERVER)
    assert first is not None and first.key.client == ("127.0.0.1", 40005)
    # Asked from the server's end too, and again (remembered): the same stream.
    assert feed.find_stream(SERVER, ("127.0.0.1", 40005)) == first
    assert feed.find_stream(("127.0.0.1", 40005), SERVER) == first
    assert feed.find_stream(("::ffff:127.0.0.1", 40005), SERVER) == first  # a v4-mapped socket address
    assert feed.find_stream(("127.0.0.1", 39999), SERVER) is None
    # The same ends reused by a new connection (a new SYN): the newer stream is the answer from now on.
    _connect(ring, 10**10, 40005, isn=77_000)
    _connect(ring, 10**10 + 10**6, 39999, isn=5)
    with feed.lock:
        feed.store.update(limit=None)
    newer = feed.find_stream(("127.0.0.1", 40005), SERVER)
    assert newer is not None and newer.id > first.id and newer.key == first.key
    found = feed.find_stream(("127.0.0.1", 39999), SERVER)
    assert found is not None and found.key.client == ("127.0.0.1", 39999)
