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

    def note(self, skaddr: int, cookie: int, destroyed: bool) -> None:
        """Keep the directory current for a record nobody will see (a sampled session's older bulk).

        The same bookkeeping :meth:`resolve` does for the socket (a lifetime
        started, its cookie learned, its end), without building a record: the
        records that are built later still get the right number and cookie.
        """
        live = self._live
        ident = live.get(skaddr)
        if ident is None:
            if destroyed or not skaddr:
                return
            ident = self.identity(skaddr)
        if cookie and ident.cookie != cookie:
            if ident.cookie is not None:
                self.retire(skaddr)
                ident = self.identity(skaddr)
            ident.cookie = cookie
        if destroyed:
            del live[skaddr]

    def resolve(self, raws: list[RawEvent], matcher: Matcher) -> tuple[list[TraceRecord], int]:
        """Records for a time-ordered batch of raw events, and how many the filter removed.

        One pass over the batch (the reader's hot loop); the rare fix-ups
        that need the whole batch run afterwards: cookies learned after an
        event, sockets that matched only in a later event, reset reasons.
        """
        records: list[TraceRecord] = []
        no_cookie: list[tuple[int, Identity]] = []
        failed: list[tuple[Identity | None, RawEvent]] = []
        everything, matches = matcher.everything, matcher.matches
        live = self._live
        for raw in raws:
            kind, skaddr = raw[0], raw[3]
            if not skaddr or kind == Kind.DROP:
                ident = self._bind_socketless(raw, everything)
                if ident is not None:
                    ok = everything or matches(ident.saddr, ident.sport, ident.daddr, ident.dport, ident.cookie)
                else:
                    ok = everything or matches(raw[6], raw[7], raw[8], raw[9], raw[4] or None)
                if ok:
                    records.append(self._record(ident, raw))
                else:
                    failed.append((ident, raw))
                continue
            ident = live.get(skaddr)
            if ident is None:
                if kind == Kind.DESTROY and not (everything or matches(raw[6], raw[7], raw[8], raw[9], raw[4])):
                    continue  # the end of a socket never seen (the kernel passes every dport-0 destroy)
                ident = self.identity(skaddr)
            cookie = raw[4]
            if cookie and ident.cookie != cookie:
                if ident.cookie is not None:
                    # Another cookie at this address: the old socket's destroy was lost or filtered out.
                    self.retire(skaddr)
                    ident = self.identity(skaddr)
                ident.cookie = cookie
            if raw[7] and raw[6] and (raw[7] != ident.sport or raw[9] != ident.dport):
                ident.family, ident.saddr, ident.sport, ident.daddr, ident.dport = raw[5:10]
            if kind == Kind.DESTROY:
                del live[skaddr]
            elif kind == Kind.RESET_SENT:
                self._remember_reset(raw)
            if everything or ident.matched or matches(raw[6], raw[7], raw[8], raw[9], ident.cookie):
                ident.matched = True
                if ident.cookie is None:
                    no_cookie.append((len(records), ident))
                records.append(self._record(ident, raw))
            else:
                failed.append((ident, raw))
        self._fix_up(records, no_cookie, failed)
        return records, len(raws) - len(records)

    def _bind_socketless(self, raw: RawEvent, everything: bool) -> Identity | None:
        """The identity of a drop (its socket, or the reset that answered its packet); remember resets.

        A drop on a socket not seen yet starts its identity only when every
        socket is traced: a drop carries no tuple, so under a filter it could
        never match.
        """
        kind, skaddr = raw[0], raw[3]
        if kind == Kind.RESET_SENT:
            self._remember_reset(raw)
            if raw[-1]:
                self._answered[raw[-1]] = raw[5:10]
                if len(self._answered) > 1024:
                    self._answered.popitem(last=False)
            return None
        if kind != Kind.DROP:
            return None
        if skaddr:
            return self.identity(skaddr) if everything else self._live.get(skaddr)
        answered = self._answered.pop(raw[-1], None)
        if answered is None:
            return None
        ident = Identity(0)
        ident.family, ident.saddr, ident.sport, ident.daddr, ident.dport = answered
        return ident

    def _remember_reset(self, raw: RawEvent) -> None:
        self._resets.append((raw[1], (raw[7], _v4(raw[6]), raw[9], _v4(raw[8])), raw[11]))

    def _fix_up(self, records: list[TraceRecord], no_cookie: list[tuple[int, Identity]],
                failed: list[tuple[Identity | None, RawEvent]]) -> None:
        """The whole-batch joins: late cookies, late matches, reset reasons from either side."""
        for index, ident in no_cookie:
            if ident.cookie is not None:
                record = records[index]
                records[index] = (*record[:4], ident.cookie, *record[5:])
        late = [self._record(ident, raw) for ident, raw in failed if ident is not None and ident.matched]
        if late:
            records.extend(late)
            records.sort(key=lambda record: record[1])
        for index, record in enumerate(records):
            if record[0] == Kind.RESET_RECEIVED and record[-1] is None:
                records[index] = (*record[:-1], self._sender_reason(record))

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
        if kind == Kind.RESET_SENT:
            return (kind, raw[1], raw[2], sock, cookie, *raw[5:12])  # without the packet address
        return (kind, raw[1], raw[2], sock, cookie, *raw[5:])
