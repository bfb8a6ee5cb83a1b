"""Builders for the trace engine's unit tests: tracepoint records and ring-buffer pages, byte by byte.

Records are laid out from the kernel's own format files (saved from a 6.18
kernel in ``trace_data/``), so a test that decodes them checks the decoder
against the layout, never against itself.
"""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path
from typing import Any

from netlens.trace.formats import EventFormat, parse_format
from netlens.trace.ringbuf import MISSED_EVENTS, MISSED_STORED

DATA = Path(__file__).parent / "trace_data"


def kernel_format(system: str, name: str) -> EventFormat:
    """A format file saved from the 6.18 kernel."""
    return parse_format((DATA / f"{system}.{name}.format").read_text(), system)


def record(fmt: EventFormat, **values: Any) -> bytes:
    """A record of tracepoint ``fmt`` with ``common_type`` set and the given fields (others zero)."""
    size = max(f.offset + f.size for f in fmt.fields)
    buf = bytearray(size)
    values.setdefault("common_type", fmt.id)
    for name, value in values.items():
        field = fmt.field(name)
        assert field is not None, f"{fmt.name} has no field {name}"
        if isinstance(value, bytes):
            assert len(value) <= field.size
            buf[field.offset:field.offset + len(value)] = value
        else:
            buf[field.offset:field.offset + field.size] = value.to_bytes(field.size, sys.byteorder,
                                                                         signed=field.signed)
    return bytes(buf)


def sockaddr(address: str, port: int) -> bytes:
    """A ``struct sockaddr_in``/``sockaddr_in6`` padded to 28 bytes, as ``TP_STORE_ADDR_PORTS`` stores it."""
    if ":" in address:
        body = struct.pack("=H", socket.AF_INET6) + port.to_bytes(2, "big") + bytes(4)
        body += socket.inet_pton(socket.AF_INET6, address) + bytes(4)
    else:
        body = struct.pack("=H", socket.AF_INET) + port.to_bytes(2, "big") + socket.inet_aton(address)
    return body.ljust(28, b"\0")


def v4(address: str) -> bytes:
    """Packed IPv4 address."""
    return socket.inet_aton(address)


def data_event(delta: int, payload: bytes) -> bytes:
    """One data record with its compressed header: short form up to 112 bytes, else the long form."""
    padded = payload + bytes(-len(payload) % 4)
    if len(padded) <= 112:
        return struct.pack("=I", (delta << 5) | (len(padded) // 4)) + padded
    return struct.pack("=II", delta << 5, len(padded) + 4) + padded


def time_extend(delta: int) -> bytes:
    """A time-extend record adding ``delta`` nanoseconds."""
    return struct.pack("=II", ((delta & ((1 << 27) - 1)) << 5) | 30, delta >> 27)


def absolute_stamp(stamp: int) -> bytes:
    """An absolute time stamp record (only the low 59 bits are stored)."""
    return struct.pack("=II", ((stamp & ((1 << 27) - 1)) << 5) | 31, (stamp >> 27) & 0xFFFFFFFF)


def discarded(delta: int, length: int) -> bytes:
    """A record the kernel discarded after reserving it: padding with a non-zero delta."""
    return struct.pack("=II", (delta << 5) | 29, length + 4) + bytes(length)


def page(timestamp: int, body: bytes, missed: int | None = None, size: int = 4096) -> bytes:
    """A whole sub-buffer as ``trace_pipe_raw`` returns it (64-bit commit word)."""
    commit = len(body)
    tail = b""
    if missed is not None:
        commit |= MISSED_EVENTS
        if missed >= 0:
            commit |= MISSED_STORED
            tail = struct.pack("=Q", missed)
    raw = struct.pack("=QQ", timestamp, commit) + body + tail
    assert len(raw) <= size
    return raw.ljust(size, b"\0")
