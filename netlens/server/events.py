"""Socket events: what the server loop did, one small frozen dataclass per happening.

Every event carries a wall-clock timestamp (``time.time()``, the same clock as
captured packets and kernel snapshots) and the id of the connection it belongs
to (0 for the listening socket). ``describe()`` gives the one human line the
headless server prints; ``to_dict()`` the JSON object of ``--json``.
"""

from __future__ import annotations

import enum
import selectors
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from netlens.display import clock, endpoint
from netlens.textsafe import safe_bytes, safe_str

#: Bytes of payload shown in a human event line before it is cut.
PREVIEW_BYTES = 64
#: Bytes of payload kept in a JSON event line.
JSON_DATA_BYTES = 4096

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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``event`` names the kind, other keys are the fields."""
        data = {"event": self.kind}
        data.update(asdict(self))
        return data


@dataclass(frozen=True, slots=True)
class Listening(SocketEvent):
    """The server socket is bound and listening."""

    address: Address
    mode: str
    kind: ClassVar[str] = "listening"

    def describe(self) -> str:
        return f"listening on {endpoint(*self.address)} ({self.mode} mode)"


@dataclass(frozen=True, slots=True)
class Accepted(SocketEvent):
    """A connection came out of the accept queue."""

    peer: Address
    local: Address
    kind: ClassVar[str] = "accepted"

    def describe(self) -> str:
        return f"accepted {endpoint(*self.peer)} -> {endpoint(*self.local)}"


@dataclass(frozen=True, slots=True)
class MaskChanged(SocketEvent):
    """The selector interest of a socket changed (register/modify/unregister)."""

    old: int
    new: int
    kind: ClassVar[str] = "mask"

    def describe(self) -> str:
        return f"selector mask {mask_name(self.old)} -> {mask_name(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "ts": self.ts, "conn": self.conn,
                "old": mask_name(self.old), "new": mask_name(self.new)}


@dataclass(frozen=True, slots=True)
class Received(SocketEvent):
    """``recv()`` returned ``nbytes`` bytes (``data``)."""

    nbytes: int
    data: bytes
    kind: ClassVar[str] = "recv"

    def describe(self) -> str:
        return f"recv {self.nbytes} bytes: {safe_bytes(self.data, PREVIEW_BYTES)}"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "ts": self.ts, "conn": self.conn, "nbytes": self.nbytes,
                "data": self.data[:JSON_DATA_BYTES].decode("utf-8", "backslashreplace")}


@dataclass(frozen=True, slots=True)
class StageReached(SocketEvent):
    """The connection's message state machine reached ``stage`` (with a detail)."""

    stage: str
    detail: str
    kind: ClassVar[str] = "stage"

    def describe(self) -> str:
        return f"{self.stage}: {safe_str(self.detail)}"


@dataclass(frozen=True, slots=True)
class ResponseQueued(SocketEvent):
    """A response of ``nbytes`` bytes went into the send buffer."""

    nbytes: int
    summary: str
    kind: ClassVar[str] = "queued"

    def describe(self) -> str:
        return f"response queued, {self.nbytes} bytes: {safe_str(self.summary)}"


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
        tail = f", {self.remaining} bytes left (partial)" if self.remaining else ""
        return f"send {self.nbytes} bytes{tail}"


@dataclass(frozen=True, slots=True)
class PeerShutdown(SocketEvent):
    """The peer half-closed (FIN received) while the server still had work to do."""

    kind: ClassVar[str] = "peer-fin"

    def describe(self) -> str:
        return "peer sent FIN (half-close)"


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
        return f"closed by {self.by.value}: {safe_str(self.reason)}"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "ts": self.ts, "conn": self.conn,
                "by": self.by.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ErrorEvent(SocketEvent):
    """Something failed (``op`` says what was attempted); the server carries on."""

    op: str
    message: str
    kind: ClassVar[str] = "error"

    def describe(self) -> str:
        return f"error in {self.op}: {safe_str(self.message)}"


@dataclass(frozen=True, slots=True)
class ControlApplied(SocketEvent):
    """A user command ran on the loop (pause, send, shutdown, option...)."""

    action: str
    detail: str
    kind: ClassVar[str] = "control"

    def describe(self) -> str:
        return f"{self.action}: {safe_str(self.detail)}" if self.detail else self.action


@dataclass(frozen=True, slots=True)
class Stopped(SocketEvent):
    """The server loop ended; every socket is closed."""

    kind: ClassVar[str] = "stopped"

    def describe(self) -> str:
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


def event_line(event: SocketEvent) -> str:
    """The headless server's human line: time, connection, description."""
    stamp = clock(event.ts)
    who = f"#{event.conn}" if event.conn else "server"
    return f"{stamp} {who:>7} {event.describe()}"

