"""ConnectionTracker on real loopback sockets: open, send, half-close, close, seen through sock_diag."""

from __future__ import annotations

import socket
import sys

import pytest
from probe_helpers import Sockets
from waiting import wait_for

from netlens.probe import ConnectionTracker, Prober, RowStatus, TrackerUpdate

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux-only")


@pytest.fixture
def socks():
    made = Sockets()
    yield made
    made.close_all()


def test_a_connection_is_one_row_from_open_to_time_wait_to_closed(socks: Sockets) -> None:
    prober = Prober(backend="sock_diag")
    tracker = ConnectionTracker(linger=60)
    listener = socks.listener()
    port = listener.getsockname()[1]
    tracker.update(prober.snapshot(port))

    def step(condition) -> TrackerUpdate:  # type: ignore[no-untyped-def]
        """Feed snapshots to the tracker until ``condition(rows by key)`` holds; return that update."""

        def attempt() -> TrackerUpdate | None:
            update = tracker.update(prober.snapshot(port))
            return update if condition({r.key: r for r in update.rows}) else None

        return wait_for(attempt, timeout=5, interval=0.02)

    # open
    client, server = socks.pair(listener)
    key = ("IPv4", *client.getsockname(), *client.getpeername())
    update = step(lambda rows: key in rows)
    assert rows_of(update)[key].status is RowStatus.NEW and key in update.added
    first_seen = rows_of(update)[key].first_seen

    # send: the client's bytes_acked moves once the server's kernel acknowledges them
    client.sendall(b"x" * 100)
    update = step(lambda rows: rows[key].socket.tcp_info and rows[key].socket.tcp_info.bytes_acked == 101)
    row = rows_of(update)[key]
    assert row.first_seen == first_seen
    assert row.status is RowStatus.CHANGED and "bytes_acked" in row.changed

    # half-close: same row, new state
    client.shutdown(socket.SHUT_WR)
    update = step(lambda rows: rows[key].socket.state == "FIN_WAIT2")
    assert "state" in rows_of(update)[key].changed and rows_of(update)[key].first_seen == first_seen

    # close both ends: the client's end lingers in TIME_WAIT, still the same row. The
    # server reads everything first: closing with unread bytes would send a RST instead.
    assert server.recv(1000) == b"x" * 100 and server.recv(1000) == b""
    client.close()
    server.close()
    update = step(lambda rows: rows[key].socket.state == "TIME_WAIT")
    row = rows_of(update)[key]
    assert row.first_seen == first_seen and {"state", "owners"} <= row.changed and row.socket.owners == ()

    # and the server's end, gone from the kernel, is closed
    server_key = ("IPv4", *client_addr(key))
    update = step(lambda rows: rows.get(server_key) is not None and rows[server_key].status is RowStatus.CLOSED)
    assert rows_of(update)[server_key].closed_at is not None


def rows_of(update: TrackerUpdate) -> dict:
    return {r.key: r for r in update.rows}


def client_addr(key: tuple) -> tuple:
    """The server end's (local addr, port, remote addr, port) for the client row ``key``."""
    _family, laddr, lport, raddr, rport = key
    return (raddr, rport, laddr, lport)
