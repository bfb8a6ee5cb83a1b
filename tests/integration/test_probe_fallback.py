"""The psutil fallback: forced by the environment, or taken when the kernel refuses sock_diag."""

from __future__ import annotations

import errno
import os

import pytest
from probe_helpers import Sockets

from netlens.probe import BACKEND_ENV, Prober, netlink, take_snapshot


@pytest.fixture
def socks():
    made = Sockets()
    yield made
    made.close_all()


def refuse(*_args: object) -> None:
    raise PermissionError(errno.EPERM, "Operation not permitted")


def check_fallback_rows(snapshot, listener, client, server) -> None:  # type: ignore[no-untyped-def]
    assert snapshot.source == "psutil"
    by_fd = {s.fd: s for s in snapshot.sockets if s.pid == os.getpid()}
    listen, cli, srv = by_fd[listener.fileno()], by_fd[client.fileno()], by_fd[server.fileno()]
    assert (listen.state, listen.local_port, listen.remote_port) == ("LISTEN", listener.getsockname()[1], 0)
    assert (cli.state, cli.remote_port) == ("ESTABLISHED", listener.getsockname()[1])
    assert srv.state == "ESTABLISHED" and isinstance(srv.process, str)
    for sock in snapshot.sockets:
        # What psutil cannot see is unknown, not zero.
        assert sock.recv_q is None and sock.send_q is None and sock.inode is None and sock.uid is None
        assert sock.tcp_info is None and sock.memory is None and sock.timer is None and sock.congestion is None


def test_environment_forces_the_fallback(socks: Sockets, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socks.listener()
    client, server = socks.pair(listener)
    monkeypatch.setenv(BACKEND_ENV, "psutil")
    snap = take_snapshot(port=listener.getsockname()[1])
    assert snap.note == (
        f"{BACKEND_ENV}=psutil chose the psutil fallback, so queues, inodes, TCP_INFO, memory and timers are unknown."
    )
    check_fallback_rows(snap, listener, client, server)


def test_a_refused_netlink_socket_falls_back_with_a_reason(socks: Sockets, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socks.listener()
    client, server = socks.pair(listener)
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setattr(netlink, "open_sock_diag", refuse)
    snap = Prober().snapshot(port=listener.getsockname()[1])
    assert snap.note is not None
    assert snap.note.startswith("The kernel refused its sock_diag netlink interface (Operation not permitted)")
    assert snap.note.count(".") == 1 and snap.note.endswith(".")  # one sentence
    check_fallback_rows(snap, listener, client, server)


def test_sock_diag_backend_does_not_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netlink, "open_sock_diag", refuse)
    with pytest.raises(PermissionError):
        Prober(backend="sock_diag").snapshot(port=65432)


def test_unknown_backend_is_a_user_error() -> None:
    from netlens.errors import UserError

    with pytest.raises(UserError, match="Unknown probe backend"):
        Prober(backend="carrier-pigeon").snapshot()
