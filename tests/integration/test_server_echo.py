"""The echo server: the tutorial's multiconn exchange, WRITE interest only while bytes wait, backpressure."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from waiting import wait_for

from netlens.server import Server, ServerConfig, clients
from netlens.server.events import CloseCause, Closed, MaskChanged, PeerShutdown, Received, Sent, SocketEvent


def test_tutorial_multiconn_exchange_on_many_connections(echo_server: Server) -> None:
    socks = [socket.create_connection(echo_server.address, timeout=3) for _ in range(10)]
    for sock in socks:
        for message in clients.TUTORIAL_MESSAGES:
            sock.sendall(message)
    for sock in socks:
        got = b""
        while len(got) < 44:
            got += sock.recv(100)
        assert got == b"Message 1 from client.Message 2 from client."
        sock.close()
    wait_for(lambda: echo_server.stats().active == 0)
    assert echo_server.stats().closed == {"peer": 10}


def test_client_helper_prints_each_step(echo_server: Server) -> None:
    lines: list[str] = []
    echoed = clients.echo(*echo_server.address, [b"one", b"two"], on_event=lines.append)
    assert echoed == b"onetwo"
    assert lines[0].startswith("connected to") and lines[-1] == "closing"


def _three_pings(server: Server, while_open: Callable[[], None] = lambda: None) -> list[SocketEvent]:
    """Three 4-byte echoes on one connection (``while_open`` runs before we close it); the events they made."""
    sub = server.subscribe(from_start=False)
    with socket.create_connection(server.address) as sock:
        for _ in range(3):
            sock.sendall(b"ping")
            assert sock.recv(10) == b"ping"
        while_open()
    wait_for(lambda: server.stats().active == 0)
    return sub.drain()


def test_write_interest_only_while_bytes_wait(echo_server: Server) -> None:
    def nothing_waits() -> None:
        snap = wait_for(lambda: echo_server.snapshot())[0]
        assert snap.mask_name == "READ" and snap.send_buffered == 0 and snap.bytes_in == 12

    masks = [(e.old, e.new) for e in _three_pings(echo_server, nothing_waits) if isinstance(e, MaskChanged)]
    # Registered for READ on accept; the echoes went out at once, so WRITE was never needed.
    assert masks == [(0, 1)]


def test_an_echo_and_its_recv_share_one_clock_reading(echo_server: Server) -> None:
    events = [e for e in _three_pings(echo_server) if isinstance(e, (Received, Sent))]
    assert [type(e) for e in events] == [Received, Sent] * 3
    assert all(recv.ts == sent.ts for recv, sent in zip(events[::2], events[1::2], strict=True))
    assert events[0].ts < events[2].ts < events[4].ts  # ...and each step its own


def test_write_interest_while_the_peer_is_not_reading() -> None:
    from netlens.server import SetOption, SocketOption

    with Server(ServerConfig(mode="echo", port=0)) as server:
        sub = server.subscribe(from_start=False)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.address)
            conn = wait_for(lambda: server.snapshot())[0].conn
            server.submit(SetOption(conn, SocketOption.SO_SNDBUF, 4096)).result(2)
            sock.sendall(b"w" * 100_000)  # more than both buffers hold: some must wait
            snap = wait_for(lambda: [s for s in server.snapshot() if s.send_buffered])[0]
            assert "WRITE" in snap.mask_name
            got = 0
            sock.settimeout(3)
            while got < 100_000:
                got += len(sock.recv(65536))
        wait_for(lambda: server.stats().active == 0)
        masks = [(e.old, e.new) for e in sub.drain() if isinstance(e, MaskChanged)]
        assert (1, 3) in masks and masks[-1][1] & 2 == 0  # WRITE while bytes waited, gone after


def test_half_close_flushes_the_echo_then_closes(echo_server: Server) -> None:
    sub = echo_server.subscribe(from_start=False)
    with socket.create_connection(echo_server.address) as sock:
        sock.sendall(b"x" * 200_000)
        sock.shutdown(socket.SHUT_WR)
        got = 0
        while chunk := sock.recv(65536):
            got += len(chunk)
    assert got == 200_000
    wait_for(lambda: echo_server.stats().active == 0)
    events = sub.drain()
    closed = next(e for e in events if isinstance(e, Closed))
    assert closed.by is CloseCause.PEER


def test_a_peer_that_never_reads_is_not_buffered_forever() -> None:
    limit = 64 * 1024
    with Server(ServerConfig(mode="echo", port=0, echo_buffer_limit=limit, idle_timeout=5)) as server:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.address)
            sock.setblocking(False)
            sent = 0
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    sent += sock.send(b"y" * 65536)
                except BlockingIOError:
                    time.sleep(0.05)
                    try:
                        sent += sock.send(b"y" * 65536)
                    except BlockingIOError:
                        break
            snap = wait_for(lambda: [s for s in server.snapshot() if s.mask_name == "WRITE"])[0]
            # The server stopped reading: its backlog stays near the limit, the rest waits in the kernel.
            assert limit < snap.send_buffered <= limit + 65536
            assert sent > snap.send_buffered


def test_echo_after_reset_keeps_serving_others(echo_server: Server) -> None:
    with socket.create_connection(echo_server.address) as keeper:
        rst = socket.create_connection(echo_server.address)
        rst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        rst.sendall(b"bye")
        time.sleep(0.05)
        rst.close()
        keeper.sendall(b"still here")
        assert keeper.recv(100) == b"still here"
    wait_for(lambda: echo_server.stats().active == 0)


def test_peer_shutdown_event_when_bytes_still_wait() -> None:
    size = 12 * 1024 * 1024  # more than the kernel's send buffer can take (tcp_wmem max 4 MiB)
    with Server(ServerConfig(mode="echo", port=0, echo_buffer_limit=2 * size)) as server:
        sub = server.subscribe(from_start=False)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.address)
            sock.sendall(b"z" * size)
            sock.shutdown(socket.SHUT_WR)
            wait_for(lambda: any(isinstance(e, PeerShutdown) for e in sub.drain()))
            total = 0
            sock.settimeout(3)
            while chunk := sock.recv(1 << 20):
                total += len(chunk)
            assert total == size
