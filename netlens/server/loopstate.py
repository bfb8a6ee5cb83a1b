"""What the server loop holds, shared by its parts (accepting, reading/writing, controls).

:class:`LoopState` owns the sockets, the connections and the counters; the
loop thread alone changes them, holding ``_lock`` so :meth:`Server.snapshot`
and :meth:`Server.stats` copy a consistent state. Every happening is published
through :meth:`LoopState._emit` as a raw record (see :mod:`netlens.server.bus`).
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from netlens.proto import ReplyCache
from netlens.server import controls as ctl
from netlens.server.bus import EventBus, EventRecord
from netlens.server.config import ServerConfig
from netlens.server.connection import Connection
from netlens.server.events import (
    EVENT_CODES,
    Accepted,
    Address,
    Closed,
    ControlApplied,
    ErrorEvent,
    Listening,
    MaskChanged,
    PeerShutdown,
    Received,
    ResponseQueued,
    Sent,
    StageReached,
    Stopped,
)
from netlens.server.interest import Interest

# Event codes, so publishing an event costs no class-to-code lookup.
LISTENING = EVENT_CODES[Listening]
ACCEPTED = EVENT_CODES[Accepted]
MASK = EVENT_CODES[MaskChanged]
RECV = EVENT_CODES[Received]
STAGE = EVENT_CODES[StageReached]
QUEUED = EVENT_CODES[ResponseQueued]
SENT = EVENT_CODES[Sent]
PEER_FIN = EVENT_CODES[PeerShutdown]
CLOSED = EVENT_CODES[Closed]
ERROR = EVENT_CODES[ErrorEvent]
CONTROL = EVENT_CODES[ControlApplied]
STOPPED = EVENT_CODES[Stopped]

#: What the listening socket and the wake-up socket stand for in the interest list.
LISTENER = object()
WAKER = object()

#: Closed connections remembered, newest last (where TIME_WAIT sockets may sit: see Server.recently_closed).
RECENT_CLOSES = 256
#: Seconds of per-second close counts kept (Linux keeps a TIME_WAIT socket 60 s).
CLOSE_COUNT_SECONDS = 60

_now = time.time


def _drop(record: EventRecord) -> None:
    """Events are off (only to measure what they cost): keep nothing."""


class LoopState:
    """The loop's sockets, connections and counters (see the module docstring)."""

    def __init__(self, config: ServerConfig, bus: EventBus | None) -> None:
        self.config = config
        self.bus = bus or EventBus(config.event_capacity, config.event_budget)
        #: Encoded search replies by request, bounded by bytes (owned by the loop thread).
        self.reply_cache = ReplyCache(config.reply_cache_bytes)
        #: This wake-up's event records, handed to the bus at once (see :meth:`_flush_events`).
        self._pending: list[EventRecord] = []
        #: Keeps one record for the bus (or drops it when events are off).
        self._record: Callable[[EventRecord], None] = (
            self._pending.append if config.publish_events else _drop)
        #: Publishes one record at once, bypassing the wake-up's batch (events off: drops it).
        self._publish_now: Callable[[EventRecord], None] = self.bus.publish if config.publish_events else _drop
        self._interest = Interest()
        self._epoll_modify = self._interest.epoll.modify
        self._epoll_register = self._interest.epoll.register
        self._recv_size = config.recv_size
        #: Echo mode (every session echoes): the read path skips asking the session.
        self._echo_mode = config.mode == "echo"
        self._listener: socket.socket | None = None
        self._listener_registered = False
        #: The listener's address family and protocol as plain numbers (see Accepting._accept).
        self._listen_family = int(socket.AF_INET)
        self._listen_proto = 0
        self._listener_resume_at = 0.0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._controls: queue.SimpleQueue[tuple[ctl.Control, Future[str]]] = queue.SimpleQueue()
        self._conns: dict[int, Connection] = {}
        self._next_id = 1
        # Held by the loop while it mutates state, and by snapshot() while it copies.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._reserve_fd: int | None = None
        self.address: Address = (config.host, config.port)
        self.started = 0.0
        self._accepted = 0
        self._closed_by: dict[str, int] = {}
        self._requests = 0
        self._protocol_errors = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._refused_emfile = 0
        self._echoed = 0
        self._echoed_bytes = 0
        self._deadline_closes = 0
        self._next_idle_scan = 0.0
        #: (local, peer, when) of the newest closed connections.
        self._recent_closes: deque[tuple[Address, Address, float]] = deque(maxlen=RECENT_CLOSES)
        #: [second, connections closed in it], the last CLOSE_COUNT_SECONDS seconds with closes.
        self._closes_per_second: deque[list[int]] = deque(maxlen=CLOSE_COUNT_SECONDS)
        # With a specific listen address every accepted socket has it as its
        # local address, which saves a getsockname() per connection.
        self._fixed_local: Address | None = None

    def _emit(self, code: int, conn_id: int, *fields: Any) -> None:
        """Record one event ``(code, now, conn_id, *fields)`` (codes: this module's constants)."""
        self._record((code, _now(), conn_id, *fields))

    def _flush_events(self) -> None:
        """Publish the records of this wake-up (the loop calls it before anyone reads them)."""
        pending = self._pending
        if pending:
            self.bus.publish_many(pending)
            pending.clear()

    def _remember_close(self, conn: Connection, now: float) -> None:
        """Note a closed connection's addresses, and count it in its second."""
        self._recent_closes.append((conn.local, conn.peer, now))
        second = int(now)
        counts = self._closes_per_second
        if counts and counts[-1][0] == second:
            counts[-1][1] += 1
        else:
            counts.append([second, 1])

    def _request_timeout(self) -> float:
        return self.config.request_timeout if self.config.mode == "search" else 0.0
