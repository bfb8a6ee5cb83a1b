"""Commands a user (the UI, a test) sends to the server loop.

They travel on a queue and run on the loop thread, so nothing outside the loop
ever touches its sockets. Each returns a short sentence of what it did, or
raises :class:`ControlError` with a sentence of why it could not.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ControlError(Exception):
    """A command that could not run (unknown connection, bad option value...)."""


class SocketOption(str, enum.Enum):
    """Options a user may set on a live connection."""

    TCP_NODELAY = "TCP_NODELAY"
    SO_RCVBUF = "SO_RCVBUF"
    SO_SNDBUF = "SO_SNDBUF"


@dataclass(frozen=True)
class PauseReading:
    """Stop reading the connection: its Recv-Q grows and the advertised window closes."""

    conn: int


@dataclass(frozen=True)
class ResumeReading:
    """Read the connection again after :class:`PauseReading`."""

    conn: int


@dataclass(frozen=True)
class SendBytes:
    """Queue raw bytes to send on the connection."""

    conn: int
    data: bytes


@dataclass(frozen=True)
class ShutdownWrite:
    """``shutdown(SHUT_WR)``: send FIN once the send buffer is flushed, keep reading."""

    conn: int


@dataclass(frozen=True)
class CloseConnection:
    """Close gracefully now (FIN; RST if unread bytes wait, as the kernel does)."""

    conn: int


@dataclass(frozen=True)
class AbortConnection:
    """Close with RST (``SO_LINGER`` on with a zero timeout)."""

    conn: int


@dataclass(frozen=True)
class SetOption:
    """Set a socket option (``TCP_NODELAY`` 0/1, buffer sizes in bytes)."""

    conn: int
    option: SocketOption
    value: int


Control = PauseReading | ResumeReading | SendBytes | ShutdownWrite | CloseConnection | AbortConnection | SetOption
