"""The attributes (netlink TLVs) after each ``inet_diag_msg``: TCP_INFO, socket memory, congestion, shutdown.

A snapshot keeps each socket's attribute block as one ``bytes`` object and
decodes it only when someone looks (see :class:`netlens.probe.model.SocketInfo`):
decoding TCP_INFO into a 60-field record for 10,000 sockets takes about
120 ms here, nearly the whole snapshot budget, and the UI shows a few dozen rows. This module
walks such a block and decodes its parts (tests build blocks with
``tests/support/probe_fixtures.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, NamedTuple

from netlens.probe.fastbuild import fast_builder
from netlens.probe.netlink import (
    INET_DIAG_CONG,
    INET_DIAG_INFO,
    INET_DIAG_SHUTDOWN,
    INET_DIAG_SKMEMINFO,
    NLATTR,
)
from netlens.probe.tcpinfo import TcpInfo, parse_tcp_info

_NLA_TYPE_MASK = 0x3FFF  # drops NLA_F_NESTED / NLA_F_NET_BYTEORDER
_SKMEM = struct.Struct("=9I")

# The shutdown mask of INET_DIAG_SHUTDOWN: which directions this end has shut.
SHUTDOWN_RD = 1
SHUTDOWN_WR = 2


@dataclass(frozen=True, slots=True)
class SocketMemory:
    """Socket memory as ``ss -m`` shows it (INET_DIAG_SKMEMINFO); bytes, except ``drops`` (packets).

    A kernel older than the field (``drops`` came in 4.x) leaves it ``None``.
    """

    rmem_alloc: int | None  # r: receive queue memory in use
    rcvbuf: int | None  # rb: receive buffer limit (SO_RCVBUF, doubled by the kernel)
    wmem_alloc: int | None  # t: memory of packets sent and not yet freed by the driver
    sndbuf: int | None  # tb: send buffer limit
    fwd_alloc: int | None  # f: memory reserved but not yet used
    wmem_queued: int | None  # w: send queue memory
    optmem: int | None  # o: socket options memory
    backlog: int | None  # bl: packets waiting while the socket was locked
    drops: int | None  # d: packets dropped

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return dict(zip(self.__slots__, _SOCKETMEMORY_VALUES(self), strict=True))


_build_memory = fast_builder(SocketMemory)
# Every field at once, in one C call: to_dict runs for each socket of ``conns --json``.
_SOCKETMEMORY_VALUES = attrgetter(*SocketMemory.__slots__)


class Attributes(NamedTuple):
    """The decoded attribute block of one socket; each part is ``None`` when the kernel did not send it."""

    tcp_info: TcpInfo | None
    memory: SocketMemory | None
    congestion: str | None  # congestion control algorithm, e.g. "cubic"
    shutdown: int | None  # SHUTDOWN_RD | SHUTDOWN_WR bits


NO_ATTRIBUTES = Attributes(None, None, None, None)


def iter_attributes(
    block: bytes | bytearray | memoryview, offset: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int]]:
    """Yield (type, payload offset, payload length) for each netlink attribute in ``block[offset:end]``.

    Attributes are padded to 4 bytes; a length under the 4-byte header or
    past the end stops the walk (a truncated block yields what is whole).
    """
    if end is None:
        end = len(block)
    while offset + NLATTR.size <= end:
        length, kind = NLATTR.unpack_from(block, offset)
        if length < NLATTR.size or offset + length > end:
            return
        yield kind & _NLA_TYPE_MASK, offset + NLATTR.size, length - NLATTR.size
        offset += (length + 3) & ~3


def parse_skmeminfo(buf: bytes | bytearray | memoryview, offset: int, length: int) -> SocketMemory:
    """Decode an INET_DIAG_SKMEMINFO payload (an array of u32, longer on newer kernels); absent slots are ``None``."""
    count = length // 4
    if count >= 9:
        return _build_memory(*_SKMEM.unpack_from(buf, offset))
    values = struct.unpack_from(f"={count}I", buf, offset)
    return _build_memory(*values, *((None,) * (9 - count)))


def decode_attributes(block: bytes) -> Attributes:
    """Decode TCP_INFO, memory, congestion algorithm and shutdown mask from one socket's attribute block."""
    if not block:
        return NO_ATTRIBUTES
    tcp_info = memory = congestion = shutdown = None
    for kind, start, length in iter_attributes(block):
        if kind == INET_DIAG_INFO:
            tcp_info = parse_tcp_info(block, start, length)
        elif kind == INET_DIAG_SKMEMINFO:
            memory = parse_skmeminfo(block, start, length)
        elif kind == INET_DIAG_CONG:
            congestion = block[start : start + length].split(b"\0", 1)[0].decode("ascii", "backslashreplace")
        elif kind == INET_DIAG_SHUTDOWN and length >= 1:
            shutdown = block[start]
    return Attributes(tcp_info, memory, congestion, shutdown)


class _Layout(NamedTuple):
    """Where TCP_INFO sits in blocks laid out like one already walked, and how to prove a block is."""

    headers: struct.Struct  # reads (length, type) of every attribute up to and including TCP_INFO's
    before: tuple[int, ...]  # those values for the attributes before TCP_INFO, flattened
    info_offset: int


# The kernel writes a socket's attributes in a fixed order, so the sockets of a
# snapshot share one or two layouts (IPv6 ones carry one more attribute). The
# few seen last, most recent first; replaced whole, so threads never see a torn one.
_recent_layouts: tuple[_Layout, ...] = ()
_MAX_LAYOUTS = 4


def tcp_info_span(block: bytes) -> tuple[int, int] | None:
    """Return (offset, length) of the TCP_INFO payload in an attribute block, or ``None``.

    The change tracker calls it for every socket of every snapshot. A block
    laid out like a recent one is checked in one C call: every header before
    TCP_INFO must hold the same length and type as there, which proves each
    boundary exactly as walking them would. Any other block is walked.
    """
    end = len(block)
    for layout in _recent_layouts:
        if end >= layout.headers.size:
            values = layout.headers.unpack_from(block)
            length = values[-2]
            if (
                values[-1] & _NLA_TYPE_MASK == INET_DIAG_INFO
                and values[:-2] == layout.before
                and 4 <= length <= end - layout.info_offset
            ):
                return layout.info_offset + 4, length - 4
    return _walk_to_tcp_info(block)


def _walk_to_tcp_info(block: bytes) -> tuple[int, int] | None:
    """The plain walk of :func:`tcp_info_span`; remembers the layout it finds."""
    global _recent_layouts
    offset, end = 0, len(block)
    unpack = NLATTR.unpack_from
    fmt, before = "=", list[int]()
    while offset + 4 <= end:
        length, kind = unpack(block, offset)
        if length < 4 or offset + length > end:
            return None
        if kind & _NLA_TYPE_MASK == INET_DIAG_INFO:
            layout = _Layout(struct.Struct(fmt + "HH"), tuple(before), offset)
            others = (old for old in _recent_layouts if old[1:] != layout[1:])  # (Structs compare by identity)
            _recent_layouts = (layout, *others)[:_MAX_LAYOUTS]
            return offset + 4, length - 4
        padded = (length + 3) & ~3
        fmt += f"HH{padded - 4}x" if padded > 4 else "HH"
        before += (length, kind)
        offset += padded
    return None
