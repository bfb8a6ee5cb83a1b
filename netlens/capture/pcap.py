"""Classic pcap out and in (plus pcapng in), with ``struct`` only.

Writing produces the classic format every tool reads (tcpdump, tshark,
Wireshark): a 24-byte global header, then a 16-byte header per record. The
nanosecond variant (magic ``a1b23c4d``) is the default, so the kernel's
nanosecond timestamps survive the round trip; ``nanosecond=False`` writes the
original microsecond format for very old readers.
Reading accepts microsecond and nanosecond pcap in either byte order and
pcapng (see :mod:`netlens.capture.pcapng`); it streams, so a pipe such as
``ssh host tcpdump -U -w - port 65432 | netlens read -`` shows packets as they
arrive. A truncated last record is reported in one sentence
(:attr:`PcapReader.warning`) and everything before it is kept.
"""

from __future__ import annotations

import io
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from netlens.capture.errors import PcapError
from netlens.capture.filewriter import CaptureFileWriter
from netlens.capture.frames import LINKTYPE_ETHERNET, LINKTYPE_NAMES, SUPPORTED_LINKTYPES
from netlens.capture.pcapng import PcapngBlocks, plural
from netlens.capture.ring import PacketRing

MAGIC_MICRO = 0xA1B2C3D4
MAGIC_NANO = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
#: Snapshot length written into headers; matches what the capture keeps (whole lo frames).
SNAPLEN = 262144
#: How much a read asks for at once.
_PIECE = 1 << 18
#: Records claiming more than this are corrupt (no link carries 16 MiB frames).
MAX_RECORD = 16 * 1024 * 1024

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD_LE = struct.Struct("<IIII")


class PcapWriter(CaptureFileWriter):
    """Write frames to a classic pcap file (path, ``-`` for stdout, or a binary file object).

    Buffered: :meth:`flush` (or :meth:`close`) before another program reads
    the file. Not thread-safe; one writer thread at a time (the capture thread
    while capturing).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = SNAPLEN,
        nanosecond: bool = True,
    ) -> None:
        super().__init__(target)
        self.nanosecond = nanosecond
        self.linktype = linktype
        self.packets = 0
        self._divisor = 1 if nanosecond else 1000
        self._pack = _RECORD_LE.pack
        self._file.write(_GLOBAL.pack(MAGIC_NANO if nanosecond else MAGIC_MICRO, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts_ns: int, frame: bytes | bytearray | memoryview, orig_len: int | None = None) -> None:
        """Append one record captured at ``ts_ns`` (epoch nanoseconds)."""
        seconds, fraction = divmod(ts_ns, 1_000_000_000)
        size = len(frame)
        self._file.write(self._pack(seconds, fraction // self._divisor, size, orig_len or size))
        self._file.write(frame)
        self.packets += 1



def write_pcap(
    target: str | os.PathLike[str] | BinaryIO,
    ring: PacketRing,
    start: int | None = None,
    stop: int | None = None,
    nanosecond: bool = True,
) -> int:
    """Write packets ``start..stop`` (default: all stored) of ``ring`` as pcap; returns the count."""
    with PcapWriter(target, ring.linktype, nanosecond=nanosecond) as writer:
        no = ring.first if start is None else start
        while True:
            batch = ring.read(no, stop, limit=4096)
            if not batch:
                break
            for number, ts_ns, frame in batch:
                writer.write(ts_ns, frame, ring.orig_len(number) if number in ring else None)
            no = batch[-1][0] + 1
        return writer.packets


class PcapReader:
    """Iterate ``(ts_ns, frame, orig_len)`` over a pcap or pcapng stream.

    Reads lazily, record by record, so it works on pipes. Raises
    :class:`PcapError` at construction when the input is not a capture file
    or uses a link type netlens cannot decode. After iteration, ``warning``
    holds a sentence if the input ended inside a record or had to be cut off.
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO) -> None:
        self._owns = False
        if isinstance(source, (str, os.PathLike)):
            if str(source) == "-":
                self._file: BinaryIO = _unbuffered_stdin()
                self._owns = self._file is not getattr(sys.stdin, "buffer", None)
                self.name = "standard input"
            else:
                try:
                    self._file = open(source, "rb", buffering=0)  # noqa: SIM115 (closed in close())
                except OSError as exc:
                    raise PcapError(f"cannot open {os.fspath(source)}: {exc.strerror or exc}.") from None
                self._owns = True
                self.name = os.fspath(source)
        else:
            self._file = source
            self.name = getattr(source, "name", "the input")
        self.warning: str | None = None
        self.packets = 0
        self.nanosecond = False
        self.pcapng = False
        self._blocks: PcapngBlocks | None = None
        self._buffer = b""
        self._pos = 0
        head = self._read(24)
        if not head:
            raise PcapError(f"{self.name} is empty: there is no pcap header.")
        if len(head) < 4:
            raise PcapError(f"{self.name} is too short to be a capture file ({len(head)} bytes).")
        magic_le = struct.unpack_from("<I", head)[0]
        magic_be = struct.unpack_from(">I", head)[0]
        if magic_le == PCAPNG_SHB:
            self.pcapng = True
            blocks = self._blocks = PcapngBlocks(self._read, self.name, head)
            self.linktype = blocks.linktype
            self.snaplen = SNAPLEN
            _check_linktype(self.linktype, self.name)
            return
        if magic_le in (MAGIC_MICRO, MAGIC_NANO):
            self._order = "<"
            magic = magic_le
        elif magic_be in (MAGIC_MICRO, MAGIC_NANO):
            self._order = ">"
            magic = magic_be
        else:
            raise PcapError(
                f"{self.name} is not a pcap file (it starts with 0x{magic_be:08x}; "
                f"pcap starts with a1b2c3d4 or a1b23c4d)."
            )
        if len(head) < 24:
            raise PcapError(f"{self.name} ends inside the pcap header ({len(head)} of 24 bytes).")
        self.nanosecond = magic == MAGIC_NANO
        _, _major, _minor, _zone, _sigfigs, self.snaplen, linktype = struct.unpack(self._order + "IHHiIII", head)
        # The upper bits of the link-type field carry FCS flags in newer files.
        self.linktype = linktype & 0x0FFFFFFF
        _check_linktype(self.linktype, self.name)
        self._record = struct.Struct(self._order + "IIII")

    def _fill(self) -> bool:
        """Append the next piece of input to the buffer (one read: a pipe gives what it has); False at the end."""
        piece = self._file.read(_PIECE)
        if not piece:
            return False
        self._buffer = self._buffer[self._pos:] + piece
        self._pos = 0
        return True

    def _read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or fewer only at the end of the input."""
        while len(self._buffer) - self._pos < size and self._fill():
            pass
        data = self._buffer[self._pos:self._pos + size]
        self._pos += len(data)
        return data

    @property
    def buffered(self) -> int:
        """Bytes read from the input but not yet parsed (a pipe reader flushes output only when this is 0)."""
        return len(self._buffer) - self._pos

    def __iter__(self) -> Iterator[tuple[int, bytes, int]]:
        if self._blocks is not None:
            yield from self._pcapng(self._blocks)
            return
        multiplier = 1 if self.nanosecond else 1000
        unpack = self._record.unpack_from
        while True:
            # Parse every whole record in the buffer, then read more: two slices per record, no copies of
            # the buffer (a file is read 256 KiB at a time, a pipe as it comes).
            buffer, pos = self._buffer, self._pos
            end = len(buffer)
            while pos + 16 <= end:
                seconds, fraction, size, orig_len = unpack(buffer, pos)
                if size > MAX_RECORD or pos + 16 + size > end:
                    break
                self.packets += 1
                self._pos = pos = pos + 16 + size
                yield seconds * 1_000_000_000 + fraction * multiplier, buffer[pos - size:pos], orig_len
            if pos + 16 <= end and unpack(buffer, pos)[2] > MAX_RECORD:
                size = unpack(buffer, pos)[2]
                self.warning = (f"{self.name}: record {self.packets + 1} claims {size} bytes, which cannot be "
                                f"right; kept the {plural(self.packets, 'packet')} before it.")
                return
            if not self._fill():
                self._ended()
                return

    def _ended(self) -> None:
        """At the end of the input: say what a partial last record held, if any."""
        left = len(self._buffer) - self._pos
        if not left:
            return
        if left < 16:
            self._truncated(f"a record header ({left} of 16 bytes)")
        else:
            size = self._record.unpack_from(self._buffer, self._pos)[2]
            self._truncated(f"packet {self.packets + 1} ({left - 16} of {size} bytes)")

    def _truncated(self, where: str) -> None:
        self.warning = (f"{self.name} ends in the middle of {where}; "
                        f"kept the {plural(self.packets, 'complete packet')} before it.")

    def _pcapng(self, blocks: PcapngBlocks) -> Iterator[tuple[int, bytes, int]]:
        try:
            for record in blocks:
                self.packets = blocks.packets
                yield record
        finally:
            self.packets = blocks.packets
            self.warning = blocks.warning

    def close(self) -> None:
        """Close the file if this reader opened it."""
        if self._owns:
            self._file.close()

    def __enter__(self) -> PcapReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unbuffered_stdin() -> BinaryIO:
    """Standard input without Python's buffer: each read returns what the pipe holds, nothing waits hidden."""
    try:
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    except (AttributeError, OSError, ValueError):  # replaced by an object without a descriptor (tests, IDEs)
        stream: BinaryIO = sys.stdin.buffer
        return stream


def _check_linktype(linktype: int, name: str) -> None:
    if linktype not in SUPPORTED_LINKTYPES:
        known = ", ".join(sorted({v for v in LINKTYPE_NAMES.values()}))
        raise PcapError(f"{name} holds link type {linktype}, which netlens cannot decode (it reads {known}).")


@dataclass
class ReadResult:
    """What :func:`read_pcap` loaded."""

    ring: PacketRing
    packets: int
    #: One sentence if the input was truncated or corrupt (what was read is kept).
    warning: str | None


def read_pcap(source: str | os.PathLike[str] | BinaryIO | bytes, ring: PacketRing | None = None) -> ReadResult:
    """Load a whole pcap/pcapng file, stream (``-`` is stdin) or bytes into ``ring`` (a new one by default)."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    with PcapReader(source) as reader:
        if ring is None:
            ring = PacketRing(linktype=reader.linktype)
        else:
            ring.linktype = reader.linktype
        append = ring.append
        for ts_ns, frame, orig_len in reader:
            append(ts_ns, frame, orig_len)
        return ReadResult(ring, reader.packets, reader.warning)
