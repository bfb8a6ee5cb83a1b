"""Socket events: what the server loop did, one small frozen dataclass per happening.

Every event carries a wall-clock timestamp (``time.time()``, the same clock as
captured packets and kernel snapshots) and the id of the connection it belongs
to (0 for the listening socket). ``describe()`` gives the one human line the
headless server prints; ``to_dict()`` the JSON object of ``--json``.

The loop publishes raw records, not dataclasses (see :mod:`netlens.server.bus`);
:func:`record_line` and :func:`record_dict` format a record directly, through
the same per-kind describers the dataclasses use, so a printer of thousands of
lines a second never builds an object per event.
"""

from __future__ import annotations

import enum
import selectors
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from netlens.display import clock, endpoint, plural
from netlens.textsafe import safe_bytes, safe_short

#: Bytes of payload shown in a human event line before it is cut.
PREVIEW_BYTES = 64
#: Bytes of each recv() a Received event keeps (what a screen shows: the text line
#: shows 64, JSON and the events panel this many). The full count is ``nbytes``.
RECORD_DATA_BYTES = 256
#: Longest text field (a detail, reason or summary) printed in a human line. The
#: fields themselves are bounded where they are made (summaries by the codec's
#: describe(), reasons and errors by the loop), so every record stays small.
TEXT_LIMIT = 200

Address = tuple[str, int]


def mask_name(mask: int) -> str:
    """``READ``, ``WRITE``, ``READ|WRITE`` or ``-`` for a selectors event mask."""
    names = []
    if mask & selectors.EVENT_READ:
        names.append("READ")
    if mask & selectors.EVENT_WRITE:
        names.append("WRITE")
    return "|".join(names) or "-"


class CloseCause(str, enum.Enum):
    """Who or what ended a connection."""

    SERVER = "server"  # the protocol said so (search: response sent)
    PEER = "peer"  # the peer sent FIN (recv returned b"")
    RESET = "reset"  # the peer sent RST (ECONNRESET / EPIPE)
    TIMEOUT = "timeout"  # idle or stalled longer than the idle timeout
    ERROR = "error"  # bytes that broke the protocol, or a socket error
    CONTROL = "control"  # a user command: close or abort
    STOP = "stop"  # the server stopped


@dataclass(frozen=True, slots=True)
class SocketEvent:
    """Base of every event: when (wall clock) and which connection (0: listener)."""

    ts: float
    conn: int

    kind: ClassVar[str] = "event"

    def describe(self) -> str:
        """One human line, safe to print to a terminal (wire bytes escaped)."""
        return self.kind

    def fields(self) -> tuple[Any, ...]:
        """The fields after ``ts`` and ``conn``, in order (what a record holds after them)."""
        values = (getattr(self, name) for name in _FIELD_NAMES[EVENT_CODES[type(self)]])
        return tuple(value.value if isinstance(value, enum.Enum) else value for value in values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``event`` names the kind, other keys are the fields."""
        return record_dict((EVENT_CODES[type(self)], self.ts, self.conn, *self.fields()))


@dataclass(frozen=True, slots=True)
class Listening(SocketEvent):
    """The server socket is bound and listening."""

    address: Address
    mode: str
    kind: ClassVar[str] = "listening"

    def describe(self) -> str:
        return _listening(self.address, self.mode)


@dataclass(frozen=True, slots=True)
class Accepted(SocketEvent):
    """A connection came out of the accept queue; ``cookie`` is the socket's SO_COOKIE.

    The cookie is the kernel's id of the socket (the same number sock_diag and
    the tracepoints report), so later views can key this connection across them.
    """

    peer: Address
    local: Address
    cookie: int | None = None
    kind: ClassVar[str] = "accepted"

    def describe(self) -> str:
        return _accepted(self.peer, self.local, self.cookie)


@dataclass(frozen=True, slots=True)
class MaskChanged(SocketEvent):
    """The selector interest of a socket changed (register/modify/unregister)."""

    old: int
    new: int
    kind: ClassVar[str] = "mask"

    def describe(self) -> str:
        return _mask(self.old, self.new)


@dataclass(frozen=True, slots=True)
class Received(SocketEvent):
    """``recv()`` returned ``nbytes`` bytes; ``data`` is their start (at most RECORD_DATA_BYTES)."""

    nbytes: int
    data: bytes
    kind: ClassVar[str] = "recv"

    def describe(self) -> str:
        return _recv(self.nbytes, self.data)


@dataclass(frozen=True, slots=True)
class StageReached(SocketEvent):
    """The connection's message state machine reached ``stage`` (with a detail)."""

    stage: str
    detail: str
    kind: ClassVar[str] = "stage"

    def describe(self) -> str:
        return _stage(self.stage, self.detail)


@dataclass(frozen=True, slots=True)
class ResponseQueued(SocketEvent):
    """A response of ``nbytes`` bytes went into the send buffer."""

    nbytes: int
    summary: str
    kind: ClassVar[str] = "queued"

    def describe(self) -> str:
        return _queued(self.nbytes, self.summary)


@dataclass(frozen=True, slots=True)
class Sent(SocketEvent):
    """``send()`` accepted ``nbytes``; ``remaining`` still wait in the send buffer."""

    nbytes: int
    remaining: int
    kind: ClassVar[str] = "send"

    @property
    def partial(self) -> bool:
        """True when the kernel took only part of the send buffer."""
        return self.remaining > 0

    def describe(self) -> str:
        return _sent(self.nbytes, self.remaining)


@dataclass(frozen=True, slots=True)
class PeerShutdown(SocketEvent):
    """The peer half-closed (FIN received) while the server still had work to do."""

    kind: ClassVar[str] = "peer-fin"

    def describe(self) -> str:
        return _peer_fin()


@dataclass(frozen=True, slots=True)
class Closed(SocketEvent):
    """The connection is closed; ``by`` says who ended it and ``reason`` why."""

    by: CloseCause
    reason: str
    kind: ClassVar[str] = "closed"

    def __post_init__(self) -> None:
        # Records carry the cause as its plain string (see netlens.server.bus).
        if not isinstance(self.by, CloseCause):
            object.__setattr__(self, "by", CloseCause(self.by))

    def describe(self) -> str:
        return _closed(self.by.value, self.reason)


@dataclass(frozen=True, slots=True)
class ErrorEvent(SocketEvent):
    """Something failed (``op`` says what was attempted); the server carries on."""

    op: str
    message: str
    kind: ClassVar[str] = "error"

    def describe(self) -> str:
        return _error(self.op, self.message)


@dataclass(frozen=True, slots=True)
class ControlApplied(SocketEvent):
    """A user command ran on the loop (pause, send, shutdown, option...)."""

    action: str
    detail: str
    kind: ClassVar[str] = "control"

    def describe(self) -> str:
        return _control(self.action, self.detail)


@dataclass(frozen=True, slots=True)
class Stopped(SocketEvent):
    """The server loop ended; every socket is closed."""

    kind: ClassVar[str] = "stopped"

    def describe(self) -> str:
        return _stopped()


# ------------------------------------------------------------ describers
# One function per kind, taking the record's fields: the dataclasses and the
# record printers share them. Every text from the wire is escaped and cut here.


def _text(value: str) -> str:
    return safe_short(value, TEXT_LIMIT)


def _listening(address: Address, mode: str) -> str:
    return f"listening on {endpoint(*address)} ({mode} mode)"


def _accepted(peer: Address, local: Address, cookie: int | None = None) -> str:
    return f"accepted {endpoint(*peer)} -> {endpoint(*local)}"


def _mask(old: int, new: int) -> str:
    return f"selector mask {mask_name(old)} -> {mask_name(new)}"


def _recv(nbytes: int, data: bytes) -> str:
    return f"recv {plural(nbytes, 'byte')}: {safe_bytes(data, PREVIEW_BYTES)}"


def _stage(stage: str, detail: str) -> str:
    return f"{stage}: {_text(detail)}"


def _queued(nbytes: int, summary: str) -> str:
    return f"response queued, {plural(nbytes, 'byte')}: {_text(summary)}"


def _sent(nbytes: int, remaining: int) -> str:
    tail = f", {plural(remaining, 'byte')} left (partial)" if remaining else ""
    return f"send {plural(nbytes, 'byte')}{tail}"


def _peer_fin() -> str:
    return "peer sent FIN (half-close)"


def _closed(by: str, reason: str) -> str:
    return f"closed by {by}: {_text(reason)}"


def _error(op: str, message: str) -> str:
    return f"error in {op}: {_text(message)}"


def _control(action: str, detail: str) -> str:
    return f"{action}: {_text(detail)}" if detail else action


def _stopped() -> str:
    return "stopped; every socket closed"


#: Every concrete event class, in a fixed order: a record names its class by index here.
EVENT_TYPES: tuple[type[SocketEvent], ...] = (
    Listening, Accepted, MaskChanged, Received, StageReached, ResponseQueued,
    Sent, PeerShutdown, Closed, ErrorEvent, ControlApplied, Stopped,
)
#: The same classes by their ``kind`` (for parsers of ``--json`` output).
EVENT_KINDS: dict[str, type[SocketEvent]] = {cls.kind: cls for cls in EVENT_TYPES}
#: A class's index in EVENT_TYPES: what the server loop records instead of the class.
EVENT_CODES: dict[type[SocketEvent], int] = {cls: code for code, cls in enumerate(EVENT_TYPES)}
#: The describer of each event code (a record's fields after ts and conn go in).
DESCRIBERS: tuple[Callable[..., str], ...] = (
    _listening, _accepted, _mask, _recv, _stage, _queued,
    _sent, _peer_fin, _closed, _error, _control, _stopped,
)
_FIELD_NAMES: tuple[tuple[str, ...], ...] = tuple(
    tuple(f.name for f in fields(cls))[2:] for cls in EVENT_TYPES)
_KINDS: tuple[str, ...] = tuple(cls.kind for cls in EVENT_TYPES)
_MASK_CODE = EVENT_CODES[MaskChanged]
_RECV_CODE = EVENT_CODES[Received]


def record_dict(record: tuple[Any, ...]) -> dict[str, Any]:
    """The ``--json`` object of one raw record ``(code, ts, conn, *fields)``.

    Masks are named (``READ|WRITE``), received bytes decoded (invalid UTF-8 as
    ``\\xNN``); strings are as the wire sent them (the JSON writer escapes them).
    """
    code = record[0]
    data: dict[str, Any] = {"event": _KINDS[code], "ts": record[1], "conn": record[2]}
    values = record[3:]
    if code == _MASK_CODE:
        values = (mask_name(values[0]), mask_name(values[1]))
    elif code == _RECV_CODE:
        values = (values[0], values[1].decode("utf-8", "backslashreplace"))
    # A recorded Accepted may predate the cookie field: zip stops at the shorter.
    for name, value in zip(_FIELD_NAMES[code], values, strict=False):
        data[name] = value
    return data


def record_line(record: tuple[Any, ...]) -> str:
    """The headless server's human line of one raw record: time, connection, description."""
    conn = record[2]
    who = f"#{conn}" if conn else "server"
    return f"{clock(record[1])} {who:>7} {DESCRIBERS[record[0]](*record[3:])}"


def event_line(event: SocketEvent) -> str:
    """The headless server's human line: time, connection, description."""
    stamp = clock(event.ts)
    who = f"#{event.conn}" if event.conn else "server"
    return f"{stamp} {who:>7} {event.describe()}"
