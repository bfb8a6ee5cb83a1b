"""Full dissection of one packet, on demand: a layer tree from scapy, every value escaped.

This is the only path that builds scapy packet objects, and only for the
packet a person is looking at. Values are plain strings with every control
character escaped (:mod:`netlens.textsafe`) and capped in length; render them
as ``rich.text.Text``, never as markup, and ``[bold red]`` from the wire stays
literal text.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netlens.capture.frames import Tcp, decode
from netlens.capture.hexdump import hexdump
from netlens.proto import Decoder, MessageComplete, ProtocolError
from netlens.textsafe import safe_bytes, safe_str

if TYPE_CHECKING:
    from netlens.capture.store import MessageRecord, PacketStore

_MASK = 0xFFFFFFFF
#: Longest shown value; a 64 KiB payload must not become a 256 KiB string.
MAX_VALUE = 600

__all__ = ["Layer", "dissect", "dissect_in_store", "hexdump"]


@dataclass(frozen=True)
class Layer:
    """One protocol layer: its name and its fields as (name, shown value), both terminal-safe."""

    name: str
    fields: tuple[tuple[str, str], ...]

    def lines(self) -> list[str]:
        """Indented text: the layer name, then ``name: value`` per field."""
        return [self.name] + [f"    {name}: {value}" for name, value in self.fields]


def _cap(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _message_text(raw: bytes) -> str:
    """What a search message says (``search 'morpheus'``), or why it is not one."""
    try:
        events = Decoder().feed(raw)
    except ProtocolError as exc:
        return f"not a valid message: {exc}"
    for event in events:
        if isinstance(event, MessageComplete):
            return event.message.describe()
    return "incomplete message"


def _search_layer(pkt: Any, title: str | None = None) -> Layer:
    header = pkt.json_header or b""
    content = pkt.content or b""
    length = pkt.header_length if pkt.header_length is not None else len(header)
    raw = struct.pack(">H", length & 0xFFFF) + header + content
    fields = (
        ("header_length", str(length)),
        ("json_header", _cap(safe_bytes(header))),
        ("content", _cap(safe_bytes(content))),
        ("message", _cap(safe_str(_message_text(raw)))),
    )
    return Layer(title or "Search protocol message", fields)


def _layer(pkt: Any) -> Layer:
    from netlens.capture.searchlayer import SearchMessage

    if isinstance(pkt, SearchMessage):
        return _search_layer(pkt)
    fields = []
    for field in pkt.fields_desc:
        try:
            value = pkt.getfieldval(field.name)
            shown = field.i2repr(pkt, value)
        except Exception:  # scapy's repr of a hostile value must not break the view
            shown = "<unprintable>"
        if isinstance(shown, bytes):
            shown = safe_bytes(shown)
        fields.append((safe_str(str(field.name)), _cap(safe_str(str(shown)))))
    return Layer(safe_str(str(pkt.name)), tuple(fields))


def dissect(frame: bytes, linktype: int = 1, search_port: int | None = None) -> list[Layer]:
    """Layers of ``frame`` from scapy, outermost first.

    ``search_port`` binds the search-protocol layer to that TCP port first
    (the workshop port 65432 is always bound). Frames scapy cannot parse come
    back as one "Undecodable frame" layer; this never raises for bad bytes.
    """
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2  # noqa: F401  (Ethernet, cooked, loopback link types)
    from scapy.config import conf
    from scapy.packet import NoPayload

    from netlens.capture.searchlayer import bind_search_port

    if search_port:
        bind_search_port(search_port)
    cls = conf.l2types.num2layer.get(linktype, conf.raw_layer)
    try:
        pkt = cls(bytes(frame))
        layers = []
        layer = pkt
        while layer is not None and not isinstance(layer, NoPayload):
            layers.append(_layer(layer))
            layer = layer.payload
        return layers
    except Exception as exc:  # scapy raises many things on hostile input; show, don't crash
        return [Layer("Undecodable frame", (("error", _cap(safe_str(f"{type(exc).__name__}: {exc}"))),
                                            ("length", str(len(frame)))))]


def reassemble(store: PacketStore, record: MessageRecord) -> bytes:
    """The bytes of one (possibly multi-segment) message, rebuilt from its packets' payloads."""
    out = bytearray(record.length)
    ring = store.ring
    for no in record.packets:
        try:
            frame = ring.frame(no)
        except IndexError:
            continue
        tcp = decode(frame, ring.linktype)
        if type(tcp) is not Tcp:
            continue
        data = frame[tcp.payload_offset:tcp.payload_offset + tcp.payload_length]
        offset = (tcp.seq - record.start_seq) & _MASK
        if offset >= 0x80000000:  # the segment starts before the message
            skip = (record.start_seq - tcp.seq) & _MASK
            data, offset = data[skip:], 0
        if offset < record.length:
            piece = data[: record.length - offset]
            out[offset:offset + len(piece)] = piece
    return bytes(out)


def _packet_list(packets: tuple[int, ...]) -> str:
    if len(packets) <= 12:
        return ", ".join(f"#{p}" for p in packets)
    return ", ".join(f"#{p}" for p in packets[:6]) + f", … ({len(packets) - 12} more), " + ", ".join(
        f"#{p}" for p in packets[-6:])


def dissect_in_store(store: PacketStore, no: int) -> list[Layer]:
    """Dissect packet ``no`` with what the analysis knows: messages shown reassembled, segments named."""
    ring = store.ring
    frame = ring.frame(no)
    stream = store.stream_of(no)
    framed = stream is not None and (stream.message_count > 0 or any(d.messages.framed for d in stream.dirs))
    layers = dissect(frame, ring.linktype, stream.server_port if stream is not None and framed else None)
    records = store.messages(no)
    part_of = store.segment_of(no)
    tcp = decode(frame, ring.linktype)
    if type(tcp) is Tcp and (records or part_of is not None):
        assert isinstance(tcp, Tcp)
        whole = (len(records) == 1 and records[0].packets == (no,) and records[0].start_seq == tcp.seq
                 and records[0].length == tcp.payload_length)
        if not whole:
            # scapy sees one segment; the message only exists across several. Show the
            # segment as data and the message, reassembled, after it.
            cut = next((i + 1 for i, layer in enumerate(layers) if layer.name == "TCP"), len(layers))
            data = frame[tcp.payload_offset:tcp.payload_offset + tcp.payload_length]
            where = (f"search message reassembled in #{part_of}" if part_of
                     else "search message completed in this packet" if records
                     else "unfinished search message")
            layers = layers[:cut] + [Layer("TCP segment data", (
                ("length", str(len(data))),
                ("part of", where),
                ("data", _cap(safe_bytes(data))),
            ))]
            for record in records:
                message = SimpleMessage.parse(reassemble(store, record))
                title = (f"Reassembled search message ({len(record.packets)} segments: "
                         f"{_packet_list(record.packets)})")
                layer = _search_layer(message, title)
                layers.append(Layer(layer.name, (("packets", _packet_list(record.packets)),
                                                 ("bytes", str(record.length))) + layer.fields))
    return layers


class SimpleMessage:
    """The three parts of a message split with ``struct`` (no scapy needed for reassembled bytes)."""

    __slots__ = ("header_length", "json_header", "content")

    def __init__(self, header_length: int, json_header: bytes, content: bytes) -> None:
        self.header_length = header_length
        self.json_header = json_header
        self.content = content

    @classmethod
    def parse(cls, raw: bytes) -> SimpleMessage:
        """Split ``raw`` into proto header, JSON header and the rest."""
        length = int.from_bytes(raw[:2], "big") if len(raw) >= 2 else 0
        return cls(length, raw[2:2 + length], raw[2 + length:])
