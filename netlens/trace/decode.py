"""Tracepoint records -> raw event tuples, one decoder per tracepoint, built from its ``format`` file.

A decoder returns ``(kind, ts, cpu, skaddr, cookie, family, saddr, sport,
daddr, dport, *detail)`` with the kernel's socket address (``skaddr``, 0 for
none) and cookie (0 for unknown); :mod:`netlens.trace.sockets` turns the
address into netlens's socket number and fills in cookies. Reset-sent and
drop records carry the packet's address (``skbaddr``) as their last detail,
which the resolver uses and strips.

Addresses come in two layouts: the older ``family, sport, dport, saddr[4],
daddr[4], saddr_v6[16], daddr_v6[16]`` and ``sockaddr`` arrays
(``saddr[28]``, ``daddr[28]``: family, big-endian port, address). Which one a
tracepoint uses is read from its format, never assumed.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from netlens.trace.events import AF_INET, AF_INET6, CA_STATES, ETH_P_IP, ETH_P_IPV6, TCP_STATES, Kind
from netlens.trace.formats import EventFormat, FieldReader, FormatError

Values = tuple[Any, ...]
RawEvent = tuple[Any, ...]
_TupleOf = Callable[[Values], tuple[int, bytes, int, bytes, int]]
_DetailOf = Callable[[Values], Values]
_SPLIT = ("family", "sport", "dport", "saddr", "daddr", "saddr_v6", "daddr_v6")
_NO_TUPLE = (0, b"", 0, b"", 0)


@dataclass(frozen=True, slots=True)
class Tracepoint:
    """A tracepoint netlens reads, and the kind of event it becomes."""

    system: str
    name: str
    kind: Kind

    @property
    def path(self) -> str:
        """``system/name``, its directory under ``events/``."""
        return f"{self.system}/{self.name}"


TRACEPOINTS = (
    Tracepoint("sock", "inet_sock_set_state", Kind.STATE),
    Tracepoint("tcp", "tcp_retransmit_skb", Kind.RETRANSMIT),
    Tracepoint("tcp", "tcp_retransmit_synack", Kind.RETRANSMIT_SYNACK),
    Tracepoint("tcp", "tcp_send_reset", Kind.RESET_SENT),
    Tracepoint("tcp", "tcp_receive_reset", Kind.RESET_RECEIVED),
    Tracepoint("tcp", "tcp_probe", Kind.PROBE),
    Tracepoint("tcp", "tcp_cong_state_set", Kind.CONG_STATE),
    Tracepoint("tcp", "tcp_destroy_sock", Kind.DESTROY),
    Tracepoint("tcp", "tcp_rcv_space_adjust", Kind.RCV_SPACE),
    Tracepoint("skb", "kfree_skb", Kind.DROP),
)
TRACEPOINTS_BY_KIND = {tp.kind: tp for tp in TRACEPOINTS}
#: The kinds that fire for every connection (a flood's bulk): a sampled session may read an old one
#: only far enough to keep its socket's identity (:meth:`Decoder.identify`). Resets, retransmissions
#: and drops are rare and always decoded whole.
LIGHT_KINDS = frozenset({Kind.STATE, Kind.PROBE, Kind.DESTROY, Kind.CONG_STATE, Kind.RCV_SPACE})


def state_names(fmt: EventFormat, field_name: str) -> tuple[str, ...]:
    """TCP state names by number without ``TCP_``, from the format's symbol table where it has numbers."""
    table = list(TCP_STATES)
    for value, name in fmt.symbols(field_name).items():
        if 0 <= value < 64:
            table.extend("UNKNOWN" for _ in range(len(table), value + 1))
            table[value] = name.removeprefix("TCP_")
    return tuple(table)


def _named(table: tuple[str, ...], value: int) -> str:
    return table[value] if 0 <= value < len(table) else str(value)


def _ix(reader: FieldReader, name: str) -> int:
    index = reader.index(name)
    if index is None:
        raise FormatError(f"this kernel's tracepoint lacks the field {name!r} netlens needs")
    return index


def _tuple_reader(fmt: EventFormat, reader: FieldReader) -> _TupleOf:
    """A function from unpacked values to ``(family, saddr, sport, daddr, dport)`` for this layout."""
    saddr, daddr = fmt.field("saddr"), fmt.field("daddr")
    if saddr is not None and daddr is not None and saddr.size >= 16 and saddr.array:
        return _sockaddr_reader(fmt, reader)
    if not fmt.has("family", "sport", "dport"):
        return lambda values: _NO_TUPLE
    ifam, isp, idp = _ix(reader, "family"), _ix(reader, "sport"), _ix(reader, "dport")
    i4s, i4d, i6s, i6d = (reader.index(n) for n in ("saddr", "daddr", "saddr_v6", "daddr_v6"))

    def split(values: Values) -> tuple[int, bytes, int, bytes, int]:
        family: int = values[ifam]
        if family == AF_INET6 and i6s is not None and i6d is not None:
            src, dst = values[i6s], values[i6d]
        elif i4s is not None and i4d is not None:
            src, dst = values[i4s], values[i4d]
        else:
            src = dst = b""
        return family, src, values[isp], dst, values[idp]

    return split


def _sockaddr_reader(fmt: EventFormat, reader: FieldReader) -> _TupleOf:
    """``saddr[28]``/``daddr[28]`` hold ``struct sockaddr_in``/``sockaddr_in6`` (family in host order)."""
    isa, ida = _ix(reader, "saddr"), _ix(reader, "daddr")
    order = sys.byteorder
    if fmt.has("family", "sport", "dport"):
        # tcp_probe also has the family and ports as plain fields: only the addresses need slicing.
        ifam, isp, idp = _ix(reader, "family"), _ix(reader, "sport"), _ix(reader, "dport")

        def fields_and_slices(values: Values) -> tuple[int, bytes, int, bytes, int]:
            family = values[ifam]
            if family == AF_INET:
                return family, values[isa][4:8], values[isp], values[ida][4:8], values[idp]
            if family == AF_INET6:
                return family, values[isa][8:24], values[isp], values[ida][8:24], values[idp]
            return _NO_TUPLE

        return fields_and_slices

    def sockaddr(values: Values) -> tuple[int, bytes, int, bytes, int]:
        src: bytes = values[isa]
        dst: bytes = values[ida]
        family = int.from_bytes(src[:2], order)
        if family == AF_INET6:
            return family, src[8:24], int.from_bytes(src[2:4], "big"), dst[8:24], int.from_bytes(dst[2:4], "big")
        if family == AF_INET:
            return family, src[4:8], int.from_bytes(src[2:4], "big"), dst[4:8], int.from_bytes(dst[2:4], "big")
        return _NO_TUPLE

    return sockaddr


class Decoder:
    """Turns the records of one tracepoint into raw event tuples."""

    __slots__ = ("_cookie", "_detail", "_identity", "_skaddr", "_tuple", "_unpack", "event_id", "kind", "size",
                 "light")

    def __init__(self, kind: Kind, fmt: EventFormat, extra: Sequence[str], detail: _DetailOf,
                 reader: FieldReader | None = None, skaddr: str | None = "skaddr") -> None:
        names = [*extra, "skaddr", "sock_cookie", *_SPLIT]
        reader = reader or FieldReader(fmt, names)
        self.kind = kind
        self.event_id = fmt.id
        self.size = reader.size
        self._unpack = reader.unpack
        self._skaddr = reader.index(skaddr) if skaddr else None
        self._cookie = reader.index("sock_cookie")
        self._tuple = _tuple_reader(fmt, reader)
        self._detail = detail
        #: Whether :meth:`identify` can stand in for :meth:`decode` when only the socket directory needs
        #: the record: the frequent kinds that carry the socket's address.
        self.light = kind in LIGHT_KINDS and self._skaddr is not None
        ident = FieldReader(fmt, ("skaddr", "sock_cookie"))
        self._identity = (ident.unpack, ident.index("skaddr"), ident.index("sock_cookie"), ident.size)

    def decode(self, page: bytes, offset: int, length: int, ts: int, cpu: int) -> RawEvent | None:
        """The raw event of the record at ``offset`` (None when the record is shorter than the layout)."""
        if length < self.size:
            return None
        values = self._unpack(page, offset)
        skaddr = values[self._skaddr] if self._skaddr is not None else 0
        cookie = values[self._cookie] if self._cookie is not None else 0
        return (self.kind, ts, cpu, skaddr, cookie, *self._tuple(values), *self._detail(values))

    def identify(self, page: bytes, offset: int, length: int) -> tuple[int, int, bool]:
        """``(skaddr, cookie or 0, destroyed)`` of a record, unpacking only those fields (``light`` decoders)."""
        unpack, at_skaddr, at_cookie, size = self._identity
        if length < size or at_skaddr is None:
            return 0, 0, False
        values = unpack(page, offset)
        return values[at_skaddr], values[at_cookie] if at_cookie is not None else 0, self.kind == Kind.DESTROY


def _reader(fmt: EventFormat, extra: Sequence[str]) -> FieldReader:
    return FieldReader(fmt, [*extra, "skaddr", "sock_cookie", *_SPLIT])


def build_decoder(kind: Kind, fmt: EventFormat) -> Decoder:
    """The decoder for tracepoint ``fmt`` (raises :class:`FormatError` if it lacks a field netlens needs)."""
    builder = _BUILDERS[kind]
    return builder(fmt)


def _state(fmt: EventFormat) -> Decoder:
    r = _reader(fmt, ("oldstate", "newstate"))
    old, new, names = _ix(r, "oldstate"), _ix(r, "newstate"), state_names(fmt, "newstate")
    return Decoder(Kind.STATE, fmt, (), lambda v: (_named(names, v[old]), _named(names, v[new])), r)


def _retransmit(fmt: EventFormat) -> Decoder:
    r = _reader(fmt, ("state", "err"))
    state, err, names = _ix(r, "state"), r.index("err"), state_names(fmt, "state")
    return Decoder(Kind.RETRANSMIT, fmt, (),
                   lambda v: (_named(names, v[state]), v[err] if err is not None else 0), r)


def _synack(fmt: EventFormat) -> Decoder:
    # skaddr is the listener; the connection-to-be has no socket yet, so none is named.
    return Decoder(Kind.RETRANSMIT_SYNACK, fmt, (), lambda v: (), skaddr=None)


def _reset_sent(fmt: EventFormat) -> Decoder:
    r = _reader(fmt, ("state", "reason", "skbaddr"))
    state, reason, skb = _ix(r, "state"), r.index("reason"), r.index("skbaddr")
    states, reasons = state_names(fmt, "state"), fmt.symbols("reason")

    def detail(v: Values) -> Values:
        why = reasons.get(v[reason], str(v[reason])) if reason is not None else None
        return (_named(states, v[state]), why, v[skb] if skb is not None else 0)

    return Decoder(Kind.RESET_SENT, fmt, (), detail, r)


def _reset_received(fmt: EventFormat) -> Decoder:
    return Decoder(Kind.RESET_RECEIVED, fmt, (), lambda v: (None,))


def _probe(fmt: EventFormat) -> Decoder:
    names = ("snd_cwnd", "ssthresh", "srtt", "snd_wnd", "rcv_wnd", "data_len", "snd_nxt", "snd_una")
    r = _reader(fmt, names)
    pick = operator.itemgetter(*(_ix(r, name) for name in names))
    return Decoder(Kind.PROBE, fmt, (), pick, r)


def _cong(fmt: EventFormat) -> Decoder:
    r = _reader(fmt, ("cong_state",))
    ca = _ix(r, "cong_state")
    return Decoder(Kind.CONG_STATE, fmt, (), lambda v: (_named(CA_STATES, v[ca]),), r)


def _plain(kind: Kind) -> Callable[[EventFormat], Decoder]:
    return lambda fmt: Decoder(kind, fmt, (), lambda v: ())


def _drop(fmt: EventFormat) -> Decoder:
    r = FieldReader(fmt, ("skbaddr", "rx_sk", "protocol", "reason"))
    skb, proto, reason = _ix(r, "skbaddr"), _ix(r, "protocol"), _ix(r, "reason")
    reasons = fmt.symbols("reason")
    families = {ETH_P_IP: AF_INET, ETH_P_IPV6: AF_INET6}
    decoder = Decoder(Kind.DROP, fmt, (), lambda v: (reasons.get(v[reason], str(v[reason])), v[skb]),
                      r, skaddr="rx_sk")
    decoder._tuple = lambda v: (families.get(v[proto], 0), b"", 0, b"", 0)
    return decoder


_BUILDERS: dict[Kind, Callable[[EventFormat], Decoder]] = {
    Kind.STATE: _state,
    Kind.RETRANSMIT: _retransmit,
    Kind.RETRANSMIT_SYNACK: _synack,
    Kind.RESET_SENT: _reset_sent,
    Kind.RESET_RECEIVED: _reset_received,
    Kind.PROBE: _probe,
    Kind.CONG_STATE: _cong,
    Kind.DESTROY: _plain(Kind.DESTROY),
    Kind.RCV_SPACE: _plain(Kind.RCV_SPACE),
    Kind.DROP: _drop,
}
