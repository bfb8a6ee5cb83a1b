"""Binding the listening socket, with every failure as one sentence for the user."""

from __future__ import annotations

import errno
import socket

from netlens.display import endpoint
from netlens.errors import UserError


class PortInUseError(UserError):
    """The address is taken by another socket (exit code 2)."""


def bind_listener(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking socket listening on ``host:port``; :class:`UserError` when that is impossible."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host!r}: {exc.strerror}.", exit_code=2) from None
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Restarting a server whose last connections sit in TIME_WAIT must not fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        where = endpoint(str(sockaddr[0]), port)
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"{where} is already in use by another program; pick another port with --port "
                f"(or --port 0 for any free one).", exit_code=2) from None
        if exc.errno == errno.EACCES:
            raise UserError(f"permission denied to listen on {where}; ports below 1024 need root.",
                            exit_code=2) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"{host} is not an address of this machine.", exit_code=2) from None
        raise UserError(f"cannot listen on {where}: {exc.strerror}.", exit_code=2) from None
    return sock
