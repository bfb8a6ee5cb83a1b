"""Small socket helpers for the server's integration tests."""

from __future__ import annotations

import socket

from netlens.proto import Decoder, Message, MessageComplete


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
