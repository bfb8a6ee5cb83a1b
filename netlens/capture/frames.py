"""Decode link, IP and TCP headers straight from frame bytes with ``struct`` (no scapy).

This is the fast path behind packet summaries and stream analysis: a frame
decodes in a couple of microseconds and nothing here allocates more than one
small tuple. Every length comes from the wire, so every length is checked: a
truncated frame or a bogus header length yields a :class:`Other` with a
``note`` saying what is wrong, never an exception.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

# pcap LINKTYPE_* values (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# Some old files carry the platform DLT_RAW value instead of LINKTYPE_RAW.
_RAW_ALIASES = (12, 14)

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2",
    12: "raw IP",
    14: "raw IP",
}
SUPPORTED_LINKTYPES = frozenset(LINKTYPE_NAMES)

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_MPLS_TYPES = (0x8847, 0x8848)
# Address-family values a BSD loopback header may carry for IPv6, by platform.
_NULL_AF_INET6 = (10, 24, 28, 30)

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
# IPv6 extension headers walked to find the transport header.
_IPV6_EXTENSIONS = (0, 43, 60)
_IPV6_FRAGMENT = 44

# TCP flag bits, lowest first: the order scapy prints letters in and Wireshark names.
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE = (1 << i for i in range(9))
_FLAG_LETTERS = "FSRPAUECN"
_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "AE")
#: flags value -> scapy's letters (``SA``, ``PA``, ``FA``...), precomputed for speed.
FLAG_LETTERS: tuple[str, ...] = tuple(
    "".join(letter for bit, letter in enumerate(_FLAG_LETTERS) if value >> bit & 1) for value in range(512)
)
#: flags value -> Wireshark-style names joined by commas (``SYN,ACK``, ``PSH,ACK``).
FLAG_NAMES: tuple[str, ...] = tuple(
    ",".join(name for bit, name in enumerate(_FLAG_NAMES) if value >> bit & 1) for value in range(512)
)

_H = struct.Struct("!H")
_TCP = struct.Struct("!HHIIHH")
# Ethernet + option-less IPv4 + TCP in one unpack: the shape of nearly every frame on lo.
_FAST = struct.Struct("!12xHBxHHHxB2x4s4sHHIIHH")
_UDP = struct.Struct("!HHH")
#: ``_tuple_new(Tcp, fields)`` is ``Tcp(*fields)`` without the Python-level ``__new__`` a NamedTuple
#: call runs (three times cheaper: it is made once per packet).
_tuple_new = tuple.__new__


class Tcp(NamedTuple):
    """The TCP facts of one frame; offsets index into the frame."""

    version: int  # 4 or 6
    src: bytes  # packed address (4 or 16 bytes)
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int  # 9 bits, see FIN..AE
    window: int  # raw (unscaled) window field
    tcp_offset: int
    tcp_header_length: int
    payload_offset: int
    payload_length: int
    #: Why the frame is incomplete ("" when whole): e.g. payload cut short by the snaplen. Lengths
    #: (``payload_length``) always come from the IP header, so a cut frame counts what was sent.
    note: str
    #: The IPv4 identification field (0 for IPv6): one half of what tells a capture duplicate.
    ip_id: int = 0


class Other(NamedTuple):
    """Any frame that is not a decodable TCP segment: its protocol, addresses and what to say."""

    proto: str
    src: str
    dst: str
    sport: int | None
    dport: int | None
    info: str


def format_ip(packed: bytes) -> str:
    """Text form of a packed IPv4 or IPv6 address."""
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def network_offset(frame: bytes, linktype: int) -> tuple[int, int] | Other:
    """Offset of the network header and its ethertype (IPv4/IPv6/ARP...), or why not.

    VLAN tags and MPLS label stacks are walked through: the IP packet under them is the network header.
    """
    size = len(frame)
    if linktype == LINKTYPE_ETHERNET:
        if size < 14:
            return Other("Ethernet", "", "", None, None, f"truncated Ethernet header ({size} of 14 bytes)")
        offset = 12
        (ethertype,) = _H.unpack_from(frame, offset)
        while ethertype in _VLAN_TYPES and size >= offset + 6:
            offset += 4
            (ethertype,) = _H.unpack_from(frame, offset)
        if ethertype in _MPLS_TYPES:
            return _mpls(frame, offset + 2)
        return offset + 2, ethertype
    if linktype == LINKTYPE_LINUX_SLL:
        if size < 16:
            return Other("SLL", "", "", None, None, f"truncated Linux cooked header ({size} of 16 bytes)")
        return 16, _H.unpack_from(frame, 14)[0]
    if linktype == LINKTYPE_LINUX_SLL2:
        if size < 20:
            return Other("SLL2", "", "", None, None, f"truncated Linux cooked v2 header ({size} of 20 bytes)")
        return 20, _H.unpack_from(frame, 0)[0]
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if size < 4:
            return Other("Loopback", "", "", None, None, f"truncated loopback header ({size} of 4 bytes)")
        # NULL stores the family in the writer's byte order; try both.
        family = int.from_bytes(frame[:4], "big" if linktype == LINKTYPE_LOOP else "little")
        if linktype == LINKTYPE_NULL and family > 0xFFFF:
            family = int.from_bytes(frame[:4], "big")
        if family == 2:
            return 4, ETH_P_IP
        if family in _NULL_AF_INET6:
            return 4, ETH_P_IPV6
        return Other("Loopback", "", "", None, None, f"address family {family}")
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) or linktype in _RAW_ALIASES:
        if not frame:
            return Other("IP", "", "", None, None, "empty frame")
        version = frame[0] >> 4
        return 0, ETH_P_IP if version == 4 else ETH_P_IPV6 if version == 6 else 0
    return Other("?", "", "", None, None, f"link type {linktype} is not supported")


def _mpls(frame: bytes, offset: int) -> tuple[int, int] | Other:
    """Skip an MPLS label stack (4 bytes a label, the last has the bottom-of-stack bit); IP by its version."""
    for _ in range(16):
        if len(frame) < offset + 5:
            break
        bottom = frame[offset + 2] & 1
        offset += 4
        if bottom:
            version = frame[offset] >> 4
            if version in (4, 6):
                return offset, ETH_P_IP if version == 4 else ETH_P_IPV6
            return Other("MPLS", "", "", None, None, "MPLS payload that is not IP")
    return Other("MPLS", "", "", None, None, "truncated or endless MPLS label stack")


def decode(frame: bytes, linktype: int = LINKTYPE_ETHERNET) -> Tcp | Other:
    """Decode ``frame`` down to TCP; anything else (or anything broken) comes back as :class:`Other`."""
    size = len(frame)
    if linktype == LINKTYPE_ETHERNET and size >= 54:
        # Fast path for Ethernet/IPv4 (no IP options)/TCP; anything unusual takes the general path.
        ethertype, vihl, total, ip_id, fragment, proto, src, dst, sport, dport, seq, ack, offset_flags, window = \
            _FAST.unpack_from(frame)
        if ethertype == ETH_P_IP and vihl == 0x45 and proto == IPPROTO_TCP and not fragment & 0x3FFF:
            end = 14 + total
            tcp_length = (offset_flags >> 12) * 4
            if 54 <= end <= size and tcp_length >= 20 and 34 + tcp_length <= end:
                return _tuple_new(Tcp, (4, src, dst, sport, dport, seq, ack, offset_flags & 0x1FF, window,
                                        34, tcp_length, 34 + tcp_length, end - 34 - tcp_length, "", ip_id))
    located = network_offset(frame, linktype)
    if isinstance(located, Other):
        return located
    offset, ethertype = located
    if ethertype == ETH_P_IP:
        network = _ipv4(frame, offset)
    elif ethertype == ETH_P_IPV6:
        network = _ipv6(frame, offset)
    elif ethertype == ETH_P_ARP:
        return Other("ARP", "", "", None, None, _arp_info(frame, offset))
    else:
        return Other(f"0x{ethertype:04x}", "", "", None, None, f"ethertype 0x{ethertype:04x}")
    if isinstance(network, Other):
        return network
    return _transport(frame, network)


class _Network(NamedTuple):
    """Where an IP packet's transport header is, and what the IP header said."""

    version: int
    proto: int
    src: bytes
    dst: bytes
    transport: int
    #: Where the packet ends by its IP header, and where its captured bytes end (earlier when cut).
    end: int
    captured: int
    note: str
    ip_id: int


def _ipv4(frame: bytes, offset: int) -> _Network | Other:
    size = len(frame)
    if size < offset + 20:
        return Other("IPv4", "", "", None, None, f"truncated IPv4 header ({max(0, size - offset)} of 20 bytes)")
    first = frame[offset]
    header_length = (first & 0x0F) * 4
    if first >> 4 != 4 or header_length < 20:
        return Other("IPv4", "", "", None, None, f"bogus IPv4 header (version {first >> 4}, length {header_length})")
    (total,) = _H.unpack_from(frame, offset + 2)
    end = offset + total
    if total < header_length:
        return Other("IPv4", "", "", None, None, f"bogus IPv4 total length {total}")
    note = ""
    if end > size:
        note = f"frame cut short: {size - offset} of {total} IP bytes captured"
    if size < offset + header_length:
        return Other("IPv4", "", "", None, None, "truncated IPv4 options")
    proto = frame[offset + 9]
    src, dst = frame[offset + 12:offset + 16], frame[offset + 16:offset + 20]
    (fragment,) = _H.unpack_from(frame, offset + 6)
    if fragment & 0x3FFF:  # an offset, or more fragments to come: not a whole segment
        return Other("IPv4", format_ip(src), format_ip(dst), None, None,
                     f"fragment at offset {(fragment & 0x1FFF) * 8} (protocol {proto})"
                     + (", more follow" if fragment & 0x2000 else ""))
    return _Network(4, proto, src, dst, offset + header_length, end, min(end, size), note,
                    _H.unpack_from(frame, offset + 4)[0])


def _ipv6(frame: bytes, offset: int) -> _Network | Other:
    size = len(frame)
    if size < offset + 40:
        return Other("IPv6", "", "", None, None, f"truncated IPv6 header ({max(0, size - offset)} of 40 bytes)")
    if frame[offset] >> 4 != 6:
        return Other("IPv6", "", "", None, None, f"bogus IPv6 version {frame[offset] >> 4}")
    (payload,) = _H.unpack_from(frame, offset + 4)
    proto = frame[offset + 6]
    src, dst = frame[offset + 8:offset + 24], frame[offset + 24:offset + 40]
    transport = offset + 40
    end = transport + payload
    note = ""
    captured = min(end, size)
    if end > size:
        note = f"frame cut short: {size - offset} of {40 + payload} IP bytes captured"
    # Walk the common extension headers (a bounded loop: each one is at least 8 bytes).
    for _ in range(8):
        if proto in _IPV6_EXTENSIONS and transport + 8 <= captured:
            proto, transport = frame[transport], transport + (frame[transport + 1] + 1) * 8
        elif proto == _IPV6_FRAGMENT and transport + 8 <= captured:
            offset_flags = _H.unpack_from(frame, transport + 2)[0]
            if offset_flags & 0xFFF9:  # an offset, or more fragments to come
                return Other("IPv6", format_ip(src), format_ip(dst), None, None,
                             f"fragment at offset {offset_flags & 0xFFF8}"
                             + (", more follow" if offset_flags & 1 else ""))
            proto, transport = frame[transport], transport + 8
        else:
            break
    return _Network(6, proto, src, dst, transport, end, captured, note, 0)


def _transport(frame: bytes, ip: _Network) -> Tcp | Other:
    version, proto, src, dst, transport, end, captured, note, ip_id = ip
    if proto == IPPROTO_TCP:
        if captured < transport + 20:
            return Other("TCP", format_ip(src), format_ip(dst), None, None,
                         f"truncated TCP header ({max(0, captured - transport)} of 20 bytes)")
        sport, dport, seq, ack, offset_flags, window = _TCP.unpack_from(frame, transport)
        tcp_length = (offset_flags >> 12) * 4
        if tcp_length < 20:
            return Other("TCP", format_ip(src), format_ip(dst), sport, dport, f"bogus TCP header length {tcp_length}")
        if transport + tcp_length > end:
            return Other("TCP", format_ip(src), format_ip(dst), sport, dport,
                         f"TCP header length {tcp_length} runs past the end of the packet")
        if transport + tcp_length > captured:
            note = f"TCP options cut short: {captured - transport - 20} of {tcp_length - 20} bytes captured"
        payload_offset = transport + tcp_length
        # The payload length is the IP header's: a snaplen-cut frame still carried all of it.
        return _tuple_new(Tcp, (version, src, dst, sport, dport, seq, ack, offset_flags & 0x1FF, window,
                                transport, tcp_length, payload_offset, end - payload_offset, note, ip_id))
    end = captured
    if proto == IPPROTO_UDP and end >= transport + 8:
        sport, dport, _length = _UDP.unpack_from(frame, transport)
        return Other("UDP", format_ip(src), format_ip(dst), sport, dport, f"len={max(0, end - transport - 8)}")
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) and end >= transport + 2:
        name = "ICMP" if proto == IPPROTO_ICMP else "ICMPv6"
        return Other(name, format_ip(src), format_ip(dst), None, None,
                     f"type {frame[transport]} code {frame[transport + 1]}")
    return Other(f"IPv{version}", format_ip(src), format_ip(dst), None, None, f"IP protocol {proto}")


def _arp_info(frame: bytes, offset: int) -> str:
    if len(frame) < offset + 28:
        return "truncated ARP"
    op = _H.unpack_from(frame, offset + 6)[0]
    sender, target = frame[offset + 14:offset + 18], frame[offset + 24:offset + 28]
    if op == 1:
        return f"who has {format_ip(target)}? tell {format_ip(sender)}"
    if op == 2:
        return f"{format_ip(sender)} is at {frame[offset + 8:offset + 14].hex(':')}"
    return f"ARP op {op}"


class TcpOptions(NamedTuple):
    """The TCP options netlens shows and uses (None when absent)."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    timestamp: tuple[int, int] | None = None

    def describe(self) -> str:
        """Wireshark-like option summary, e.g. ``MSS=65495 SACK_PERM WS=128``."""
        parts = []
        if self.mss is not None:
            parts.append(f"MSS={self.mss}")
        if self.sack_permitted:
            parts.append("SACK_PERM")
        if self.timestamp is not None:
            parts.append(f"TSval={self.timestamp[0]} TSecr={self.timestamp[1]}")
        if self.wscale is not None:
            parts.append(f"WS={1 << min(self.wscale, 14)}")
        return " ".join(parts)


def tcp_options(frame: bytes, tcp: Tcp) -> TcpOptions:
    """Parse the options of ``tcp`` (bogus option lengths end the walk, never raise)."""
    start = tcp.tcp_offset + 20
    end = min(tcp.tcp_offset + tcp.tcp_header_length, len(frame))  # options may be cut by the snaplen
    mss = wscale = timestamp = None
    sack = False
    i = start
    while i < end:
        kind = frame[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end:
            break
        length = frame[i + 1]
        if length < 2 or i + length > end:
            break
        if kind == 2 and length == 4:
            mss = _H.unpack_from(frame, i + 2)[0]
        elif kind == 3 and length == 3:
            wscale = frame[i + 2]
        elif kind == 4 and length == 2:
            sack = True
        elif kind == 8 and length == 10:
            timestamp = struct.unpack_from("!II", frame, i + 2)
        i += length
    return TcpOptions(mss, wscale, sack, timestamp)


def payload(frame: bytes, tcp: Tcp) -> bytes:
    """The captured TCP payload bytes of ``tcp`` within ``frame`` (fewer than ``payload_length`` when cut)."""
    return frame[tcp.payload_offset:tcp.payload_offset + tcp.payload_length]
