"""The server's limits and wording over real sockets: deadlines, FIN/RST, echo, errors once, cookies, memory."""

from __future__ import annotations

import json
import socket
import struct
import time

from server_helpers import decode_one, exchange
from waiting import wait_for

from netlens.probe import Prober
from netlens.server import (
    CloseConnection,
    PauseReading,
    Server,
    ServerConfig,
    ShutdownWrite,
)
from netlens.server.events import Accepted, Closed, ErrorEvent, Received, StageReached


def closed_event(sub, conn: int | None = None) -> Closed:  # type: ignore[no-untyped-def]
    seen: list[Closed] = []

    def find() -> Closed | None:
        seen.extend(e for e in sub.drain() if isinstance(e, Closed) and conn in (None, e.conn))
        return seen[0] if seen else None

    return wait_for(find)


def test_a_trickled_request_meets_the_whole_request_deadline() -> None:
    config = ServerConfig(mode="search", port=0, idle_timeout=5.0, request_timeout=0.6)
    with Server(config) as server:
        sub = server.subscribe()
        header = json.dumps({"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8",
                             "content-length": 1_000_000}).encode()
        with socket.create_connection(server.address) as sock:
            sock.sendall(struct.pack(">H", len(header)) + header)
            started = time.monotonic()
            # One byte every 0.1 s: never idle for the 5 s idle timeout, yet never done.
            while time.monotonic() - started < 3:
                try:
                    sock.sendall(b"x")
                except OSError:
                    break
                time.sleep(0.1)
            closed = closed_event(sub)
        assert time.monotonic() - started < 2.5
        assert closed.by.value == "timeout" and "request deadline" in closed.reason
        assert "not complete 0.6 s after the connection opened" in closed.reason
        assert server.stats().deadline_closes == 1


def test_close_says_rst_when_unread_bytes_remain_and_fin_otherwise(search_server: Server) -> None:
    sub = search_server.subscribe()
    with socket.create_connection(search_server.address) as sock:
        conn = wait_for(lambda: search_server.snapshot())[0].conn
        assert search_server.submit(PauseReading(conn)).result(2)
        sock.sendall(b"\x00\x10unread bytes")
        time.sleep(0.2)
        result = search_server.submit(CloseConnection(conn)).result(2)
        assert "RST sent: 14 bytes were left unread" in result
        sock.settimeout(2)
        try:
            got = sock.recv(100)
        except ConnectionResetError:
            got = None
        assert got is None  # the kernel did send RST, as the event said
    assert "RST sent, not FIN" in closed_event(sub, conn).reason
    with socket.create_connection(search_server.address) as sock:
        conn = wait_for(lambda: search_server.snapshot())[0].conn
        result = search_server.submit(CloseConnection(conn)).result(2)
        assert result.endswith("FIN sent")
        sock.settimeout(2)
        assert sock.recv(100) == b""  # FIN: an orderly end of stream


def test_echo_never_claims_a_flush_it_could_not_do(echo_server: Server) -> None:
    sub = echo_server.subscribe()
    with socket.create_connection(echo_server.address) as sock:
        conn = wait_for(lambda: echo_server.snapshot())[0].conn
        sock.sendall(b"first")
        assert sock.recv(100) == b"first"
        echo_server.submit(ShutdownWrite(conn)).result(2)
        assert sock.recv(100) == b""  # our FIN
        sock.sendall(b"after our FIN")
        sock.shutdown(socket.SHUT_WR)
        closed = closed_event(sub, conn)
    assert "echo flushed" not in closed.reason
    assert "13 bytes could not be echoed (our sending side was shut down)" in closed.reason
    stats = echo_server.stats()
    assert (stats.echoed_messages, stats.echoed_bytes, stats.requests) == (1, 5, 0)
    with socket.create_connection(echo_server.address) as sock:
        sock.sendall(b"x")
        assert sock.recv(10) == b"x"
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b""
    assert closed_event(sub).reason == "peer closed; echo flushed"


def test_a_protocol_error_is_logged_once_with_its_stage(search_server: Server) -> None:
    sub = search_server.subscribe()
    answer = exchange(search_server.address, struct.pack(">H", 5) + b"{bad}")
    assert "not valid JSON" in decode_one(answer).value["error"]
    events = sub.drain()
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and "while reading the JSON header" in errors[0].message
    assert not [e for e in events if isinstance(e, StageReached) and e.stage == "protocol error"]


def test_deep_nesting_over_the_wire_gets_an_error_answer(search_server: Server) -> None:
    header = (b'{"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8", '
              b'"content-length": 2, "n": ' + b"[" * 985 + b"]" * 985 + b"}")
    answer = decode_one(exchange(search_server.address, struct.pack(">H", len(header)) + header + b"{}"))
    assert "nests arrays/objects deeper than 32 levels" in answer.value["error"]


def test_cookie_is_the_kernels_and_events_keep_only_a_preview(echo_server: Server) -> None:
    sub = echo_server.subscribe()
    with socket.create_connection(echo_server.address) as sock:
        snap = wait_for(lambda: echo_server.snapshot())[0]
        kernel = Prober().snapshot(port=echo_server.address[1])
        server_side = [s for s in kernel.sockets if s.state == "ESTABLISHED"
                       and (s.local_port, s.remote_port) == (echo_server.address[1], sock.getsockname()[1])]
        assert snap.cookie is not None and [s.cookie for s in server_side] == [snap.cookie]
        payload = b"z" * (1 << 20)
        sock.sendall(payload)
        got = 0
        while got < len(payload):
            got += len(sock.recv(1 << 20))
    # The loop publishes a pass's events after that pass's sends: the client may hold every echoed byte
    # a moment before the last "received" event is on the bus.
    events: list[object] = []

    def received_all() -> bool:
        events.extend(sub.drain())
        return sum(e.nbytes for e in events if isinstance(e, Received)) >= len(payload)

    wait_for(received_all)
    accepted = next(e for e in events if isinstance(e, Accepted))
    assert accepted.cookie == snap.cookie
    received = [e for e in events if isinstance(e, Received)]
    assert sum(e.nbytes for e in received) == len(payload)
    assert max(len(e.data) for e in received) <= 256 < max(e.nbytes for e in received)
    assert echo_server.bus.bytes < 600 * len(events)
