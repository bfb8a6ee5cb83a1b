"""One accepted connection as the loop sees it, and the thread-safe snapshot the UI reads."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from netlens.server.events import Address, CloseCause, mask_name
from netlens.server.sessions import SearchSession, Session

#: Bytes of each buffer copied into a snapshot (enough for a screenful of hex).
SNAPSHOT_BYTES = 4096


class Connection:
    """Mutable per-socket state, owned by the loop thread alone."""

    __slots__ = (
        "id", "sock", "fd", "peer", "local", "session", "created", "last_activity", "mask",
        "reading", "paused", "outbox", "bytes_in", "bytes_out", "recv_calls", "send_calls",
        "close_after_flush", "close_cause", "close_reason", "shutdown_after_flush", "write_shut",
        "closed", "last_in", "options", "cookie", "deadline", "unechoed",
    )

    def __init__(self, conn_id: int, sock: socket.socket, peer: Address, local: Address,
                 session: Session, now: float, cookie: int | None = None) -> None:
        self.id = conn_id
        #: The kernel's SO_COOKIE for this socket (None where the kernel has none).
        self.cookie = cookie
        #: time.time() by which the request must be complete (inf: no deadline).
        self.deadline = float("inf")
        #: Echo mode: bytes received that could not be echoed (the sending side was shut).
        self.unechoed = 0
        self.sock = sock
        #: The socket's descriptor, kept: the interest list is keyed by it.
        self.fd = sock.fileno()
        self.peer = peer
        self.local = local
        self.session = session
        self.created = now
        self.last_activity = now
        #: The selector interest currently registered (0: not registered).
        self.mask = 0
        #: False once the protocol is done reading (or the peer sent FIN).
        self.reading = True
        #: True while a user paused reading.
        self.paused = False
        #: The send buffer: bytes queued but not yet accepted by send().
        self.outbox = bytearray()
        self.bytes_in = 0
        self.bytes_out = 0
        self.recv_calls = 0
        self.send_calls = 0
        self.close_after_flush = False
        self.close_cause = CloseCause.SERVER
        self.close_reason = ""
        self.shutdown_after_flush = False
        self.write_shut = False
        self.closed = False
        #: The start of the last chunk recv() returned (for the inspector; at most SNAPSHOT_BYTES).
        self.last_in = b""
        #: Socket options a user set, by name, for the inspector.
        self.options: dict[str, int] = {}

    def snapshot(self, now: float, buffers: bool = True) -> ConnectionSnapshot:
        """A frozen copy, taken on request (under the loop's lock).

        Without ``buffers`` the byte fields are left empty (their lengths are
        still given): a table of every connection needs no copies of them.
        """
        session = self.session
        header: dict[str, Any] | None = None
        recv_buffer = b""
        recv_buffered = 0
        request = response = None
        if isinstance(session, SearchSession):
            decoder = session.decoder
            recv_buffered = decoder.buffered_length
            recv_buffer = decoder.peek(SNAPSHOT_BYTES) if buffers else b""
            header = dict(decoder.header) if decoder.header is not None else None
            request, response = session.request_summary, session.response_summary
        return ConnectionSnapshot(
            conn=self.id,
            peer=self.peer,
            local=self.local,
            mode=session.mode,
            stage=session.stage,
            detail=session.detail,
            mask=self.mask,
            paused=self.paused,
            reading=self.reading,
            recv_buffer=recv_buffer,
            recv_buffered=recv_buffered,
            send_buffer=bytes(self.outbox[:SNAPSHOT_BYTES]) if buffers else b"",
            send_buffered=len(self.outbox),
            last_in=self.last_in[:SNAPSHOT_BYTES] if buffers else b"",
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            recv_calls=self.recv_calls,
            send_calls=self.send_calls,
            created=self.created,
            last_activity=self.last_activity,
            age=now - self.created,
            json_header=header,
            request=request,
            response=response,
            write_shut=self.write_shut,
            options=dict(self.options),
            cookie=self.cookie,
        )


@dataclass(frozen=True)
class ConnectionSnapshot:
    """The server's own view of one live connection at one instant.

    Buffers are cut to :data:`SNAPSHOT_BYTES`; ``*_buffered`` give their full
    length. ``stage``/``detail`` name where the message state machine is.
    Byte fields and summaries hold untrusted wire data: escape before showing.
    """

    conn: int
    peer: Address
    local: Address
    mode: str
    stage: str
    detail: str
    mask: int
    paused: bool
    reading: bool
    recv_buffer: bytes
    recv_buffered: int
    send_buffer: bytes
    send_buffered: int
    last_in: bytes
    bytes_in: int
    bytes_out: int
    recv_calls: int
    send_calls: int
    created: float
    last_activity: float
    age: float
    json_header: dict[str, Any] | None
    request: str | None
    response: str | None
    write_shut: bool
    options: dict[str, int]
    #: The socket's SO_COOKIE: the kernel's id for it (sock_diag, tracepoints), None if unknown.
    cookie: int | None = None

    @property
    def mask_name(self) -> str:
        """The selector mask as ``READ``, ``WRITE``, ``READ|WRITE`` or ``-``."""
        return mask_name(self.mask)


@dataclass(frozen=True)
class ServerStats:
    """Counters of the whole server since it started."""

    address: Address
    mode: str
    started: float
    active: int
    accepted: int
    closed: dict[str, int]
    requests: int
    protocol_errors: int
    bytes_in: int
    bytes_out: int
    events_published: int
    refused_emfile: int
    #: Echo mode: recv() chunks echoed back, and their bytes (search mode counts ``requests``).
    echoed_messages: int = 0
    echoed_bytes: int = 0
    #: The listen backlog asked of the kernel.
    backlog: int = 0
    #: The event ring's estimated bytes, its budget, and records let go for the budget.
    event_bytes: int = 0
    event_budget: int = 0
    events_evicted: int = 0
    #: The reply cache's bytes and budget.
    reply_cache_bytes: int = 0
    reply_cache_budget: int = 0
    #: Connections closed because their request missed the whole-request deadline.
    deadline_closes: int = 0
