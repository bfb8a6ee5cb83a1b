"""Edits of real captures for the witness corpus: what capture setups and damaged files do to a pcap.

Written with ``struct`` only, independent of netlens's reader and writer, so a
reader bug cannot hide in the test data. Classic pcap records in, classic pcap
or hand-built pcapng out.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from pathlib import Path

Record = tuple[int, int, bytes, int]  # (seconds, microseconds, captured bytes, original length)


def read_records(path: Path) -> tuple[int, list[Record]]:
    """(link type, records) of a little-endian microsecond classic pcap (what tcpdump writes)."""
    data = path.read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    if magic != 0xA1B2C3D4:
        raise ValueError(f"{path}: expected a little-endian microsecond pcap")
    records: list[Record] = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, micros, size, orig = struct.unpack_from("<IIII", data, offset)
        records.append((seconds, micros, data[offset + 16:offset + 16 + size], orig))
        offset += 16 + size
    return linktype, records


def pcap_bytes(linktype: int, records: Iterable[Record], snaplen: int = 262144) -> bytes:
    """A classic little-endian microsecond pcap of ``records``."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for seconds, micros, frame, orig in records:
        out.append(struct.pack("<IIII", seconds, micros, len(frame), orig) + frame)
    return b"".join(out)


def write_pcap(path: Path, linktype: int, records: Iterable[Record]) -> Path:
    """Write ``records`` to ``path`` as classic pcap."""
    path.write_bytes(pcap_bytes(linktype, records))
    return path


def _later(record: Record, micros: int) -> Record:
    seconds, fraction, frame, orig = record
    total = seconds * 1_000_000 + fraction + micros
    return total // 1_000_000, total % 1_000_000, frame, orig


def duplicated(records: list[Record]) -> list[Record]:
    """Every frame twice, 3 µs apart: what a capture on two interfaces (a bridge and its port) records."""
    return [copy for record in records for copy in (record, _later(record, 3))]


def thinned(records: list[Record], every: int, payload_only: bool = True) -> list[Record]:
    """Drop every ``every``-th frame that carries TCP payload: frames the capture missed (not the network)."""
    kept, counter = [], 0
    for record in records:
        if not payload_only or _tcp_payload(record[2]) > 0:
            counter += 1
            if counter % every == 0:
                continue
        kept.append(record)
    return kept


def swapped(records: list[Record], every: int) -> list[Record]:
    """Swap every ``every``-th data frame with the data frame after it, keeping the timestamps in place."""
    out = list(records)
    data = [i for i, record in enumerate(out) if _tcp_payload(record[2]) > 0]
    for n in range(every - 1, len(data) - 1, every):
        a, b = data[n], data[n + 1]
        out[a], out[b] = (out[a][0], out[a][1], out[b][2], out[b][3]), (out[b][0], out[b][1], out[a][2], out[a][3])
    return out


def _tcp_payload(frame: bytes) -> int:
    """TCP payload length of an Ethernet/IPv4 frame (0 for anything else)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return 0
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack_from("!H", frame, 16)[0]
    if len(frame) < 14 + ihl + 13:
        return 0
    return max(0, total - ihl - (frame[14 + ihl + 12] >> 4) * 4)


def tagged(records: list[Record], make_tag: Callable[[int], bytes]) -> list[Record]:
    """Insert ``make_tag(n)`` after the MAC addresses of Ethernet frame n (a VLAN tag, an MPLS stack)."""
    return [(s, u, frame[:12] + make_tag(n) + frame[12:], orig + len(make_tag(n)))
            for n, (s, u, frame, orig) in enumerate(records)]


def vlan_tag(vid: int) -> Callable[[int], bytes]:
    """An 802.1Q tag with VLAN id ``vid`` (inserted before the frame's own ethertype)."""
    return lambda n: struct.pack("!HH", 0x8100, vid)


def mpls_frames(records: list[Record]) -> list[Record]:
    """IPv4 frames carried over a two-label MPLS stack (ethertype 0x8847; the bottom label has S=1)."""
    out = []
    for s, u, frame, orig in records:
        stack = struct.pack("!HII", 0x8847, (1000 << 12) | 64, (2000 << 12) | (1 << 8) | 64)
        out.append((s, u, frame[:12] + stack + frame[14:], orig + 8))
    return out


def fragmented(records: list[Record]) -> list[Record]:
    """Every IPv4 frame with more than 1000 bytes of IP payload split into two IP fragments (8-byte aligned)."""
    out: list[Record] = []
    for s, u, frame, orig in records:
        ihl = (frame[14] & 0x0F) * 4 if len(frame) > 14 else 0
        if len(frame) < 14 + ihl + 1008 or frame[12:14] != b"\x08\x00":
            out.append((s, u, frame, orig))
            continue
        header, body = frame[14:14 + ihl], frame[14 + ihl:]
        for offset, part, more in ((0, body[:1000], True), (1000, body[1000:], False)):
            ip = bytearray(header)
            struct.pack_into("!H", ip, 2, ihl + len(part))
            struct.pack_into("!H", ip, 6, (0x2000 if more else 0) | offset // 8)
            struct.pack_into("!H", ip, 10, 0)
            struct.pack_into("!H", ip, 10, _checksum(bytes(ip)))
            piece = frame[:14] + bytes(ip) + part
            out.append((s, u, piece, len(piece)))
    return out


def tiled(records: list[Record], packets: int) -> list[Record]:
    """Copies of a real capture one after another until ``packets`` frames, each copy on new client ports.

    Every port a SYN came from (a client's) moves up by 1 per copy, so each copy
    holds new TCP streams; timestamps move on by the capture's span plus 1 ms.
    Checksums are left as they were (neither netlens nor tshark checks them by default).
    """
    clients = {struct.unpack_from("!H", frame, 34)[0] for _, _, frame, _ in records
               if len(frame) >= 54 and frame[12:14] == b"\x08\x00" and frame[47] & 0x12 == 0x02}
    span = ticks(records[-1]) - ticks(records[0]) + 1000
    out: list[Record] = []
    copy = 0
    while len(out) < packets:
        for seconds, micros, frame, orig in records:
            data = bytearray(frame)
            for at in (34, 36):
                port = struct.unpack_from("!H", data, at)[0]
                if port in clients:
                    struct.pack_into("!H", data, at, (port - 1024 + copy) % 60000 + 1024)
            total = seconds * 1_000_000 + micros + copy * span
            out.append((total // 1_000_000, total % 1_000_000, bytes(data), orig))
        copy += 1
    return out[:packets]


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# --------------------------------------------------------------------------- pcapng, built by hand

def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def section(order: str = "<") -> bytes:
    """A section header block in byte order ``order`` (section length unknown)."""
    return _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def interface(order: str, linktype: int, tsresol: int | None = None) -> bytes:
    """An interface description block; ``tsresol`` is the raw ``if_tsresol`` byte (None: no option)."""
    options = b""
    if tsresol is not None:
        options = _option(order, 9, bytes([tsresol])) + _option(order, 0, b"")
    return _block(order, 1, struct.pack(order + "HHI", linktype, 0, 262144) + options)


def packet(order: str, iface: int, ticks: int, frame: bytes, orig: int | None = None, comment: str = "") -> bytes:
    """An enhanced packet block of ``frame`` on interface ``iface`` at ``ticks`` timestamp units."""
    options = _option(order, 1, comment.encode()) + _option(order, 0, b"") if comment else b""
    body = struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                       len(frame) if orig is None else orig)
    return _block(order, 6, body + frame + b"\0" * (-len(frame) % 4) + options)


def ticks(record: Record) -> int:
    """Microseconds since the epoch of ``record`` (the default pcapng resolution)."""
    return record[0] * 1_000_000 + record[1]
