"""A control's result reaches its caller outside the loop's lock, and no control is left unanswered."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import Future

import pytest
from waiting import wait_for

from netlens.server import ControlError, PauseReading, Server, ServerConfig, SetOption, SocketOption


def test_a_result_callback_may_read_the_server_without_deadlock(echo_server: Server) -> None:
    with socket.create_connection(echo_server.address) as client:
        client.sendall(b"hi")
        conn = wait_for(lambda: echo_server.snapshot())[0].conn
        seen: list[object] = []
        done = threading.Event()

        def callback(future: Future[str]) -> None:
            # What a UI does with a result: look at the server again. Inside the lock this would wait forever.
            locked = echo_server._lock.acquire(timeout=2)
            if locked:
                echo_server._lock.release()
            seen.append((locked, future.result(), echo_server.snapshot(conn=conn)[0].options))
            done.set()

        echo_server.submit(SetOption(conn, SocketOption.TCP_NODELAY, 1)).add_done_callback(callback)
        assert done.wait(3)
        assert seen == [(True, f"#{conn} set option: TCP_NODELAY=on", {"TCP_NODELAY": 1})]


def test_every_one_of_many_controls_is_answered_in_order(echo_server: Server) -> None:
    with socket.create_connection(echo_server.address) as client:
        client.sendall(b"hi")
        conn = wait_for(lambda: echo_server.snapshot())[0].conn
        futures = [echo_server.submit(SetOption(conn, SocketOption.TCP_NODELAY, n % 2)) for n in range(200)]
        results = [future.result(5) for future in futures]
    assert results == [f"#{conn} set option: TCP_NODELAY={'on' if n % 2 else 'off'}" for n in range(200)]


def test_controls_queued_when_the_server_stops_fail_with_a_sentence() -> None:
    server = Server(ServerConfig(mode="echo", port=0)).start()
    try:
        hold = threading.Event()
        release = threading.Event()
        timers = server._timers

        def stuck() -> None:
            hold.set()
            release.wait(3)
            timers()

        server._timers = stuck  # type: ignore[method-assign]
        server._wake()
        assert hold.wait(2)
        server._stopping = True
        queued = server.submit(PauseReading(1))
        release.set()
        with pytest.raises(ControlError, match=r"has stopped|is not open"):
            queued.result(3)
    finally:
        release.set()
        server.stop()
    late = server.submit(PauseReading(1))
    with pytest.raises(ControlError, match="not running"):
        late.result(1)
