"""A connection's two ends read at one moment: ``both_ends`` and ``settle_pairs`` on real sockets.

A dump reads a connection's two ends at different moments; the stale end a
dump can return is made here the same way, by keeping a record from an
earlier read of the kernel beside a fresh one.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest
from waiting import wait_for

from netlens.probe import netlink
from netlens.probe.lookups import LOOKUP_BATCH, both_ends, ends_disagree, look_up, pair_of, settle_pairs
from netlens.probe.model import SocketInfo
from netlens.probe.sockdiag import dump_tcp

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux-only")


@pytest.fixture
def diag() -> Iterator[socket.socket]:
    sock = netlink.open_sock_diag()
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """A listener, a client and the server's end of their connection, on loopback."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    server_end, _ = listener.accept()
    try:
        yield listener, client, server_end
    finally:
        for sock in (client, server_end, listener):
            sock.close()


def by_pair(sockets: list[SocketInfo]) -> dict[tuple[tuple[str, int], tuple[str, int]], SocketInfo]:
    return {pair_of(s): s for s in sockets if s.state != "LISTEN"}


def test_both_ends_names_each_connection_once_with_its_ends_side_by_side() -> None:
    a, b, c = ("127.0.0.1", 1000), ("127.0.0.1", 2000), ("127.0.0.1", 3000)
    ends = both_ends([(a, b), (b, a), (c, a), (a, b)])
    assert ends == [(a, b), (b, a), (c, a), (a, c)]
    # A datagram of lookups holds a whole number of connections: no pair is read across two datagrams.
    assert LOOKUP_BATCH % 2 == 0


@pytest.mark.parametrize(("one", "other", "disagree"), [
    ("ESTABLISHED", "ESTABLISHED", False),
    ("FIN_WAIT1", "ESTABLISHED", False),   # the FIN is on its way
    ("FIN_WAIT1", "CLOSE_WAIT", False),    # delivered, its ACK on its way
    ("FIN_WAIT2", "CLOSE_WAIT", False),
    ("TIME_WAIT", "LAST_ACK", False),
    ("CLOSING", "CLOSING", False),         # a simultaneous close
    ("TIME_WAIT", "ESTABLISHED", True),    # it received a FIN the peer never sent
    ("TIME_WAIT", "CLOSE_WAIT", True),
    ("CLOSE_WAIT", "ESTABLISHED", True),
    ("CLOSE_WAIT", "CLOSE_WAIT", True),
    ("LAST_ACK", "ESTABLISHED", True),
    ("FIN_WAIT2", "ESTABLISHED", True),    # its FIN acknowledged by a peer that never received it
    ("TIME_WAIT", "FIN_WAIT1", True),
])
def test_ends_disagree_follows_the_fins(one: str, other: str, disagree: bool) -> None:
    assert ends_disagree(one, other) is disagree
    assert ends_disagree(other, one) is disagree


def test_a_stale_end_beside_a_fresh_one_is_read_again(diag: socket.socket, connection: tuple[
        socket.socket, socket.socket, socket.socket]) -> None:
    listener, client, server_end = connection
    port = listener.getsockname()[1]
    before = by_pair(dump_tcp(diag, port=port))
    client_pair = (client.getsockname()[:2], client.getpeername()[:2])
    assert before[client_pair].state == "ESTABLISHED"
    # The server closes first, then the client: the server's end goes to TIME_WAIT, the client's is gone.
    server_end.close()
    wait_for(lambda: client.recv(1) == b"", timeout=5)
    client.close()
    server_pair = (client_pair[1], client_pair[0])

    def server_in_time_wait() -> bool:
        found = by_pair(look_up(diag, port, [server_pair]))
        return server_pair in found and found[server_pair].state == "TIME_WAIT"

    wait_for(server_in_time_wait, timeout=5)
    fresh_server = by_pair(look_up(diag, port, [server_pair]))[server_pair]
    # What a dump read a moment apart returns: the client's end from before, the server's from now.
    listener_record = [s for s in dump_tcp(diag, port=port) if s.state == "LISTEN"]
    torn = [*listener_record, before[client_pair], fresh_server]
    settled = settle_pairs(diag, port, torn)
    assert [s.state for s in settled] == ["LISTEN", "TIME_WAIT"]
    assert pair_of(settled[1]) == server_pair


def test_ends_that_agree_keep_the_dump_s_records(diag: socket.socket, connection: tuple[
        socket.socket, socket.socket, socket.socket]) -> None:
    listener, _client, _server_end = connection
    port = listener.getsockname()[1]
    dumped = dump_tcp(diag, port=port)
    assert sorted(s.state for s in dumped) == ["ESTABLISHED", "ESTABLISHED", "LISTEN"]
    settled = settle_pairs(diag, port, dumped)
    assert len(settled) == 3 and all(a is b for a, b in zip(settled, dumped, strict=True))
