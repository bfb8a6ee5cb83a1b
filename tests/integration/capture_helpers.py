"""Helpers for the capture integration tests: a capture that always stops, and clients that make known traffic.

Every helper is bounded in time and closes what it opens. The traffic is on
127.0.0.1 only, on ports chosen by the kernel (port 0).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from netlens.capture import Capture, PacketRing, PacketStore, PacketSummary
from netlens.proto import encode_request


def capture_possible() -> str | None:
    """None if this process may open a packet socket; otherwise why not."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        return "packet capture needs root or CAP_NET_RAW (CI runs these tests as root)"
    except OSError as exc:  # e.g. a kernel without AF_PACKET
        return f"packet sockets are unavailable here: {exc}"
    sock.close()
    return None


requires_capture = pytest.mark.skipif(capture_possible() is not None, reason=str(capture_possible()))


@contextlib.contextmanager
def capturing(port: int, **kwargs: object) -> Iterator[Capture]:
    """A capture of ``tcp port <port>`` on lo that is stopped however the block ends."""
    ring = kwargs.pop("ring", None) or PacketRing()
    capture = Capture(iface="lo", port=port, ring=ring, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield capture
    finally:
        capture.stop()


def settle(capture: Capture, store: PacketStore, until: int = 0, timeout: float = 3.0) -> None:
    """Wait until at least ``until`` packets arrived and nothing new came for a moment, then analyse."""
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    seen = capture.ring.last
    while time.monotonic() < deadline:
        capture.wait(0.05)
        if capture.ring.last != seen:
            seen = capture.ring.last
            quiet_since = time.monotonic()
        elif seen >= until and time.monotonic() - quiet_since > 0.15:
            break
    store.update(limit=None)


def search(port: int, value: str = "morpheus", byte_by_byte: bool = False, delay: float = 0.002) -> bytes:
    """One search request on a new connection; returns the raw response bytes (read to EOF)."""
    request = encode_request("search", value)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if byte_by_byte:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(request)):
                sock.sendall(request[i:i + 1])
                time.sleep(delay)
        else:
            sock.sendall(request)
        response = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return response
            response += chunk


def reset_after_connect(port: int) -> tuple[str, int]:
    """Connect, then close with SO_LINGER 0 so the kernel sends RST; returns the client address."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    local = sock.getsockname()
    time.sleep(0.05)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return local


@contextlib.contextmanager
def stalled_reader() -> Iterator[tuple[socket.socket, int]]:
    """A listener whose accepted connection is never read, with a tiny receive buffer."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # inherited by accepted sockets
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener, listener.getsockname()[1]
    finally:
        listener.close()


def fill_until_blocked(port: int, listener: socket.socket, seconds: float = 0.8) -> None:
    """Write to a peer that never reads until the window closes, let probes happen, then reset."""
    writer = socket.create_connection(("127.0.0.1", port), timeout=5)
    reader, _ = listener.accept()
    try:
        writer.setblocking(False)
        chunk = b"x" * 1024
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                writer.send(chunk)
            except BlockingIOError:
                time.sleep(0.02)
    finally:
        for sock in (writer, reader):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()


def rows(store: PacketStore) -> list[PacketSummary]:
    """Every stored packet's summary."""
    return store.summaries(store.first, store.last)


def run_cli(*argv: str, timeout: float = 30, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m netlens ARGV`` to completion with captured text output."""
    return subprocess.run([sys.executable, "-m", "netlens", *argv], capture_output=True, text=True,
                          timeout=timeout, **kwargs)  # type: ignore[call-overload,no-any-return]


def start_cli(*argv: str) -> subprocess.Popen[str]:
    """Start ``python -m netlens ARGV`` with piped output; the caller must wait for or kill it."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "netlens", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_line(stream: object, needle: str, timeout: float = 20) -> str:
    """Read lines from a pipe until one contains ``needle`` (fails the test after ``timeout``)."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout
    seen = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                break
            line = stream.readline()  # type: ignore[attr-defined]
            if not line:
                break
            seen.append(line)
            if needle in line:
                return line  # type: ignore[no-any-return]
    finally:
        selector.close()
    raise AssertionError(f"no line containing {needle!r} within {timeout} s; got {seen!r}")
