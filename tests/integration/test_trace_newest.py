"""A session that decodes only the newest records of each reading cycle (what the app's sampled helper runs).

Real loopback sockets, traced on their own port with a reading interval long
enough that the whole scene lands in one cycle. Needs root.
"""

from __future__ import annotations

import socket
import time

from trace_helpers import abort, cookie_of, listener

from netlens.trace import Kind, TraceFilter, TraceSession, materialize
from netlens.trace.events import StateChange


def test_older_records_are_only_noted_yet_the_newest_keep_their_socket_and_cookie() -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    # One reading cycle for the whole scene: the reader wakes after `interval` (or a 10 % full buffer).
    session = TraceSession(TraceFilter.of(ports=(port,)), prefix="nlt", interval=30.0, decode_newest=1)
    kept = client = served = None
    others: list[socket.socket] = []
    session.start()
    try:
        server_listener.listen()
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        served, _ = server_listener.accept()
        client.sendall(b"ping")  # tcp_probe records (which carry the cookie) on both ends
        assert served.recv(4) == b"ping"
        served.sendall(b"pong")
        assert client.recv(4) == b"pong"
        for _ in range(4):  # more sockets' records, so the client's early ones are old
            other = socket.create_connection(("127.0.0.1", port), timeout=5)
            others.append(other)
            others.append(server_listener.accept()[0])
        client.shutdown(socket.SHUT_WR)  # the client's FIN: its last change is FIN_WAIT1 -> FIN_WAIT2
        assert served.recv(4) == b""
        time.sleep(0.2)  # the ACK of the FIN (delayed or not) has come: nothing more happens
    finally:
        stats = session.stop()
        kept = session.drain_records()
        cookie = cookie_of(client) if client is not None else 0
        abort(client, served, *others, server_listener)
    assert session.error is None
    assert stats.skipped > 10 and len(kept) == 1  # the older bulk noted, not decoded
    assert stats.events == stats.delivered + stats.filtered + stats.skipped
    newest = materialize(kept[0])
    # The client's FIN_WAIT1 -> FIN_WAIT2 (the ACK of its FIN) carries no cookie of its own: the
    # cookie comes from the client's tcp_probe records, which were only noted.
    assert isinstance(newest, StateChange) and (newest.old, newest.new) == ("FIN_WAIT1", "FIN_WAIT2")
    assert newest.cookie == cookie and newest.dport == port and newest.kind == Kind.STATE
