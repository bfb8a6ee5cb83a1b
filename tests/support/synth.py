"""Build TCP frames from scratch with ``struct``: for tests, benchmarks and deterministic UI snapshots.

:func:`tcp_frame` makes one frame (Ethernet with zero MACs like lo, Linux
cooked, or raw IP; IPv4 or IPv6). :class:`Conversation` keeps the sequence
numbers of a client/server pair so a test can write an exchange the way it
reads on a timeline: ``conv.client(b"hello")``, ``conv.server(flags="A")``...
"""

from __future__ import annotations

import socket
import struct

from netlens.capture.frames import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW
from netlens.capture.ring import PacketRing

_LETTERS = "FSRPAUECN"


def flag_bits(flags: str | int) -> int:
    """``"SA"`` (scapy letters) -> 0x12; ints pass through."""
    if isinstance(flags, int):
        return flags
    bits = 0
    for letter in flags:
        bits |= 1 << _LETTERS.index(letter)
    return bits


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def tcp_options(mss: int | None = None, wscale: int | None = None, sack_ok: bool = False,
                timestamp: tuple[int, int] | None = None) -> bytes:
    """Encoded TCP options, padded with NOPs to a multiple of 4 bytes."""
    out = b""
    if mss is not None:
        out += struct.pack("!BBH", 2, 4, mss)
    if sack_ok:
        out += b"\x04\x02"
    if timestamp is not None:
        out += b"\x01\x01" + struct.pack("!BBII", 8, 10, *timestamp)
    if wscale is not None:
        out += b"\x01" + struct.pack("!BBB", 3, 3, wscale)
    return out + b"\x01" * (-len(out) % 4)


def tcp_frame(
    src: str = "127.0.0.1",
    dst: str = "127.0.0.1",
    sport: int = 50000,
    dport: int = 65432,
    seq: int = 0,
    ack: int = 0,
    flags: str | int = "A",
    window: int = 512,
    payload: bytes = b"",
    options: bytes = b"",
    linktype: int = LINKTYPE_ETHERNET,
    ip_id: int = 1,
) -> bytes:
    """One TCP segment as a frame of ``linktype``; IPv6 when the addresses contain ``:``."""
    v6 = ":" in src
    family = socket.AF_INET6 if v6 else socket.AF_INET
    s, d = socket.inet_pton(family, src), socket.inet_pton(family, dst)
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         offset << 12 | flag_bits(flags), window, 0, 0) + options
    segment = header + payload
    if v6:
        pseudo = s + d + struct.pack("!I3xB", len(segment), 6)
    else:
        pseudo = s + d + struct.pack("!xBH", 6, len(segment))
    checksum = _checksum(pseudo + segment)
    segment = segment[:16] + struct.pack("!H", checksum) + segment[18:]
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, len(segment), 6, 64) + s + d
        ethertype = 0x86DD
    else:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), ip_id, 0x4000, 64, 6, 0, s, d)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        ethertype = 0x0800
    packet = ip + segment
    if linktype == LINKTYPE_ETHERNET:
        return b"\0" * 12 + struct.pack("!H", ethertype) + packet
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack("!HHH8sH", 0, 772, 6, b"", ethertype) + packet
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 772, 0, 6, b"") + packet
    if linktype == LINKTYPE_RAW:
        return packet
    raise ValueError(f"cannot build frames for link type {linktype}")


class Conversation:
    """A client/server pair writing frames into a ring with correct sequence numbers.

    Each call appends one frame and returns its packet number. ``seq``
    overrides the sender's next sequence number for that one segment (to
    write retransmissions and gaps); it does not advance the counters.
    """

    def __init__(self, ring: PacketRing | None = None, client: tuple[str, int] = ("127.0.0.1", 50000),
                 server: tuple[str, int] = ("127.0.0.1", 65432), isn: tuple[int, int] = (1000, 5000),
                 start_ns: int = 1_700_000_000_000_000_000, step_ns: int = 1_000_000,
                 linktype: int = LINKTYPE_ETHERNET) -> None:
        self.ring = ring if ring is not None else PacketRing(linktype=linktype)
        self.ring.linktype = linktype
        self.ends = (client, server)
        self.next = [isn[0], isn[1]]
        self.acked = [0, 0]
        self.now = start_ns
        self.step = step_ns
        self.linktype = linktype
        # Each side numbers its IP packets, as real stacks do (so no two frames are byte-identical).
        self.ip_ids = [0x100, 0x200]

    def send(self, side: int, payload: bytes = b"", flags: str | int = "PA", window: int = 512,
             seq: int | None = None, ack: int | None = None, options: bytes = b"", advance: bool = True,
             delay_ns: int | None = None) -> int:
        """Append a segment from ``side`` (0 client, 1 server); returns its packet number."""
        bits = flag_bits(flags)
        src, dst = self.ends[side], self.ends[1 - side]
        this_seq = self.next[side] if seq is None else seq
        this_ack = self.next[1 - side] if ack is None else ack
        self.ip_ids[side] += 1
        frame = tcp_frame(src[0], dst[0], src[1], dst[1], this_seq, this_ack if bits & 0x10 else 0, bits,
                          window, payload, options, self.linktype, ip_id=self.ip_ids[side])
        if seq is None and advance:
            self.next[side] = (this_seq + len(payload) + (1 if bits & 0x03 else 0)) & 0xFFFFFFFF
        self.now += self.step if delay_ns is None else delay_ns
        return self.ring.append(self.now, frame)

    def client(self, payload: bytes = b"", flags: str | int = "PA", **kwargs: object) -> int:
        """A segment from the client."""
        return self.send(0, payload, flags, **kwargs)  # type: ignore[arg-type]

    def server(self, payload: bytes = b"", flags: str | int = "PA", **kwargs: object) -> int:
        """A segment from the server."""
        return self.send(1, payload, flags, **kwargs)  # type: ignore[arg-type]

    def handshake(self, wscale: tuple[int | None, int | None] = (7, 7), window: int = 65495) -> None:
        """SYN, SYN-ACK, ACK with MSS and (optionally) window-scale options."""
        self.client(flags="S", window=window, options=tcp_options(65495, wscale[0], True))
        self.server(flags="SA", window=window, options=tcp_options(65495, wscale[1], True))
        self.client(flags="A", window=512)

    def close(self, first: int = 1) -> None:
        """FIN from ``first``, FIN from the other side, final ACK."""
        self.send(first, flags="FA")
        self.send(1 - first, flags="FA")
        self.send(first, flags="A")
