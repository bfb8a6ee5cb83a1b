"""Kernel-format bytes for synthetic probe records: the inverse of the probe's decoders.

Tests and the UI's recorded screens build :class:`netlens.probe.SocketInfo`
records whose ``attributes`` block must look exactly like what sock_diag
sends. The package only ever decodes such blocks; building them is a test
rig, so it lives here.

    ``encode_attributes(tcp_info=None, memory=None, congestion=None, shutdown=None) -> bytes``
    ``pack_tcp_info(info) -> bytes``
"""

from __future__ import annotations

import struct
import sys

from netlens.probe import SocketMemory, TcpInfo
from netlens.probe.netlink import INET_DIAG_CONG, INET_DIAG_INFO, INET_DIAG_SHUTDOWN, INET_DIAG_SKMEMINFO, NLATTR
from netlens.probe.tcpinfo import TCP_INFO_LAYOUT

_FULL = struct.Struct("=" + "".join(fmt for _, fmt in TCP_INFO_LAYOUT))
# Where each member ends: a struct cut after member i is _ENDS[i] bytes long.
_ENDS = tuple(
    struct.calcsize("=" + "".join(fmt for _, fmt in TCP_INFO_LAYOUT[: i + 1])) for i in range(len(TCP_INFO_LAYOUT))
)
# The raw members after the eight leading bytes map one to one onto TcpInfo fields.
_PLAIN_MEMBERS = tuple(name for name, _ in TCP_INFO_LAYOUT[8:])
# C bit-fields fill from the least significant bit on little-endian ABIs.
_LITTLE = sys.byteorder == "little"


def _bitfield_bytes(info: TcpInfo) -> tuple[int | None, int | None]:
    """The ``wscale`` and ``flags`` bytes of ``struct tcp_info`` (``None`` where the record has no value)."""
    wscale = flags = None
    if info.snd_wscale is not None and info.rcv_wscale is not None:
        wscale = info.snd_wscale | (info.rcv_wscale << 4) if _LITTLE else (info.snd_wscale << 4) | info.rcv_wscale
    if info.fastopen_client_fail is not None:
        limited = int(bool(info.delivery_rate_app_limited))
        fail = info.fastopen_client_fail
        flags = limited | (fail << 1) if _LITTLE else (limited << 7) | (fail << 5)
    return wscale, flags


def pack_tcp_info(info: TcpInfo) -> bytes:
    """Encode ``info`` as the kernel would (the inverse of :func:`netlens.probe.tcpinfo.parse_tcp_info`).

    The struct ends before the first member that is ``None``, as an older
    kernel's would; ``tcpi_state`` (not part of :class:`TcpInfo`) is 0.
    """
    wscale, flags = _bitfield_bytes(info)
    values = [0, info.ca_state, info.retransmits, info.probes, info.backoff, info.options, wscale, flags]
    values += [getattr(info, name) for name in _PLAIN_MEMBERS]
    present = values.index(None) if None in values else len(values)
    data = _FULL.pack(*(value if i < present else 0 for i, value in enumerate(values)))
    return data[: _ENDS[present - 1]] if present else b""


def _attribute(kind: int, payload: bytes) -> bytes:
    """One netlink attribute: header, payload, padding to 4 bytes."""
    length = NLATTR.size + len(payload)
    return NLATTR.pack(length, kind) + payload + bytes(-length % 4)


def encode_attributes(
    tcp_info: TcpInfo | None = None,
    memory: SocketMemory | None = None,
    congestion: str | None = None,
    shutdown: int | None = None,
) -> bytes:
    """Build the attribute block the kernel would send for these parts (the inverse of ``decode_attributes``).

    ``SocketInfo(..., attributes=encode_attributes(tcp_info=...))``. A
    ``TcpInfo`` whose later fields are ``None`` is encoded as the shorter
    struct an older kernel sends; a ``SocketMemory`` likewise.
    """
    parts = []
    if shutdown is not None:
        parts.append(_attribute(INET_DIAG_SHUTDOWN, bytes((shutdown,))))
    if memory is not None:
        values = [getattr(memory, name) for name in memory.__slots__]
        present = values.index(None) if None in values else len(values)
        parts.append(_attribute(INET_DIAG_SKMEMINFO, struct.pack(f"={present}I", *values[:present])))
    if tcp_info is not None:
        parts.append(_attribute(INET_DIAG_INFO, pack_tcp_info(tcp_info)))
    if congestion is not None:
        parts.append(_attribute(INET_DIAG_CONG, congestion.encode("ascii") + b"\0"))
    return b"".join(parts)
