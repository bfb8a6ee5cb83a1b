"""Server settings, with the defaults the workshop uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from netlens import DEFAULT_HOST, DEFAULT_PORT
from netlens.proto import DEFAULT_MAX_CONTENT_LENGTH, DEFAULT_REPLY_CACHE_BYTES
from netlens.server.bus import DEFAULT_BUDGET, RECORD_OVERHEAD

Mode = Literal["search", "echo"]
MODES: tuple[Mode, ...] = ("search", "echo")


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server loop needs to know before it starts."""

    mode: Mode = "search"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Close a connection after this many seconds without progress (0: never).
    idle_timeout: float = 30.0
    #: Search mode: close a connection whose request is not complete this many seconds
    #: after it was accepted, however steadily it trickles in (0: never).
    request_timeout: float = 60.0
    #: Largest ``content-length`` a search request may declare.
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    backlog: int = 128
    #: Record socket events for subscribers (off only to measure what they cost).
    publish_events: bool = True
    #: Events kept for subscribers that fall behind (a power of two)...
    event_capacity: int = 1 << 16
    #: ...and the bytes they may hold (estimated; the oldest go first).
    event_budget: int = DEFAULT_BUDGET
    #: Bytes the search server's cache of encoded replies may hold (0: no cache).
    reply_cache_bytes: int = DEFAULT_REPLY_CACHE_BYTES
    #: Echo mode stops reading a peer whose unsent echo exceeds this many bytes,
    #: so a client that writes but never reads cannot make the server buffer forever.
    echo_buffer_limit: int = 1 << 20
    #: Bytes asked of each ``recv()``.
    recv_size: int = 1 << 16

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is outside 0-65535")
        if self.idle_timeout < 0 or self.request_timeout < 0:
            raise ValueError("timeouts must be 0 (never) or a positive number of seconds")
        if self.backlog < 0:
            raise ValueError("the backlog cannot be negative")
        if self.event_budget < RECORD_OVERHEAD or self.reply_cache_bytes < 0:
            raise ValueError(f"the event budget must be at least {RECORD_OVERHEAD} bytes, "
                             f"and the reply cache budget 0 or more")
        if self.max_content_length < 0:
            raise ValueError("the content-length cap cannot be negative")
