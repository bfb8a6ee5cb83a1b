"""The TCP layer of a packet's detail in Wireshark's words, built from the header bytes and the stream's state.

scapy names fields as the RFC's struct does (``dataofs: 8``, ``window: 512``,
``flags: PA``); a student comparing with Wireshark needs its vocabulary:
relative and raw sequence numbers, header length in bytes, the flags spelled
out, the window value, its scaling factor and the calculated window.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netlens.capture.frames import ACK, FIN, FLAG_NAMES, SYN, Tcp, tcp_options

_MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class TcpContext:
    """What the analysis knows about the packet's stream (None fields: unknown, e.g. not analysed yet)."""

    stream: int | None = None
    #: The sender's and the receiver's ISN (relative numbers count from them).
    seq_base: int | None = None
    ack_base: int | None = None
    #: The sender's window-scale shift once both SYNs were seen (None: not known).
    scale: int | None = None


def tcp_fields(frame: bytes, tcp: Tcp, context: TcpContext) -> tuple[tuple[str, str], ...]:
    """Wireshark's TCP tree as (name, value) pairs."""
    flags = tcp.flags
    checksum, urgent = struct.unpack_from("!HH", frame, tcp.tcp_offset + 16)
    fields: list[tuple[str, str]] = [("Source Port", str(tcp.sport)), ("Destination Port", str(tcp.dport))]
    if context.stream is not None:
        fields.append(("[Stream index]", str(context.stream)))
    fields.append(("[TCP Segment Len]", str(tcp.payload_length)))
    fields += _sequence_fields(tcp, context)
    words = tcp.tcp_header_length // 4
    fields.append(("Header Length", f"{tcp.tcp_header_length} bytes ({words})"))
    fields.append(("Flags", f"0x{flags:03x} ({FLAG_NAMES[flags].replace(',', ', ') or 'none'})"))
    fields += _window_fields(tcp, context)
    fields.append(("Checksum", f"0x{checksum:04x} [unverified]"))
    fields.append(("Urgent Pointer", str(urgent)))
    options = tcp_options(frame, tcp).describe()
    if tcp.tcp_header_length > 20:
        fields.append(("Options", f"({tcp.tcp_header_length - 20} bytes) {options}".rstrip()))
    return tuple(fields)


def _sequence_fields(tcp: Tcp, context: TcpContext) -> list[tuple[str, str]]:
    flags = tcp.flags
    out = []
    if context.seq_base is not None:
        relative = (tcp.seq - context.seq_base) & _MASK
        out.append(("Sequence Number", f"{relative} (relative sequence number)"))
    out.append(("Sequence Number (raw)", str(tcp.seq)))
    if context.seq_base is not None:
        length = tcp.payload_length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        if length:
            following = (tcp.seq + length - context.seq_base) & _MASK
            out.append(("[Next Sequence Number]", f"{following} (relative sequence number)"))
    if flags & ACK:
        if context.ack_base is not None:
            out.append(("Acknowledgment Number", f"{(tcp.ack - context.ack_base) & _MASK} (relative ack number)"))
        out.append(("Acknowledgment number (raw)", str(tcp.ack)))
    else:
        out.append(("Acknowledgment Number", "0 (not set: no ACK flag)"))
    return out


def _window_fields(tcp: Tcp, context: TcpContext) -> list[tuple[str, str]]:
    window = tcp.window
    out = [("Window", str(window))]
    if tcp.flags & SYN:
        out.append(("[Window size scaling factor]", "not used (a SYN's window is never scaled)"))
        out.append(("[Calculated window size]", f"{window} bytes"))
    elif context.scale is None:
        out.append(("[Window size scaling factor]",
                    "unknown (the handshake was not captured, so Window Full is not checked)"))
    else:
        factor = 1 << context.scale
        out.append(("[Window size scaling factor]", str(factor)))
        out.append(("[Calculated window size]", f"{window * factor} bytes ({window} × {factor})"))
    return out
