"""Which events to keep: by port, address and socket cookie, in the kernel first and then here.

Tracepoints fire for every socket of the machine, in every network
namespace, so the kernel-side ``filter`` file of each event gets the part of
the filter its fields can express (ports where the event has ``sport`` and
``dport``, cookies where it has ``sock_cookie``, IPv4 addresses where it has
4-byte ``saddr``/``daddr``) and discards the rest before it costs anything.
The same filter then runs here on every event, so a kernel that rejects an
expression, or an event with no such field (``tcp_send_reset`` carries
``sockaddr`` arrays, ``kfree_skb`` no addresses at all), loses nothing but
speed. Within one category any value matches; categories must all match.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from netlens.trace.formats import EventFormat

_IPPROTO_TCP = 6
_NOT_DROPS = ("NOT_SPECIFIED", "QUEUE_PURGE")
_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def _packed_forms(text: str) -> tuple[bytes, ...]:
    """The packed forms an address can take in a record: IPv4 also as an IPv4-mapped IPv6 address."""
    address = ipaddress.ip_address(text)
    if address.version == 4:
        return (address.packed, _MAPPED_PREFIX + address.packed)
    mapped = address.ipv4_mapped
    return (address.packed, mapped.packed) if mapped is not None else (address.packed,)


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Ports, addresses (text) and cookies to keep; empty everywhere means every TCP event."""

    ports: frozenset[int] = frozenset()
    addresses: frozenset[str] = frozenset()
    cookies: frozenset[int] = frozenset()

    @classmethod
    def of(cls, ports: Iterable[int] = (), addresses: Iterable[str] = (), cookies: Iterable[int] = ()) -> TraceFilter:
        """Build a filter; raises ValueError for an address that is not an IP address or a bad port."""
        port_set = frozenset(ports)
        if any(not 0 < port <= 0xFFFF for port in port_set):
            raise ValueError("ports are numbers from 1 to 65535")
        for text in addresses:
            ipaddress.ip_address(text)
        return cls(port_set, frozenset(addresses), frozenset(cookies))

    @property
    def everything(self) -> bool:
        """True when nothing is filtered out."""
        return not (self.ports or self.addresses or self.cookies)

    def packed_addresses(self) -> frozenset[bytes]:
        """The addresses as records hold them (4 or 16 bytes, IPv4 also in its mapped form)."""
        return frozenset(form for text in self.addresses for form in _packed_forms(text))

    def describe(self) -> str:
        """``port 65432``, ``ports 80, 443 and address ::1``... or ``every TCP socket``."""
        parts = []
        for noun, values in (("port", sorted(self.ports)), ("address", sorted(self.addresses)),
                             ("cookie", [hex(c) for c in sorted(self.cookies)])):
            if values:
                parts.append(f"{noun}{'s' if len(values) > 1 else ''} {', '.join(map(str, values))}")
        return " and ".join(parts) if parts else "every TCP socket"

    def kernel_expression(self, fmt: EventFormat) -> str:
        """The part of this filter that ``fmt``'s kernel ``filter`` file can apply ("" for none)."""
        terms = [*_base_terms(fmt)]
        if self.ports and fmt.has("sport", "dport"):
            ports = " || ".join(f"sport == {p} || dport == {p}" for p in sorted(self.ports))
            if fmt.name == "tcp_destroy_sock":
                # A refused or aborted socket is destroyed after tcp_disconnect() zeroed its peer port;
                # its destroy must still come through, or its address would seem to live on.
                ports += " || dport == 0"
            terms.append(ports)
        if self.cookies and fmt.has("sock_cookie"):
            terms.append(" || ".join(f"sock_cookie == {c}" for c in sorted(self.cookies)))
        v4 = [ipaddress.ip_address(a) for a in sorted(self.addresses)]
        saddr = fmt.field("saddr")
        if (v4 and all(a.version == 4 for a in v4) and saddr is not None and saddr.size == 4
                and fmt.has("daddr", "family")):
            # A 4-byte array compares as a native-endian integer; IPv6 sockets pass (checked here later).
            words = [int.from_bytes(a.packed, sys.byteorder) for a in v4]
            terms.append(" || ".join(["family == 10", *(f"saddr == {w:#x} || daddr == {w:#x}" for w in words)]))
        return " && ".join(f"({t})" for t in terms)


def _base_terms(fmt: EventFormat) -> list[str]:
    """Terms every session applies: TCP only, and real drops only."""
    terms = []
    if fmt.name == "inet_sock_set_state" and fmt.has("protocol"):
        terms.append(f"protocol == {_IPPROTO_TCP}")
    if fmt.name == "kfree_skb" and fmt.has("protocol", "reason"):
        # IP packets only, and real drops: NOT_SPECIFIED is the generic free of the old kfree_skb()
        # call sites, QUEUE_PURGE every close that frees queued buffers (thousands a second on a busy host).
        terms.append("protocol == 2048 || protocol == 34525")
        terms.extend(f"reason != {value}" for value, name in sorted(fmt.symbols("reason").items())
                     if name in _NOT_DROPS)
    return terms


class Matcher:
    """The user-space half of a :class:`TraceFilter`, fast enough for every event."""

    __slots__ = ("_addresses", "_cookies", "_ports", "everything")

    def __init__(self, trace_filter: TraceFilter) -> None:
        self.everything = trace_filter.everything
        self._ports = trace_filter.ports
        self._addresses = trace_filter.packed_addresses()
        self._cookies = trace_filter.cookies

    def matches(self, saddr: bytes, sport: int, daddr: bytes, dport: int, cookie: int | None) -> bool:
        """Whether an event with this tuple and cookie passes (unknown cookies never match a cookie filter)."""
        if self.everything:
            return True
        if self._ports and sport not in self._ports and dport not in self._ports:
            return False
        if self._addresses and saddr not in self._addresses and daddr not in self._addresses:
            return False
        return not self._cookies or cookie in self._cookies
