"""Socket-level helpers of the server loop: addresses, the spare descriptor, cookies, unread bytes, RST.

Each is one system call (or two) with its failure turned into a plain value,
so the loop's own code reads as the teaching model: accept, recv, send, close.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
from typing import Any

from netlens.server.events import Address

#: getsockopt(SOL_SOCKET, SO_COOKIE): the kernel's 64-bit id of a socket (Linux >= 4.x;
#: not every Python names the constant).
SO_COOKIE = getattr(socket, "SO_COOKIE", 57)
_COOKIE = struct.Struct("=Q")
_INT = struct.Struct("i")
_unpack_int = _INT.unpack
_ioctl = fcntl.ioctl
_FIONREAD = termios.FIONREAD


def address_of(raw: Any) -> Address:
    """``(host, port)`` of a socket address (IPv6 ones come with flowinfo and scope id)."""
    # IPv6 addresses come as 4-tuples (host, port, flowinfo, scope_id).
    return (str(raw[0]), int(raw[1]))


def open_reserve() -> int | None:
    """A spare descriptor (on /dev/null), released to shed one connection when out of descriptors."""
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def cookie_of(sock: socket.socket) -> int | None:
    """The socket's SO_COOKIE, or None where the kernel does not give one."""
    try:
        return int(_COOKIE.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0])
    except (OSError, struct.error):
        return None


def unread_bytes(sock: socket.socket | int) -> int:
    """Bytes waiting in the socket's receive queue (ioctl FIONREAD, a.k.a. SIOCINQ); 0 if unknown.

    ``sock``: the socket or its descriptor (the loop keeps it, saving a fileno() call).
    """
    try:
        return int(_unpack_int(_ioctl(sock, _FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return 0


def reset_close(sock: socket.socket) -> None:
    """Close with RST: SO_LINGER on, timeout 0."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
