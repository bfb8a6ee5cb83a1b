"""The kernel's account of real loopback connections: state sequences, resets with reasons, retransmissions.

Each test makes its own sockets on 127.0.0.1 (or in a namespace it creates),
traces only their port, and checks the sequence the TCP state machine went
through, joined by cookie with ``SO_COOKIE`` and sock_diag. Needs root.
"""

from __future__ import annotations

import socket
import struct
import time
from itertools import pairwise

import pytest
from support.trace_netns import drop_tcp_to, inside, network_namespace
from trace_helpers import Trace, abort, cookie_of, listener, tracing

from netlens.probe import take_snapshot
from netlens.trace.events import (
    CongestionState,
    Drop,
    ResetReceived,
    ResetSent,
    Retransmit,
    SocketDestroyed,
    StateChange,
)
from netlens.trace.timeline import TimelineBook


def states(trace: Trace, sock: int) -> list[str]:
    changes = [e for e in trace.of(sock, StateChange) if isinstance(e, StateChange)]
    return [changes[0].old, *(e.new for e in changes)] if changes else []


def destroyed(trace: Trace, cookie: int) -> bool:
    return any(isinstance(e, SocketDestroyed) and e.cookie == cookie for e in trace.events)


def test_server_closes_first_and_time_wait_comes_from_sock_diag() -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    client = server = None
    try:
        with tracing([port]) as trace:
            server_listener.listen()
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            server, _ = server_listener.accept()
            client_cookie, server_cookie = cookie_of(client), cookie_of(server)
            client_port = client.getsockname()[1]
            client.sendall(b"ping")
            assert server.recv(4) == b"ping"
            server.close()  # the server closes first
            assert client.recv(10) == b""  # its FIN arrived
            trace.wait_for(lambda _: "FIN_WAIT2" in trace.states_of(server_cookie))
            waiting = take_snapshot(port, processes=False)
            client.close()
            trace.wait_for(lambda _: destroyed(trace, client_cookie))
            after = take_snapshot(port, processes=False)
    finally:
        abort(client, server_listener)

    server_sock, client_sock = trace.sock_of(server_cookie), trace.sock_of(client_cookie)
    assert states(trace, server_sock) == ["LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE"]
    assert states(trace, client_sock) == ["CLOSE", "SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"]
    # sock_diag's cookie of the live client is SO_COOKIE is the tracepoints' sock_cookie.
    live = [s for s in waiting.sockets if s.local_port == client_port and s.state == "CLOSE_WAIT"]
    assert [s.cookie for s in live] == [client_cookie]
    # The orphaned server is a timewait socket, in FIN_WAIT2 until the client's FIN, then TIME_WAIT.
    timewait = [s for s in after.sockets if s.local_port == port and s.state == "TIME_WAIT"]
    # A new (mini) socket, but it inherits the cookie the full socket had been given.
    assert [s.cookie for s in timewait] == [server_cookie]
    book = TimelineBook()
    book.add(trace.events)
    book.fold_sockets(waiting.sockets, waiting.ts)
    book.fold_sockets(after.sockets, after.ts)
    server_timeline, client_timeline = book.by_cookie(server_cookie), book.by_cookie(client_cookie)
    assert server_timeline is not None and client_timeline is not None
    assert server_timeline.states == ["LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT"]
    time_wait = server_timeline.transitions[-1]
    last_ack = next(t for t in client_timeline.transitions if t.new == "LAST_ACK")
    assert time_wait.source == "sock_diag" and time_wait.time == last_ack.time  # started by the client's FIN
    assert server_timeline.timewait is not None
    assert 0 < server_timeline.timewait.expires - after.ts <= 60.0


def test_a_refused_connect_is_a_reset_with_reason_no_socket() -> None:
    closed_port = listener()  # bound, never listening: nobody accepts on this port
    port = closed_port.getsockname()[1]
    client = socket.socket()
    try:
        with tracing([port]) as trace:
            with pytest.raises(ConnectionRefusedError):
                client.connect(("127.0.0.1", port))
            cookie = cookie_of(client)
            client.close()
            trace.wait_for(lambda _: destroyed(trace, cookie))
    finally:
        abort(client, closed_port)
    sent = [e for e in trace.events if isinstance(e, ResetSent)]
    assert [(e.sport, e.reason, e.state, e.sock) for e in sent] == [(port, "NO_SOCKET", "UNKNOWN", 0)]
    sock = trace.sock_of(cookie)
    assert states(trace, sock) == ["CLOSE", "SYN_SENT", "CLOSE"]
    received = trace.of(sock, ResetReceived)
    assert [e.reason for e in received if isinstance(e, ResetReceived)] == ["NO_SOCKET"]  # the sender's reason
    drops = [e for e in trace.events if isinstance(e, Drop)]
    assert [(e.reason, e.src, e.sport, e.dport) for e in drops] == [("NO_SOCKET", "127.0.0.1", port, sent[0].dport)]


@pytest.mark.parametrize(("how", "reason"), [("linger-zero", "TCP_STATE"), ("unread-data", "TCP_ABORT_ON_CLOSE")])
def test_an_abortive_close_sends_a_reset_with_its_reason(how: str, reason: str) -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    client = server = None
    try:
        with tracing([port]) as trace:
            server_listener.listen()
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            server, _ = server_listener.accept()
            client_cookie, server_cookie = cookie_of(client), cookie_of(server)
            if how == "linger-zero":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                server.sendall(b"never read")
                time.sleep(0.05)
            client.close()
            trace.wait_for(lambda _: destroyed(trace, client_cookie)
                           and any(isinstance(e, ResetReceived) for e in trace.events))
    finally:
        abort(server, server_listener)
    client_sock, server_sock = trace.sock_of(client_cookie), trace.sock_of(server_cookie)
    sent = trace.of(client_sock, ResetSent)
    assert [(e.reason, e.dport) for e in sent if isinstance(e, ResetSent)] == [(reason, port)]
    assert states(trace, client_sock)[-2:] == ["ESTABLISHED", "CLOSE"]
    assert states(trace, server_sock)[-2:] == ["ESTABLISHED", "CLOSE"]
    received = trace.of(server_sock, ResetReceived)
    assert [e.reason for e in received if isinstance(e, ResetReceived)] == [reason]


def test_a_socket_connecting_to_its_own_port_opens_and_closes_simultaneously() -> None:
    lonely = socket.socket()
    lonely.bind(("127.0.0.1", 0))
    port = lonely.getsockname()[1]
    try:
        with tracing([port]) as trace:
            lonely.connect(("127.0.0.1", port))
            cookie = cookie_of(lonely)
            lonely.close()
            trace.wait_for(lambda _: destroyed(trace, cookie))
            after = take_snapshot(port, processes=False)
    finally:
        lonely.close()
    assert states(trace, trace.sock_of(cookie)) == [
        "CLOSE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "CLOSING", "CLOSE"]
    book = TimelineBook()
    book.add(trace.events)
    book.fold_sockets(after.sockets, after.ts)
    timeline = book.by_cookie(cookie)
    assert timeline is not None and timeline.states[-3:] == ["FIN_WAIT1", "CLOSING", "TIME_WAIT"]


def test_retransmissions_after_a_drop_in_a_namespace_back_off() -> None:
    with network_namespace() as netns:
        with inside(netns):
            server_listener = listener()
        port = server_listener.getsockname()[1]
        client = server = None
        try:
            with tracing([port]) as trace:
                with inside(netns):
                    server_listener.listen()
                    client = socket.create_connection(("127.0.0.1", port), timeout=5)
                server, _ = server_listener.accept()
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                server.sendall(b"x")
                assert client.recv(1) == b"x"  # the client's tcp_probe tells the trace its cookie
                cookie = cookie_of(client)
                drop_tcp_to(netns, port)
                sent_at = time.time()
                client.sendall(b"lost")

                def retransmissions(_: object) -> list[Retransmit]:
                    mine = {e.sock for e in trace.events if e.cookie == cookie}
                    return [e for e in trace.events if isinstance(e, Retransmit) and e.sock in mine]

                trace.wait_for(lambda events: len(retransmissions(events)) >= 4, timeout=8)
        finally:
            abort(client, server, server_listener)
    again = retransmissions(trace.events)[:4]
    assert {e.state for e in again} == {"ESTABLISHED"} and {e.dport for e in again} == {port}
    times = [sent_at] + [e.time for e in again]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    # The first is the tail-loss probe; then the retransmission timer doubles each time.
    assert all(b > 1.5 * a for a, b in pairwise(gaps[1:])), gaps
    print("retransmission gaps", [round(g, 3) for g in gaps])
    assert gaps[-1] > 0.3
    loss = [e for e in trace.events if isinstance(e, CongestionState) and e.cookie == cookie and e.state == "Loss"]
    assert loss, "the retransmission timer puts the socket in the Loss state"
