"""Which socket each event is about: kernel addresses -> netlens socket numbers and cookies.

On this kernel only some tracepoints carry the socket cookie (``tcp_probe``,
``tcp_destroy_sock``, ``tcp_receive_reset``, ``tcp_rcv_space_adjust``); the
state changes, retransmissions, resets sent and congestion changes carry only
``skaddr``, the socket's kernel address. An address names one socket from its
first event until ``tcp_destroy_sock`` (after which the memory may be reused),
so each lifetime gets a :class:`Identity` with a small number (``sock``)
that all its events share, and the cookie is filled in as soon as any event
of that lifetime reveals it. Records are built at the end of each batch, so
a cookie learned anywhere in the batch (a refused connect's ``SYN_SENT ->
CLOSE`` and its destroy arrive together) reaches every event of it.

Two joins need no socket at all: a reset received gets the reason of the
matching reset sent on this host (loopback and namespaces: the sender's side
of the same RST, within a second either way), and a drop of a packet nobody
owned (``NO_SOCKET``) gets the tuple of the reset the kernel sent for it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from netlens.trace.decode import RawEvent
from netlens.trace.events import Kind, TraceRecord
from netlens.trace.filters import Matcher

_PAIR_WINDOW_NS = 1_000_000_000
_MAPPED = bytes(10) + b"\xff\xff"


class Identity:
    """One kernel socket's lifetime, as far as the trace has seen it."""

    __slots__ = ("cookie", "daddr", "dport", "family", "matched", "saddr", "sock", "sport")

    def __init__(self, sock: int) -> None:
        self.sock = sock
        self.cookie: int | None = None
        self.family = 0
        self.saddr = b""
        self.sport = 0
        self.daddr = b""
        self.dport = 0
        self.matched = False  # some event of this socket passed the filter: keep all of them

    def learn(self, raw: RawEvent) -> None:
        """Take the cookie and the (bound) tuple an event carries."""
        if raw[4]:
            self.cookie = raw[4]
        if raw[7] and raw[6]:  # a bound port and an address: the first SYN_SENT has neither
            self.family, self.saddr, self.sport, self.daddr, self.dport = raw[5:10]


def _v4(packed: bytes) -> bytes:
    return packed[12:] if len(packed) == 16 and packed.startswith(_MAPPED) else packed


class SocketDirectory:
    """Live kernel socket addresses -> :class:`Identity`, bounded (oldest forgotten first)."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.capacity = capacity
        self._live: OrderedDict[int, Identity] = OrderedDict()
        self._next = 1
        #: Packets (``skbaddr``) a socketless reset answered, for attributing their drop.
        self._answered: OrderedDict[int, tuple[Any, ...]] = OrderedDict()
        self._resets: deque[tuple[int, tuple[Any, ...], str | None]] = deque(maxlen=256)

    def __len__(self) -> int:
        return len(self._live)

    def identity(self, skaddr: int) -> Identity:
        """The current lifetime at ``skaddr``, started if this is its first event."""
        found = self._live.get(skaddr)
        if found is None:
            found = self._live[skaddr] = Identity(self._next)
            self._next += 1
            if len(self._live) > self.capacity:
                self._live.popitem(last=False)
        return found

    def retire(self, skaddr: int) -> None:
        """The socket at ``skaddr`` was destroyed: its next event is a new socket."""
        self._live.pop(skaddr, None)

    def resolve(self, raws: list[RawEvent], matcher: Matcher) -> tuple[list[TraceRecord], int]:
        """Records for a time-ordered batch of raw events, and how many the filter removed."""
        bound: list[tuple[Identity | None, RawEvent]] = []
        for raw in raws:
            bound.append((self._bind(raw), raw))
        self._remember_resets(raws)
        passed = []
        for ident, raw in bound:
            if raw[0] == Kind.DROP and ident is not None:  # a drop's tuple is its socket's
                ok = matcher.matches(ident.saddr, ident.sport, ident.daddr, ident.dport, ident.cookie)
            else:
                ok = matcher.matches(raw[6], raw[7], raw[8], raw[9], ident.cookie if ident else raw[4] or None)
            if ok and ident is not None:
                ident.matched = True
            passed.append(ok)
        records = []
        for (ident, raw), ok in zip(bound, passed, strict=True):
            if ok or (ident is not None and ident.matched):
                records.append(self._record(ident, raw))
        return records, len(raws) - len(records)

    def _bind(self, raw: RawEvent) -> Identity | None:
        kind, skaddr = raw[0], raw[3]
        if kind == Kind.DROP and not skaddr:
            answered = self._answered.pop(raw[-1], None)
            if answered is None:
                return None
            ident = Identity(0)
            ident.family, ident.saddr, ident.sport, ident.daddr, ident.dport = answered
            return ident
        if not skaddr:
            if kind == Kind.RESET_SENT and raw[-1]:
                self._answered[raw[-1]] = raw[5:10]
                if len(self._answered) > 1024:
                    self._answered.popitem(last=False)
            return None
        ident = self.identity(skaddr)
        if raw[4] and ident.cookie is not None and raw[4] != ident.cookie and kind != Kind.DROP:
            # Another cookie at this address: the destroy of the old socket was lost or filtered out.
            self.retire(skaddr)
            ident = self.identity(skaddr)
        if kind != Kind.DROP:
            ident.learn(raw)
        if kind == Kind.DESTROY:
            self.retire(skaddr)
        return ident

    def _remember_resets(self, raws: list[RawEvent]) -> None:
        for raw in raws:
            if raw[0] == Kind.RESET_SENT:
                self._resets.append((raw[1], (raw[7], _v4(raw[6]), raw[9], _v4(raw[8])), raw[11]))

    def _sender_reason(self, raw: RawEvent) -> str | None:
        """The reason of the reset this host sent that ``raw`` (a reset received) is the other side of."""
        # The sender's (sport, saddr, dport, daddr) is the receiver's (dport, daddr, sport, saddr).
        wanted = (raw[9], _v4(raw[8]), raw[7], _v4(raw[6]))
        when: int = raw[1]
        for sent in reversed(self._resets):
            if sent[1] == wanted and abs(sent[0] - when) <= _PAIR_WINDOW_NS:
                reason: str | None = sent[2]
                return reason
        return None

    def _record(self, ident: Identity | None, raw: RawEvent) -> TraceRecord:
        kind = raw[0]
        if kind == Kind.DROP:
            if ident is None:
                return (kind, raw[1], raw[2], 0, None, *raw[5:10], raw[10])
            return (kind, raw[1], raw[2], ident.sock, ident.cookie, ident.family or raw[5], ident.saddr,
                    ident.sport, ident.daddr, ident.dport, raw[10])
        sock, cookie = (ident.sock, ident.cookie) if ident is not None else (0, raw[4] or None)
        head = (kind, raw[1], raw[2], sock, cookie, *raw[5:10])
        if kind == Kind.RESET_SENT:
            return (*head, raw[10], raw[11])  # without the packet address
        if kind == Kind.RESET_RECEIVED:
            return (*head, self._sender_reason(raw))
        return (*head, *raw[10:])
