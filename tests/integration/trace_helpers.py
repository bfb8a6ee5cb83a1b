"""Helpers for the trace integration tests: a session that always stops, cookies, and waiting for events.

Every session uses the ``nlt`` instance prefix and a kernel filter on the
test's own ports; sockets are closed by the tests' ``finally`` blocks.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator

from netlens.trace import Kind, TraceEvent, TraceFilter, TraceSession

SO_COOKIE = 57  # include/uapi/asm-generic/socket.h; Python's socket module lacks it


def cookie_of(sock: socket.socket) -> int:
    """The kernel's cookie of ``sock`` (``getsockopt(SO_COOKIE)``)."""
    return int(struct.unpack("=Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0])


def listener(bind: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a kernel-chosen port, not yet listening (so tracing can start before listen())."""
    sock = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, 0))
    return sock


def abort(*socks: socket.socket | None) -> None:
    """Close sockets with an RST, so no TIME_WAIT is left behind."""
    for sock in socks:
        if sock is None:
            continue
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class Trace:
    """A started :class:`TraceSession` and every event it delivered so far."""

    def __init__(self, session: TraceSession) -> None:
        self.session = session
        self.events: list[TraceEvent] = []

    def collect(self) -> list[TraceEvent]:
        """Drain what arrived; returns all events so far."""
        self.events.extend(self.session.drain())
        return self.events

    def wait_for(self, predicate: Callable[[list[TraceEvent]], object], timeout: float = 5.0) -> list[TraceEvent]:
        """Drain until ``predicate(events)`` is true (AssertionError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while not predicate(self.collect()):
            if time.monotonic() > deadline:
                kinds = [f"{e.event}:{e.sport}->{e.dport}" for e in self.events]
                raise AssertionError(f"trace condition not met within {timeout} s; events: {kinds}")
            self.session.wait(0.05)
        return self.events

    def of(self, sock: int, kind: type[TraceEvent] | None = None) -> list[TraceEvent]:
        """Events of trace socket ``sock`` (optionally of one type)."""
        return [e for e in self.events if e.sock == sock and (kind is None or isinstance(e, kind))]

    def states_of(self, cookie: int) -> list[str]:
        """The states the socket with ``cookie`` went through so far (empty before its cookie is known)."""
        socks = {e.sock for e in self.events if e.cookie == cookie}
        changes = [e for e in self.events if e.sock in socks and e.event == "state"]
        return [changes[0].old, *(e.new for e in changes)] if changes else []  # type: ignore[attr-defined]

    def sock_of(self, cookie: int) -> int:
        """The trace socket number whose events carry ``cookie``."""
        socks = {e.sock for e in self.events if e.cookie == cookie}
        assert len(socks) == 1, f"cookie {cookie:#x} seen on sockets {socks}"
        return socks.pop()


@contextlib.contextmanager
def tracing(ports: Iterable[int], kinds: Iterable[Kind] | None = None) -> Iterator[Trace]:
    """A trace session on ``ports`` (instance prefix ``nlt``), always stopped and removed afterwards."""
    session = TraceSession(TraceFilter.of(ports=ports), kinds, prefix="nlt")
    session.start()
    try:
        yield Trace(session)
    finally:
        session.stop()
        assert session.path is not None and not session.path.exists()
        assert session.error is None, session.error
