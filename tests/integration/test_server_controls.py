"""User commands on live connections, run on the loop thread."""

from __future__ import annotations

import socket
import time

import pytest
from probe_helpers import run_ss
from waiting import wait_for

from netlens.server import (
    AbortConnection,
    CloseConnection,
    ControlError,
    PauseReading,
    ResumeReading,
    SendBytes,
    Server,
    SetOption,
    ShutdownWrite,
    SocketOption,
)
from netlens.server.events import CloseCause, Closed, ControlApplied


def connected(server: Server) -> tuple[socket.socket, int]:
    sock = socket.create_connection(server.address, timeout=3)
    snap = wait_for(lambda: [s for s in server.snapshot() if s.peer == sock.getsockname()[:2]])[0]
    return sock, snap.conn


def server_side_recv_q(server: Server, client: socket.socket) -> int:
    port = server.address[1]
    me = client.getsockname()[1]
    return next(s.recv_q for s in run_ss(port) if s.local_port == port and s.remote_port == me)


def test_pause_reading_lets_recv_q_grow_and_resume_drains_it(echo_server: Server) -> None:
    sock, conn = connected(echo_server)
    with sock:
        assert echo_server.submit(PauseReading(conn)).result(2).startswith(f"#{conn} paused reading")
        wait_for(lambda: echo_server.snapshot()[0].mask == 0)
        sock.sendall(b"q" * 5000)
        assert wait_for(lambda: server_side_recv_q(echo_server, sock) == 5000)
        snap = echo_server.snapshot()[0]
        assert snap.paused and snap.bytes_in == 0
        echo_server.submit(ResumeReading(conn)).result(2)
        got = b""
        while len(got) < 5000:
            got += sock.recv(65536)
        assert server_side_recv_q(echo_server, sock) == 0


def test_paused_connection_is_not_closed_as_idle() -> None:
    from netlens.server import ServerConfig

    with Server(ServerConfig(mode="echo", port=0, idle_timeout=0.3)) as server:
        sock, conn = connected(server)
        with sock:
            server.submit(PauseReading(conn)).result(2)
            time.sleep(0.8)
            assert [s.conn for s in server.snapshot()] == [conn]


def test_send_bytes_and_shutdown_write(echo_server: Server) -> None:
    sub = echo_server.subscribe(from_start=False)
    sock, conn = connected(echo_server)
    with sock:
        echo_server.submit(SendBytes(conn, b"hello from the server")).result(2)
        assert sock.recv(100) == b"hello from the server"
        echo_server.submit(ShutdownWrite(conn)).result(2)
        assert sock.recv(100) == b""  # FIN from the server...
        sock.sendall(b"but I can still talk")  # ...while it keeps reading
        wait_for(lambda: echo_server.snapshot()[0].bytes_in == 20)
        with pytest.raises(ControlError, match="shut down its sending side"):
            echo_server.submit(SendBytes(conn, b"x")).result(2)
    actions = [e.action for e in sub.drain() if isinstance(e, ControlApplied)]
    assert actions == ["send queued", "shutdown(SHUT_WR)"]


def test_close_sends_fin_and_abort_sends_rst(echo_server: Server) -> None:
    sub = echo_server.subscribe(from_start=False)
    graceful, conn1 = connected(echo_server)
    abrupt, conn2 = connected(echo_server)
    with graceful, abrupt:
        echo_server.submit(CloseConnection(conn1)).result(2)
        assert graceful.recv(10) == b""
        echo_server.submit(AbortConnection(conn2)).result(2)
        with pytest.raises(ConnectionResetError):
            abrupt.recv(10)
    closes = {e.conn: e for e in sub.drain() if isinstance(e, Closed)}
    assert closes[conn1].by is CloseCause.CONTROL and "RST" in closes[conn2].reason


def test_socket_options_report_what_the_kernel_uses(echo_server: Server) -> None:
    sock, conn = connected(echo_server)
    with sock:
        assert echo_server.submit(SetOption(conn, SocketOption.TCP_NODELAY, 1)).result(2).endswith("TCP_NODELAY=on")
        result = echo_server.submit(SetOption(conn, SocketOption.SO_RCVBUF, 4096)).result(2)
        assert result.endswith("SO_RCVBUF=4096 (kernel uses 8192)")
        echo_server.submit(SetOption(conn, SocketOption.SO_SNDBUF, 8192)).result(2)
        assert echo_server.snapshot()[0].options == {"TCP_NODELAY": 1, "SO_RCVBUF": 8192, "SO_SNDBUF": 16384}
        with pytest.raises(ControlError, match="positive number of bytes"):
            echo_server.submit(SetOption(conn, SocketOption.SO_RCVBUF, 0)).result(2)


def test_unknown_connection_is_a_clear_error(echo_server: Server) -> None:
    with pytest.raises(ControlError, match="connection #999 is not open"):
        echo_server.submit(CloseConnection(999)).result(2)


def test_snapshot_of_one_connection_and_without_buffers(echo_server: Server) -> None:
    first, conn1 = connected(echo_server)
    second, conn2 = connected(echo_server)
    with first, second:
        echo_server.submit(PauseReading(conn1)).result(2)
        echo_server.submit(SendBytes(conn1, b"queued for you")).result(2)
        wait_for(lambda: echo_server.snapshot(conn=conn1)[0].bytes_out == 14)
        (only,) = echo_server.snapshot(conn=conn1)
        assert only.conn == conn1 and only.last_in == b""
        light = {s.conn: s for s in echo_server.snapshot(buffers=False)}
        assert set(light) == {conn1, conn2} and light[conn1].send_buffer == b""
        assert echo_server.snapshot(conn=999) == []
