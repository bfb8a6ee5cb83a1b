"""pcapng in and out, with ``struct`` only: every section, interface and clock a file may hold.

Reading (:class:`PcapngBlocks`, used by :class:`netlens.capture.pcap.PcapReader`)
walks the blocks lazily, so it works on pipes. Every packet block keeps the
file's frame number (what Wireshark shows), whatever happens to it:

- a new section may switch byte order; its interfaces replace the old ones;
- a packet on a link type other than the first interface's is re-framed to it
  (its network header kept, the link header replaced) so all packets analyse
  together; a packet on an interface the section never described is read as if
  on the first interface; either way a note says which and how many;
- timestamps use each interface's ``if_tsresol`` (0 means whole seconds) and
  ``if_tsoffset``; one past what 64-bit nanoseconds can hold (the year 2262) is
  clamped, with a note.

Writing (:class:`PcapngWriter`) produces one section with one interface at
nanosecond resolution; each packet may carry comments (``opt_comment``), which
Wireshark shows as ``frame.comment`` and tshark can filter with
``-Y frame.comment``. :func:`write_pcapng` saves a ring with netlens's
analysis of each packet as its comments.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from netlens.capture.errors import PcapError
from netlens.capture.filewriter import CaptureFileWriter
from netlens.capture.frames import (
    ETH_P_IP,
    ETH_P_IPV6,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_NAMES,
    LINKTYPE_RAW,
    Other,
    network_offset,
)
from netlens.capture.ring import PacketRing

SHB = 0x0A0D0D0A
IDB = 1
OBSOLETE_PACKET = 2
SIMPLE_PACKET = 3
ENHANCED_PACKET = 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D
#: Blocks claiming more than this are corrupt (no link carries 16 MiB frames).
MAX_BLOCK = 16 * 1024 * 1024
#: The largest timestamp the packet ring holds (signed 64-bit nanoseconds: 2262-04-11).
MAX_TS_NS = (1 << 63) - 1
_OPT_END, _OPT_COMMENT, _IF_TSRESOL, _IF_TSOFFSET, _SHB_USERAPPL = 0, 1, 9, 14, 4
_RAW_TYPES = (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14)


def plural(count: int, noun: str) -> str:
    """``1 packet``, ``2 packets``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


class Interface:
    """One interface description: link type, timestamp units per second and offset (seconds)."""

    __slots__ = ("linktype", "offset_ns", "units")

    def __init__(self, linktype: int, units: int, offset_ns: int) -> None:
        self.linktype = linktype
        self.units = units
        self.offset_ns = offset_ns


def _interface(body: bytes, order: str) -> Interface:
    """Parse an interface description block's body (link type, if_tsresol, if_tsoffset)."""
    linktype = struct.unpack_from(order + "H", body)[0]
    units, offset = 1_000_000, 0
    i = 8
    while i + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, i)
        if code == _OPT_END:
            break
        value = body[i + 4:i + 4 + length]
        if code == _IF_TSRESOL and len(value) >= 1:
            units = 1 << min(value[0] & 0x7F, 63) if value[0] & 0x80 else 10 ** min(value[0], 19)
        elif code == _IF_TSOFFSET and len(value) >= 8:
            offset = struct.unpack_from(order + "q", value)[0] * 1_000_000_000
        i += 4 + (length + 3) // 4 * 4
    return Interface(linktype, units, offset)


def reframe(frame: bytes, source: int, target: int) -> bytes | None:
    """``frame`` (link type ``source``) with its link header replaced for ``target``; None when not possible.

    Only the network layer and what it carries is kept: an Ethernet header made
    here has zero addresses.
    """
    located = network_offset(frame, source)
    if isinstance(located, Other):
        return None
    offset, ethertype = located
    if target == LINKTYPE_ETHERNET:
        return bytes(12) + struct.pack("!H", ethertype) + frame[offset:]
    if target in _RAW_TYPES and ethertype in (ETH_P_IP, ETH_P_IPV6):
        return frame[offset:]
    return None


class _Notes:
    """Counts of what the reader had to do to a packet, with the first frame numbers, for one closing note."""

    def __init__(self) -> None:
        self.frames: dict[str, list[int]] = {}

    def add(self, where: str, what: str, no: int) -> None:
        seen = self.frames.setdefault(f"{where}\0{what}", [])
        if len(seen) < 3:
            seen.append(no)
        else:
            seen.append(-1)  # counted, not listed

    def sentences(self) -> list[str]:
        out = []
        for key, frames in self.frames.items():
            where, what = key.split("\0")
            listed = ", ".join(str(no) for no in frames if no >= 0)
            more = "" if len(frames) <= 3 else f" and {len(frames) - 3} more"
            out.append(f"{plural(len(frames), 'packet')} {where} (frame {listed}{more}): {what}.")
        return out


class PcapngBlocks:
    """Iterate ``(ts_ns, frame, orig_len)`` over the packet blocks of a pcapng stream, in file order.

    ``read(n)`` returns up to ``n`` bytes (fewer only at the end); ``head`` is
    what the caller already read of the first section header. ``linktype`` is
    the first interface's, known after construction. ``warning`` is set after
    iteration when the input ended early or some packets needed a note.
    """

    def __init__(self, read: Callable[[int], bytes], name: str, head: bytes) -> None:
        self._read = read
        self.name = name
        self.packets = 0
        self.notes = _Notes()
        self.stop: str | None = None
        self._head = head
        self._order = "<"
        self._interfaces: list[Interface] = []
        self._pending: list[tuple[int, bytes, int]] = []
        self._blocks = self._walk()
        for record in self._blocks:
            self._pending.append(record)
            if self._interfaces:
                break
        if not self._interfaces:
            raise PcapError(self.stop or f"{name} is a pcapng file without an interface description.")
        self.linktype = self._interfaces[0].linktype

    @property
    def warning(self) -> str | None:
        """Every note in one paragraph (None when there is nothing to say)."""
        sentences = ([self.stop] if self.stop else []) + self.notes.sentences()
        return " ".join(sentences) or None

    def __iter__(self) -> Iterator[tuple[int, bytes, int]]:
        pending, self._pending = self._pending, []
        yield from pending
        yield from self._blocks

    def _take(self, size: int) -> bytes:
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data + (self._read(size - len(data)) if len(data) < size else b"")
        return self._read(size)

    def _ended(self, where: str) -> None:
        self.stop = (f"{self.name} ends in the middle of {where}; "
                     f"kept the {plural(self.packets, 'complete packet')} before it.")

    def _walk(self) -> Iterator[tuple[int, bytes, int]]:
        """Yield each packet; records interfaces and sections as they come."""
        while True:
            head = self._take(12)
            if not head:
                return
            if len(head) < 12:
                self._ended("a pcapng block header")
                return
            if struct.unpack_from("<I", head)[0] == SHB:
                magic = head[8:12]
                if magic not in (struct.pack("<I", BYTE_ORDER_MAGIC), struct.pack(">I", BYTE_ORDER_MAGIC)):
                    self.stop = f"{self.name} has a pcapng section with an unknown byte-order mark."
                    return
                self._order = "<" if magic == struct.pack("<I", BYTE_ORDER_MAGIC) else ">"
            block_type, length = struct.unpack_from(self._order + "II", head)
            if length < 12 or length % 4 or length > MAX_BLOCK:
                self.stop = (f"{self.name}: a pcapng block claims {length} bytes, which cannot be right; "
                             f"kept the {plural(self.packets, 'packet')} before it.")
                return
            body = head[8:] + self._take(length - 12)
            if len(body) < length - 8:
                self._ended(f"a pcapng block ({len(body) + 8} of {length} bytes)")
                return
            record = self._block(block_type, body[:-4])
            if record is not None:
                yield record

    def _block(self, block_type: int, body: bytes) -> tuple[int, bytes, int] | None:
        order = self._order
        if block_type == SHB:
            self._interfaces = []  # a new section restarts interface numbering
            return None
        if block_type == IDB and len(body) >= 8:
            self._interfaces.append(_interface(body, order))
            return None
        if block_type == ENHANCED_PACKET and len(body) >= 20:
            iface, high, low, caplen, orig_len = struct.unpack_from(order + "IIIII", body)
            return self._packet(iface, (high << 32) | low, body[20:20 + caplen], orig_len)
        if block_type == OBSOLETE_PACKET and len(body) >= 20:
            iface, _drops, high, low, caplen, orig_len = struct.unpack_from(order + "HHIIII", body)
            return self._packet(iface, (high << 32) | low, body[20:20 + caplen], orig_len)
        if block_type == SIMPLE_PACKET and len(body) >= 4:
            (orig_len,) = struct.unpack_from(order + "I", body)
            return self._packet(0, None, body[4:4 + orig_len], orig_len)
        return None

    def _packet(self, iface: int, ticks: int | None, frame: bytes, orig_len: int) -> tuple[int, bytes, int]:
        self.packets += 1
        no = self.packets
        # A simple packet block before any interface description: nothing better to assume than Ethernet.
        first = self._interfaces[0] if self._interfaces else Interface(LINKTYPE_ETHERNET, 1_000_000, 0)
        if iface < len(self._interfaces):
            interface = self._interfaces[iface]
        else:
            link = LINKTYPE_NAMES.get(first.linktype, "the first interface's")
            self.notes.add("on interfaces the file never described", f"read as {link} frames", no)
            interface = first
        if interface.linktype != first.linktype:
            made = reframe(frame, interface.linktype, first.linktype)
            self.notes.add(f"on another link type ({LINKTYPE_NAMES.get(interface.linktype, interface.linktype)})",
                           "given the first interface's link header", no)
            frame = made if made is not None else b""
            orig_len = max(orig_len, len(frame))
        ts_ns = self._last_ts if ticks is None else ticks * 1_000_000_000 // interface.units + interface.offset_ns
        if not 0 <= ts_ns <= MAX_TS_NS:
            self.notes.add("stamped after the year 2262 (or before 1970)",
                           "shown at the nearest time netlens can hold", no)
            ts_ns = min(max(ts_ns, 0), MAX_TS_NS)
        self._last_ts = ts_ns
        return ts_ns, frame, orig_len

    _last_ts = 0


def _block(block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


class PcapngWriter(CaptureFileWriter):
    """Write frames to a pcapng file (path, ``-`` for stdout, or a binary file object), with comments.

    One section, one interface (``linktype``), nanosecond timestamps. Comments
    are UTF-8 ``opt_comment`` options of each enhanced packet block.
    """

    def __init__(self, target: str | os.PathLike[str] | BinaryIO, linktype: int = LINKTYPE_ETHERNET,
                 snaplen: int = 262144) -> None:
        super().__init__(target)
        self._file.write(_block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
                                + _option(_SHB_USERAPPL, b"netlens") + _option(_OPT_END, b"")))
        self._file.write(_block(IDB, struct.pack("<HHI", linktype, 0, snaplen)
                                + _option(_IF_TSRESOL, b"\x09") + _option(_OPT_END, b"")))

    def write(self, ts_ns: int, frame: bytes | bytearray | memoryview, orig_len: int | None = None,
              comments: Iterable[str] = ()) -> None:
        """Append one packet captured at ``ts_ns`` (epoch nanoseconds), with ``comments`` attached."""
        options = b"".join(_option(_OPT_COMMENT, text.encode("utf-8", "replace")) for text in comments)
        if options:
            options += _option(_OPT_END, b"")
        size = len(frame)
        head = struct.pack("<IIIII", 0, ts_ns >> 32, ts_ns & 0xFFFFFFFF, size, orig_len or size)
        self._file.write(_block(ENHANCED_PACKET, head + bytes(frame) + bytes(-size % 4) + options))
        self.packets += 1



def write_pcapng(target: str | os.PathLike[str] | BinaryIO, ring: PacketRing,
                 comments: Callable[[int], Sequence[str]] | None = None,
                 start: int | None = None, stop: int | None = None) -> int:
    """Write packets ``start..stop`` of ``ring`` as pcapng, each with ``comments(no)``; returns the count."""
    with PcapngWriter(target, ring.linktype) as writer:
        no = ring.first if start is None else start
        while True:
            batch = ring.read(no, stop, limit=4096)
            if not batch:
                break
            for number, ts_ns, frame in batch:
                writer.write(ts_ns, frame, ring.orig_len(number), comments(number) if comments else ())
            no = batch[-1][0] + 1
        return writer.packets
