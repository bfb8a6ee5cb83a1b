"""The socket calls that keep the GIL (netlens.server.heldcalls), on real loopback sockets.

Each must behave as the Python call it replaces: the same results, and the
same ``OSError`` subclasses for would-block, reset by peer, broken pipe and
closed descriptors, so the loop's error handling does not depend on the layer.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from netlens.server import Server, ServerConfig, clients
from netlens.server.events import CloseCause
from netlens.server.heldcalls import EPOLL_CTL_ADD, EPOLL_CTL_MOD, HeldCalls, load
from netlens.server.load import LoadRunner
from netlens.server.loopstate import CLOSED


@pytest.fixture
def calls() -> HeldCalls:
    held = load(1 << 16)
    assert held is not None, "Linux's libc has accept4, recv, send, epoll_ctl, ioctl and close"
    return held


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair: (server side, non-blocking; client side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=3)
        served, _ = listener.accept()
    served.setblocking(False)
    try:
        yield served, client
    finally:
        served.close()
        client.close()


def reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_recv_gets_the_bytes_then_would_block_then_eof(calls: HeldCalls, pair: tuple[socket.socket, ...]) -> None:
    served, client = pair
    client.sendall(b"hello \x00\xff")
    time.sleep(0.05)
    assert calls.recv(served.fileno(), 4) == b"hell"
    assert calls.recv(served.fileno(), 100) == b"o \x00\xff"
    with pytest.raises(BlockingIOError):
        calls.recv(served.fileno(), 100)
    client.shutdown(socket.SHUT_WR)
    time.sleep(0.05)
    assert calls.recv(served.fileno(), 100) == b""


def test_recv_after_a_reset_by_the_peer_raises_connection_reset(calls: HeldCalls,
                                                                pair: tuple[socket.socket, ...]) -> None:
    served, client = pair
    reset(client)
    time.sleep(0.05)
    with pytest.raises(ConnectionResetError):
        calls.recv(served.fileno(), 100)


def test_send_to_a_peer_that_does_not_read_is_partial_then_would_block(calls: HeldCalls,
                                                                       pair: tuple[socket.socket, ...]) -> None:
    served, client = pair
    chunk = bytearray(b"x" * (1 << 20))
    total = 0
    for _ in range(64):
        try:
            sent = calls.send(served.fileno(), chunk)
        except BlockingIOError:
            break
        assert 0 < sent <= len(chunk)
        total += sent
    else:
        pytest.fail("the kernel took 64 MiB for a peer that never reads")
    # Partial: the kernel took less than everything offered, then nothing at all.
    assert total % len(chunk) != 0 or total < 64 * len(chunk)
    client.settimeout(3)
    got = 0
    while got < total:
        got += len(client.recv(1 << 20))
    assert got == total  # every byte counted as sent arrived


def test_send_after_the_peer_reset_raises_a_reset_or_broken_pipe(calls: HeldCalls,
                                                                pair: tuple[socket.socket, ...]) -> None:
    served, client = pair
    reset(client)
    time.sleep(0.05)
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        for _ in range(3):
            calls.send(served.fileno(), b"are you there?")
            time.sleep(0.02)


def test_calls_on_a_closed_descriptor_raise_bad_descriptor(calls: HeldCalls) -> None:
    sock = socket.socket()
    fd = sock.detach()
    socket.socket(fileno=fd).close()
    for call in (lambda: calls.recv(fd, 10), lambda: calls.send(fd, b"x"), lambda: calls.accept(fd)):
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == 9  # EBADF


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_accept_gives_a_non_blocking_socket_and_the_peer_python_would(calls: HeldCalls, host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, 0), family=family) as listener:
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            calls.accept(listener.fileno())
        with socket.create_connection(listener.getsockname()[:2], timeout=3) as client:
            time.sleep(0.05)
            fd, peer = calls.accept(listener.fileno())
            with socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, 0, fd) as served:
                assert peer == client.getsockname()[:2]
                assert served.getpeername()[:2] == peer
                with pytest.raises(BlockingIOError):  # non-blocking: nothing sent yet
                    served.recv(10)


def test_epoll_ctl_registers_and_modifies_like_select_epoll(calls: HeldCalls,
                                                            pair: tuple[socket.socket, ...]) -> None:
    served, client = pair
    with select.epoll() as epoll:
        calls.epoll_ctl(epoll.fileno(), EPOLL_CTL_ADD, served.fileno(), select.EPOLLIN)
        assert epoll.poll(0) == []
        client.sendall(b"x")
        assert epoll.poll(1) == [(served.fileno(), select.EPOLLIN)]
        calls.epoll_ctl(epoll.fileno(), EPOLL_CTL_MOD, served.fileno(), select.EPOLLOUT)
        assert epoll.poll(1) == [(served.fileno(), select.EPOLLOUT)]
        with pytest.raises(FileExistsError):  # EEXIST, as epoll.register() raises
            calls.epoll_ctl(epoll.fileno(), EPOLL_CTL_ADD, served.fileno(), select.EPOLLIN)


def test_unread_counts_the_receive_queue_and_close_socket_sends_rst_when_bytes_wait(
        calls: HeldCalls, pair: tuple[socket.socket, ...]) -> None:
    served, client = pair
    assert calls.unread(served.fileno()) == 0
    client.sendall(b"12345")
    time.sleep(0.05)
    assert calls.unread(served.fileno()) == 5
    calls.close_socket(served)
    assert served.fileno() == -1  # the socket object no longer owns a descriptor
    client.settimeout(3)
    with pytest.raises(ConnectionResetError):  # unread bytes: the kernel answered with RST
        client.recv(10)


def test_a_held_server_serves_a_flood_and_a_reset_mid_request() -> None:
    """The loop on the held calls: resets and floods are handled, other clients keep working."""
    config = ServerConfig(mode="search", port=0, idle_timeout=5.0, hold_gil=True)
    with Server(config) as server:
        events = server.subscribe()
        rude = socket.create_connection(server.address, timeout=3)
        rude.sendall(b"\x00\x40{")  # a third of a request
        time.sleep(0.05)
        reset(rude)
        result = LoadRunner(*server.address, mode="search", clients=8, requests=50).run()
        assert (result.completed, result.errors) == (400, 0)
        assert clients.search(*server.address, "ring").response.value == {
            "result": "In the caves beneath the Misty Mountains. \U0001f48d"}
        deadline = time.monotonic() + 3
        while server.stats().closed.get(CloseCause.RESET.value, 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.stats().closed.get(CloseCause.RESET.value) == 1
        assert server.stats().closed.get(CloseCause.SERVER.value) == 401
        closes = [r for r in events.drain_records() if r[0] == CLOSED]
        assert any("reset by peer" in r[-1] for r in closes)

