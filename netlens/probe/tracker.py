"""Follow connections across snapshots: which are new, which changed (and how), which closed.

TCPView's model: a connection that appears is new (green), one whose
numbers moved changed (yellow), one that vanished is closed (red) and stays
on screen for ``linger`` seconds so a person can see it go. Rows are keyed
by :attr:`SocketInfo.key`, the 4-tuple that survives state changes, so
ESTABLISHED -> FIN_WAIT2 -> TIME_WAIT is one row that changed twice.

What counts as a change (:data:`CHANGE_FIELDS`): the state, Recv-Q, Send-Q,
the owning processes, and the TCP_INFO counters that move only when data
moves or is lost (bytes acked/received/sent/retransmitted, unacked, lost,
retransmissions, not-sent bytes). Deliberately not: timer countdowns,
``last_*_ms`` ages, RTT estimates and rates, which drift in every snapshot
of an idle connection and would paint every row yellow.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netlens.probe.attributes import tcp_info_span
from netlens.probe.fastbuild import fast_builder
from netlens.probe.model import Snapshot, SocketInfo
from netlens.probe.tcpinfo import field_reader

Key = tuple[Any, ...]

#: Socket fields compared between snapshots.
SOCKET_CHANGE_FIELDS: tuple[str, ...] = ("state", "recv_q", "send_q", "owners")
#: TCP_INFO fields compared between snapshots (names as in :class:`TcpInfo`, in struct order).
TCP_CHANGE_FIELDS: tuple[str, ...] = (
    "retransmits",
    "unacked",
    "lost",
    "total_retrans",
    "bytes_acked",
    "bytes_received",
    "notsent_bytes",
    "bytes_sent",
    "bytes_retrans",
)
#: Every field name that can appear in :attr:`ConnectionRow.changed`.
CHANGE_FIELDS: tuple[str, ...] = SOCKET_CHANGE_FIELDS + TCP_CHANGE_FIELDS

_read_counters = field_reader(TCP_CHANGE_FIELDS)
_NO_COUNTERS = (None,) * len(TCP_CHANGE_FIELDS)
_NOTHING: frozenset[str] = frozenset()


class RowStatus(str, enum.Enum):
    """What happened to a connection in the latest update."""

    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    """One connection as the table shows it.

    ``socket`` is the latest record seen (for a closed row, the last one
    before it vanished). ``status`` is what happened in the latest update;
    ``changed`` names the :data:`CHANGE_FIELDS` that moved at ``last_change``
    (empty if nothing has since the connection appeared). Times are the
    snapshots' wall-clock ``ts``.
    """

    key: Key
    socket: SocketInfo
    status: RowStatus
    changed: frozenset[str]
    first_seen: float
    last_change: float  # when it appeared or last changed
    closed_at: float | None

    def highlight(self, now: float, hold: float) -> RowStatus:
        """Return the status to colour the row with at ``now`` when a highlight lasts ``hold`` seconds.

        Closed rows stay CLOSED; a row seen first (or changed) less than
        ``hold`` seconds ago is NEW (or CHANGED), so colours do not blink
        off after one refresh when snapshots come faster than a person reads.
        """
        if self.status is RowStatus.CLOSED:
            return RowStatus.CLOSED
        if now - self.first_seen < hold:
            return RowStatus.NEW
        if self.changed and now - self.last_change < hold:
            return RowStatus.CHANGED
        return RowStatus.UNCHANGED


@dataclass(frozen=True, slots=True)
class TrackerUpdate:
    """The result of one :meth:`ConnectionTracker.update`: all rows, plus what to touch in a keyed table.

    ``rows`` are in first-seen order (stable across updates). ``added``,
    ``changed`` and ``closed`` are keys whose status became NEW, CHANGED or
    CLOSED in this update; ``removed`` are keys no longer in ``rows``: their
    linger ran out, or their socket went into TIME_WAIT among those the
    snapshot counts but does not show (``Snapshot.hidden_cookies``).
    """

    ts: float
    rows: tuple[ConnectionRow, ...]
    added: tuple[Key, ...]
    changed: tuple[Key, ...]
    closed: tuple[Key, ...]
    removed: tuple[Key, ...]


_build_row = fast_builder(ConnectionRow)


def _signature(sock: SocketInfo) -> tuple[Any, ...]:
    """The values compared between snapshots, in :data:`CHANGE_FIELDS` order."""
    block = sock.attributes
    span = tcp_info_span(block) if block else None
    counters = _read_counters(block, *span) if span is not None else _NO_COUNTERS
    return (sock.state, sock.recv_q, sock.send_q, sock.owners, *counters)


def keyed(sockets: Iterable[SocketInfo]) -> dict[Key, SocketInfo]:
    """Index sockets by :attr:`SocketInfo.key`; a repeated key (SO_REUSEPORT listeners) gets its ordinal appended."""
    result: dict[Key, SocketInfo] = {}
    for sock in sockets:
        key: Key = sock.key
        if key in result:
            n = 2
            while (*key, n) in result:
                n += 1
            key = (*key, n)
        result[key] = sock
    return result


class ConnectionTracker:
    """Turns successive snapshots into rows with new/changed/unchanged/closed status.

    ``linger`` is how many seconds a closed connection stays in the rows.
    Cost per update is one dict pass over the snapshot plus a small tuple per
    socket; no TCP_INFO record is decoded.
    """

    def __init__(self, linger: float = 5.0) -> None:
        self.linger = linger
        self._rows: dict[Key, ConnectionRow] = {}
        self._signatures: dict[Key, tuple[Any, ...]] = {}

    def update(self, snapshot: Snapshot) -> TrackerUpdate:
        """Fold ``snapshot`` in and return every row with its status (see :class:`TrackerUpdate`)."""
        now = snapshot.ts
        current = keyed(snapshot.sockets)
        old_rows = self._rows
        old_signatures = self._signatures
        rows: dict[Key, ConnectionRow] = {}
        signatures: dict[Key, tuple[Any, ...]] = {}
        added: list[Key] = []
        changed: list[Key] = []
        closed: list[Key] = []
        removed: list[Key] = []
        new, chg, same, gone = RowStatus.NEW, RowStatus.CHANGED, RowStatus.UNCHANGED, RowStatus.CLOSED

        hidden = snapshot.hidden_cookies
        # Existing rows first, in their order, so the table order is stable.
        for key, row in old_rows.items():
            sock = current.pop(key, None)
            if sock is None:
                if row.status is gone:
                    if now - row.closed_at < self.linger:  # type: ignore[operator]
                        rows[key] = row
                    else:
                        removed.append(key)
                elif row.socket.cookie is not None and row.socket.cookie in hidden:
                    # In TIME_WAIT among those counted but not shown: not closed, so not shown as closed.
                    removed.append(key)
                else:
                    rows[key] = _build_row(key, row.socket, gone, row.changed, row.first_seen, row.last_change, now)
                    closed.append(key)
                continue
            signature = _signature(sock)
            signatures[key] = signature
            if row.status is gone:
                # The same 4-tuple again after it closed: a new connection.
                rows[key] = _build_row(key, sock, new, _NOTHING, now, now, None)
                added.append(key)
                continue
            previous = old_signatures[key]  # every open row has one
            if signature == previous:
                rows[key] = _build_row(key, sock, same, row.changed, row.first_seen, row.last_change, None)
            else:
                fields = frozenset(
                    name for name, a, b in zip(CHANGE_FIELDS, signature, previous, strict=True) if a != b
                )
                rows[key] = _build_row(key, sock, chg, fields, row.first_seen, now, None)
                changed.append(key)
        for key, sock in current.items():
            signatures[key] = _signature(sock)
            rows[key] = _build_row(key, sock, new, _NOTHING, now, now, None)
            added.append(key)

        self._rows = rows
        self._signatures = signatures
        return TrackerUpdate(now, tuple(rows.values()), tuple(added), tuple(changed), tuple(closed), tuple(removed))

    @property
    def rows(self) -> tuple[ConnectionRow, ...]:
        """The rows as of the last update."""
        return tuple(self._rows.values())
