"""What the server itself says about a connection's end, before the kernel's next snapshot does.

The kernel is asked once a second; the server publishes the moment it
closes, resets or half-closes a socket. So for up to a second the newest
fact about a connection is the server's event, and a row that kept showing
the kernel's last word (``ESTABLISHED``) would contradict what the client
already got (``ECONNRESET``). A :class:`FactBook` turns the server's events
into facts about both ends of the connection — the server's socket and, on
loopback, the client's — each stamped with the event's wall-clock time, so
the screen can show whichever is newer: the server's fact or the kernel's
snapshot. No Textual here; the table and the inspector read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netlens.display import clock
from netlens.server.bus import EventRecord, materialize
from netlens.server.events import (
    EVENT_CODES,
    Accepted,
    CloseCause,
    Closed,
    ControlApplied,
    PeerShutdown,
)
from netlens.textsafe import safe_str

#: (local addr, local port, remote addr, remote port): one end of a connection, as the kernel names it.
Ends = tuple[str, int, str, int]

#: Connections whose endpoints are remembered at most (oldest forgotten first).
MAX_CONNECTIONS = 50_000
#: Facts kept at most (oldest forgotten first); a fact matters only until the kernel catches up.
MAX_FACTS = 20_000

_ACCEPTED = EVENT_CODES[Accepted]
_CLOSED = EVENT_CODES[Closed]
_PEER_FIN = EVENT_CODES[PeerShutdown]
_CONTROL = EVENT_CODES[ControlApplied]
_WANTED = frozenset((_ACCEPTED, _CLOSED, _PEER_FIN, _CONTROL))

RST_STYLE = "bold red"
CLOSED_STYLE = "red"
FIN_STYLE = "bold yellow"


@dataclass(frozen=True, slots=True)
class Fact:
    """One end's latest news from the server: ``state`` for the table, :attr:`sentence` for the inspector."""

    ts: float
    conn: int
    state: str
    style: str
    #: The inspector's sentence with ``{when}`` and ``{reason}`` left to fill in: a flood closes thousands of
    #: connections a second and the inspector shows one of them, so the clock is formatted only when asked.
    template: str
    #: True when the connection is over for this end's program (closed or reset), not just half-closed.
    final: bool
    #: The server's reason (closed connections), as it said it.
    reason: str = ""

    @property
    def sentence(self) -> str:
        """The inspector's sentence about this end."""
        return self.template.format(when=clock(self.ts), reason=safe_str(self.reason))

    @property
    def reset(self) -> bool:
        """True for an RST, sent or received."""
        return self.state.startswith("RST")


def _close_facts(event: Closed) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """(state, style, sentence template) for the server's end and the client's end of a closed connection."""
    if event.by is CloseCause.RESET:
        return (("RST received", RST_STYLE, "The client reset the connection (RST) at {when}: {reason}."),
                ("RST sent", RST_STYLE, "This end reset the connection (RST) at {when}."))
    if "RST" in event.reason:
        return (("RST sent", RST_STYLE, "The server reset the connection (RST) at {when}: {reason}."),
                ("RST received", RST_STYLE, "The server reset this connection (RST) at {when}; "
                                            "a program reading it gets ECONNRESET."))
    return (("CLOSED by server", CLOSED_STYLE, "The server closed its socket at {when} "
                                               + f"({event.by.value}: " + "{reason}); the kernel sends FIN."),
            ("FIN received", FIN_STYLE, "The server closed its end at {when}: this end gets its FIN "
                                        "and reads end-of-file."))


class FactBook:
    """The server's facts about each connection end, fed with the server's raw event records."""

    def __init__(self) -> None:
        #: Server connection id -> (server's end, client's end).
        self._ends: dict[int, tuple[Ends, Ends]] = {}
        self._facts: dict[Ends, Fact] = {}

    def learn(self, conn: int, local: tuple[str, int], peer: tuple[str, int]) -> None:
        """Remember which sockets connection ``conn`` joins (from its Accepted event or a server snapshot)."""
        if conn in self._ends:
            return
        server_end: Ends = (local[0], local[1], peer[0], peer[1])
        client_end: Ends = (peer[0], peer[1], local[0], local[1])
        self._ends[conn] = (server_end, client_end)
        if len(self._ends) > MAX_CONNECTIONS:
            del self._ends[next(iter(self._ends))]

    def ingest(self, records: Iterable[EventRecord]) -> set[Ends]:
        """Fold new event records in; returns the ends whose fact changed (their rows need a redraw)."""
        touched: set[Ends] = set()
        for record in records:
            code = record[0]
            if code not in _WANTED:
                continue
            event = materialize(record)
            if isinstance(event, Accepted):
                self.learn(event.conn, event.local, event.peer)
                continue
            ends = self._ends.get(event.conn)
            if ends is None:
                continue  # accepted before we listened (or its event was dropped): the kernel will tell
            pair = self._facts_for(event)
            if pair is None:
                continue
            reason = event.reason if isinstance(event, Closed) else ""
            for end, (state, style, template) in zip(ends, pair, strict=True):
                final = isinstance(event, Closed) and (end is ends[0] or state.startswith("RST"))
                self._set(end, Fact(event.ts, event.conn, state, style, template, final, reason))
                touched.add(end)
            if isinstance(event, Closed):
                del self._ends[event.conn]
        return touched

    @staticmethod
    def _facts_for(event: object) -> tuple[tuple[str, str, str], tuple[str, str, str]] | None:
        if isinstance(event, Closed):
            return _close_facts(event)
        if isinstance(event, PeerShutdown):
            return (("FIN received", FIN_STYLE, "The client half-closed at {when}: the server read "
                                                "end-of-file and still has bytes to send."),
                    ("FIN sent", FIN_STYLE, "This end half-closed (FIN) at {when}."))
        if isinstance(event, ControlApplied) and event.action == "shutdown(SHUT_WR)":
            return (("FIN sent", FIN_STYLE, "The server shut down its sending side at {when} "
                                            "(shutdown SHUT_WR): FIN sent, still reading."),
                    ("FIN received", FIN_STYLE, "The server shut down its sending side at {when}: "
                                                "this end reads end-of-file and may still send."))
        return None

    def _set(self, end: Ends, fact: Fact) -> None:
        self._facts.pop(end, None)  # re-inserted last: the dict stays oldest-first
        self._facts[end] = fact
        if len(self._facts) > MAX_FACTS:
            del self._facts[next(iter(self._facts))]

    def fact(self, end: Ends, since: float) -> Fact | None:
        """The server's latest fact about ``end`` if it is not older than ``since`` (the connection's first sight)."""
        found = self._facts.get(end)
        return found if found is not None and found.ts >= since else None

    def forget_before(self, ts: float) -> None:
        """Drop facts older than ``ts``: by then the kernel has long caught up."""
        # Oldest first (``_set`` re-inserts at the end), so the stale ones are a prefix: stop at the first
        # newer fact instead of scanning tens of thousands each snapshot.
        facts = self._facts
        while facts:
            end = next(iter(facts))
            if facts[end].ts >= ts:
                break
            del facts[end]
