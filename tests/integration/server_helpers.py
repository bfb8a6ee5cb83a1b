"""Small socket helpers for the server's integration tests."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Callable

from netlens.proto import Decoder, Message, MessageComplete


def wait_for(predicate: Callable[[], object], timeout: float = 3.0, interval: float = 0.01) -> object:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def exchange(address: tuple[str, int], data: bytes, timeout: float = 3.0, shut: bool = False) -> bytes:
    """Send raw ``data``, then read until the server closes; returns everything it sent."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def decode_one(data: bytes) -> Message:
    """The single message in ``data``."""
    (done,) = [e for e in Decoder().feed(data) if isinstance(e, MessageComplete)]
    return done.message


def ss_queues(port: int) -> list[tuple[str, int, int, str, str]]:
    """(state, recv_q, send_q, local, peer) of every TCP socket on ``port``, as ``ss`` reports it."""
    out = subprocess.run(["ss", "-Htan", f"( sport = :{port} or dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        rows.append((parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4]))
    return rows
