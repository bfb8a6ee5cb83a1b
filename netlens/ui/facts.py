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
from typing import NamedTuple

from netlens.display import clock
from netlens.server.bus import EventRecord
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


class Fact(NamedTuple):
    """One end's latest news from the server: ``state`` for the table, :attr:`sentence` for the inspector.

    A named tuple, not a dataclass: a flood closes thousands of connections a
    second, two facts each, and a tuple is built several times faster.
    """

    ts: float
    conn: int
    state: str
    style: str
    #: The inspector's sentence with ``{when}`` and ``{reason}`` left to fill in: the inspector shows one
    #: connection, so the clock is formatted only when asked.
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


#: (state, style, sentence template) of the server's end and of the client's end.
FactPair = tuple[tuple[str, str, str], tuple[str, str, str]]

_CLIENT_RESET: FactPair = (
    ("RST received", RST_STYLE, "The client reset the connection (RST) at {when}: {reason}."),
    ("RST sent", RST_STYLE, "This end reset the connection (RST) at {when}."))
_SERVER_RESET: FactPair = (
    ("RST sent", RST_STYLE, "The server reset the connection (RST) at {when}: {reason}."),
    ("RST received", RST_STYLE, "The server reset this connection (RST) at {when}; "
                                "a program reading it gets ECONNRESET."))
#: A plain close, by cause (the cause is part of the sentence).
_CLOSED_BY: dict[str, FactPair] = {
    cause.value: (("CLOSED by server", CLOSED_STYLE, f"The server closed its socket at {{when}} ({cause.value}: "
                                                     "{reason}); the kernel sends FIN."),
                  ("FIN received", FIN_STYLE, "The server closed its end at {when}: this end gets its FIN "
                                              "and reads end-of-file."))
    for cause in CloseCause
}
_PEER_HALF_CLOSED: FactPair = (
    ("FIN received", FIN_STYLE, "The client half-closed at {when}: the server read "
                                "end-of-file and still has bytes to send."),
    ("FIN sent", FIN_STYLE, "This end half-closed (FIN) at {when}."))
_SERVER_HALF_CLOSED: FactPair = (
    ("FIN sent", FIN_STYLE, "The server shut down its sending side at {when} "
                            "(shutdown SHUT_WR): FIN sent, still reading."),
    ("FIN received", FIN_STYLE, "The server shut down its sending side at {when}: "
                                "this end reads end-of-file and may still send."))


#: A close by the peer's RST (an enum member's ``.value`` is a property call: looked up once, here).
_BY_RESET = CloseCause.RESET.value


def _close_facts(by: str, reason: str) -> FactPair:
    """The facts of both ends of a connection the server saw close (``by``: a :class:`CloseCause` value)."""
    if by == _BY_RESET:
        return _CLIENT_RESET
    if "RST" in reason:
        return _SERVER_RESET
    return _CLOSED_BY[by]


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
        """Fold new event records in; returns the ends whose fact changed (their rows need a redraw).

        Works on the raw records (``(code, ts, conn, *fields)``, see
        :mod:`netlens.server.bus`): under a flood every connection brings an
        accept and a close, and building their event objects cost more than
        the facts themselves.
        """
        touched: set[Ends] = set()
        known, facts, wanted = self._ends, self._facts, _WANTED
        for record in records:
            code = record[0]
            if code not in wanted:
                continue
            if code == _ACCEPTED:  # (code, ts, conn, peer, local, cookie)
                self.learn(record[2], record[4], record[3])
                continue
            conn = record[2]
            ends = known.get(conn)
            if ends is None:
                continue  # accepted before we listened (or its event was dropped): the kernel will tell
            closed = code == _CLOSED
            if closed:  # (code, ts, conn, by, reason)
                # The cause as its value (a str enum, as recordings built from events hold it, compares equal).
                pair, reason = _close_facts(record[3], record[4]), record[4]
            elif code == _PEER_FIN:
                pair, reason = _PEER_HALF_CLOSED, ""
            elif record[3] == "shutdown(SHUT_WR)":  # a control: (code, ts, conn, action, detail)
                pair, reason = _SERVER_HALF_CLOSED, ""
            else:
                continue
            (state, style, template), (peer_state, peer_style, peer_template) = pair
            server_end, client_end = ends
            # Re-inserted last (pop first): the dict stays oldest-first; trimmed once, after the batch.
            facts.pop(server_end, None)
            facts[server_end] = Fact(record[1], conn, state, style, template, closed, reason)
            facts.pop(client_end, None)
            facts[client_end] = Fact(record[1], conn, peer_state, peer_style, peer_template,
                                     closed and peer_state.startswith("RST"), reason)
            touched.add(server_end)
            touched.add(client_end)
            if closed:
                del known[conn]
        while len(facts) > MAX_FACTS:
            del facts[next(iter(facts))]
        return touched

    def fact(self, end: Ends, since: float) -> Fact | None:
        """The server's latest fact about ``end`` if it is not older than ``since`` (the connection's first sight)."""
        found = self._facts.get(end)
        return found if found is not None and found.ts >= since else None

    def forget_before(self, ts: float) -> None:
        """Drop facts older than ``ts``: by then the kernel has long caught up."""
        # Oldest first (``ingest`` re-inserts at the end), so the stale ones are a prefix: stop at the first
        # newer fact instead of scanning tens of thousands each snapshot.
        facts = self._facts
        while facts:
            end = next(iter(facts))
            if facts[end].ts >= ts:
                break
            del facts[end]
