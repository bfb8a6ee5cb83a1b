"""What one connections-table row says, and where it goes: pure functions, no widget.

A row joins three sources — the kernel's snapshot (state, queues), the
server's snapshot (its connection id, mask, stage) and the server's latest
event about it (a :class:`~netlens.ui.facts.Fact`) — and shows the newest
word on the state. Rows are ordered so that what is alive comes first:
the listener, then open connections (newest first), then closing ones, then
TIME_WAIT; the two ends of one loopback connection sit next to each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netlens.probe import ConnectionRow, RowStatus, SocketInfo
from netlens.ui.facts import Fact
from netlens.ui.format import duration

#: Row groups, in the order they are shown.
LISTENING, OPEN, CLOSING, WAITING = range(4)

_GROUP_OF_STATE = {
    "LISTEN": LISTENING,
    "SYN_SENT": OPEN,
    "SYN_RECV": OPEN,
    "ESTABLISHED": OPEN,
    "TIME_WAIT": WAITING,
}

STATUS_TINT = {
    RowStatus.NEW: "bold green",
    RowStatus.CHANGED: "bold yellow",
    RowStatus.CLOSED: "red strike",
    RowStatus.UNCHANGED: "",
}

STATE_STYLE = {
    "LISTEN": "bold cyan",
    "ESTABLISHED": "green",
    "TIME_WAIT": "magenta",
    "CLOSE_WAIT": "yellow",
    "FIN_WAIT1": "yellow",
    "FIN_WAIT2": "yellow",
    "LAST_ACK": "yellow",
    "CLOSING": "yellow",
    "SYN_SENT": "blue",
    "SYN_RECV": "blue",
}

#: What a row says when the kernel no longer lists its socket (and no RST explains it).
GONE = "CLOSED"


@dataclass(frozen=True, slots=True)
class StateCell:
    """The State column of one row and the row's group for ordering."""

    text: str
    style: str
    tint: str
    group: int
    #: Where the state came from: "kernel", "server" (an event newer than the kernel's snapshot) or "gone".
    source: str
    #: The server connection the server's event says is over (closed or reset) for this end, if any.
    ended: int | None = None


def state_cell(row: ConnectionRow, status: RowStatus, fact: Fact | None, kernel_ts: float) -> StateCell:
    """The newest word on a row's state: the kernel's snapshot, or the server's event if that is newer.

    ``status`` is the row's highlight (new/changed fade after a moment);
    ``kernel_ts`` is the time of the snapshot the row's socket record comes from.
    """
    sock = row.socket
    if row.status is RowStatus.CLOSED:
        # The kernel forgot the socket: an RST the server saw says why; otherwise it simply closed.
        ended = fact.conn if fact is not None and fact.final else None
        if fact is not None and fact.reset:
            return StateCell(fact.state, fact.style, STATUS_TINT[RowStatus.CLOSED], CLOSING, "server", ended)
        return StateCell(GONE, STATUS_TINT[RowStatus.CLOSED], STATUS_TINT[RowStatus.CLOSED], CLOSING, "gone", ended)
    if fact is not None and fact.ts > kernel_ts:
        # The server's event is newer than the kernel's last snapshot: it is the truth for now.
        return StateCell(fact.state, fact.style, fact.style if fact.final else "", CLOSING, "server",
                         fact.conn if fact.final else None)
    tint = STATUS_TINT[status]
    return StateCell(sock.state, tint or STATE_STYLE.get(sock.state, ""), tint,
                     _GROUP_OF_STATE.get(sock.state, CLOSING), "kernel")


def state_group(row: ConnectionRow, fact: Fact | None, kernel_ts: float) -> int:
    """The group :func:`state_cell` would put the row in, without building its cell (sorting asks for every row)."""
    if row.status is RowStatus.CLOSED or (fact is not None and fact.ts > kernel_ts):
        return CLOSING
    return _GROUP_OF_STATE.get(row.socket.state, CLOSING)


def age_cell(sock: SocketInfo, first_seen: float, created: float | None, now: float, gone: bool = False) -> str:
    """How old the connection is, from the best source, and saying which.

    ``12s``: since the server accepted it (its own clock, exact); ``42s left``:
    a TIME_WAIT socket's remaining timer, as the kernel reports it; ``≥12s``:
    since netlens first saw it (it may be older); ``ended early``: a TIME_WAIT
    socket the kernel dropped before its timer ran out (``gone``: no longer
    listed), as it does when a new connection takes the same 4-tuple (a
    client reusing its port under a flood) or an RST arrives.
    """
    if gone and sock.state == "TIME_WAIT":
        return "ended early"
    if created is not None:
        return duration(max(0.0, now - created))
    if sock.state == "TIME_WAIT" and sock.timer is not None:
        return f"{duration(sock.timer.expires_ms / 1000)} left"
    return "≥" + duration(max(0.0, now - first_seen))


def compact_size(n: int | None) -> str:
    """A byte count in at most five characters, as ``ss``/``top`` print them: ``512``, ``17K``, ``6.2M``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            if not unit:
                return str(n)
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
        value /= 1024
    return str(n)  # pragma: no cover


def pair_id(sock: SocketInfo) -> tuple[tuple[str, int], tuple[str, int]]:
    """The same value for both ends of one connection (its two endpoints, sorted)."""
    here, there = (sock.local_addr, sock.local_port), (sock.remote_addr, sock.remote_port)
    return (here, there) if here <= there else (there, here)


@dataclass(frozen=True, slots=True)
class Placed:
    """What ordering needs to know of one row."""

    key: str
    socket: SocketInfo
    group: int
    #: Larger is newer: accept time or first sight; for TIME_WAIT, the time its timer runs out.
    born: float
    #: :func:`pair_id` of the socket, if the caller keeps it (it never changes for a row).
    pair: object = None


def born(sock: SocketInfo, first_seen: float, created: float | None, now: float) -> float:
    """A row's "newness" for ordering within its group (larger is newer)."""
    if sock.state == "TIME_WAIT" and sock.timer is not None:
        return now + sock.timer.expires_ms / 1000
    return created if created is not None else first_seen


def order(rows: Iterable[Placed], server_port: int) -> list[str]:
    """Row keys in display order: listener, open (newest first), closing, TIME_WAIT; both ends together.

    The two ends of a loopback connection are placed as one: where its
    liveliest end belongs, the server's end first.
    """
    pairs: dict[object, list[Placed]] = {}
    for placed in rows:
        sock = placed.socket
        ident: object = placed.key if sock.state == "LISTEN" else placed.pair or pair_id(sock)
        ends = pairs.get(ident)
        if ends is None:
            pairs[ident] = [placed]
        else:
            ends.append(placed)
    ranked = []
    for ends in pairs.values():
        # Thousands of rows under a flood, re-ordered every second: a lone end needs no min() or sort().
        if len(ends) == 1:
            lead = ends[0]
        else:
            lead = min(ends, key=lambda p: (p.group, p.socket.local_port != server_port))
            ends.sort(key=lambda p: p.socket.local_port != server_port)
        ranked.append((lead.group, -lead.born, ends[0].key, ends))
    ranked.sort(key=lambda item: item[:3])
    return [placed.key for *_, ends in ranked for placed in ends]
