"""Full dissection of one packet, on demand: a layer tree, every value escaped.

Link and IP layers come from scapy, the TCP layer in Wireshark's words
(:mod:`netlens.capture.tcp_detail`), the application layer from the stream's
protocol (its scapy layer, bound to the stream's server port). This is the
only path that builds scapy packet objects, and only for the packet a person
is looking at. Values are plain strings with every control character escaped
(:mod:`netlens.textsafe`) and capped in length; render them as
``rich.text.Text``, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlens.capture.frames import Tcp, decode
from netlens.capture.hexdump import hexdump
from netlens.capture.tcp_detail import TcpContext, tcp_fields
from netlens.textsafe import safe_bytes, safe_str

#: Longest shown value; a 64 KiB payload must not become a 256 KiB string.
MAX_VALUE = 600

__all__ = ["DissectContext", "Layer", "dissect", "dissect_packet", "hexdump"]


@dataclass(frozen=True)
class Layer:
    """One protocol layer: its name and its fields as (name, shown value), both terminal-safe."""

    name: str
    fields: tuple[tuple[str, str], ...]

    def lines(self) -> list[str]:
        """Indented text: the layer name, then ``name: value`` per field."""
        return [self.name] + [f"    {name}: {value}" for name, value in self.fields]


@dataclass(frozen=True)
class Reassembled:
    """One application message completed by the packet: its packets, first sequence number, bytes rebuilt."""

    packets: tuple[int, ...]
    start_seq: int
    data: bytes


@dataclass(frozen=True)
class DissectContext:
    """What the analysis knows about the packet (plain data: the dissection needs no store)."""

    no: int = 0
    tcp: TcpContext = field(default_factory=TcpContext)
    #: The stream's protocol (its name and scapy layer class), once it recognised the bytes.
    protocol: str | None = None
    layer: Any = None
    server_port: int | None = None
    #: Messages this packet completed; the packet that completed the message this one is part of (0: none yet).
    messages: tuple[Reassembled, ...] = ()
    part_of: int | None = None


def _cap(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _layer(pkt: Any) -> Layer:
    own = getattr(pkt, "netlens_fields", None)
    if own is not None:
        # A protocol's layer may say how its fields read best (bytes as text, what the message means).
        own_fields = tuple((safe_str(name), _cap(safe_str(value))) for name, value in own())
        return Layer(safe_str(str(pkt.name)), own_fields)
    fields = []
    for desc in pkt.fields_desc:
        try:
            value = pkt.getfieldval(desc.name)
            shown = desc.i2repr(pkt, value)
        except Exception:  # scapy's repr of a hostile value must not break the view
            shown = "<unprintable>"
        if isinstance(shown, bytes):
            shown = safe_bytes(shown)
        fields.append((safe_str(str(desc.name)), _cap(safe_str(str(shown)))))
    return Layer(safe_str(str(pkt.name)), tuple(fields))


def dissect(frame: bytes, linktype: int = 1, layer: Any = None, port: int | None = None) -> list[Layer]:
    """Layers of ``frame`` from scapy, outermost first.

    ``layer`` (a scapy ``Packet`` class) is bound to TCP ``port`` first.
    Frames scapy cannot parse come back as one "Undecodable frame" layer;
    this never raises for bad bytes.
    """
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2
    from scapy.config import conf
    from scapy.packet import NoPayload, bind_layers

    if layer is not None and port:
        bind_layers(scapy.layers.inet.TCP, layer, sport=port)
        bind_layers(scapy.layers.inet.TCP, layer, dport=port)
    cls = conf.l2types.num2layer.get(linktype, conf.raw_layer)
    try:
        pkt = cls(bytes(frame))
        layers = []
        current = pkt
        while current is not None and not isinstance(current, NoPayload):
            layers.append(_layer(current))
            current = current.payload
        return layers
    except Exception as exc:  # scapy raises many things on hostile input; show, don't crash
        return [Layer("Undecodable frame", (("error", _cap(safe_str(f"{type(exc).__name__}: {exc}"))),
                                            ("length", str(len(frame)))))]


def _packet_list(packets: tuple[int, ...]) -> str:
    if len(packets) <= 12:
        return ", ".join(f"#{p}" for p in packets)
    return ", ".join(f"#{p}" for p in packets[:6]) + f", … ({len(packets) - 12} more), " + ", ".join(
        f"#{p}" for p in packets[-6:])


def dissect_packet(frame: bytes, linktype: int, context: DissectContext) -> list[Layer]:
    """Dissect one packet with what the analysis knows: TCP in Wireshark's words, messages reassembled."""
    layers = dissect(frame, linktype, context.layer, context.server_port)
    tcp = decode(frame, linktype)
    if type(tcp) is not Tcp:
        return layers
    assert isinstance(tcp, Tcp)
    cut = next((i for i, layer in enumerate(layers) if layer.name == "TCP"), None)
    if cut is None:
        return layers
    layers[cut] = Layer("TCP", tcp_fields(frame, tcp, context.tcp))
    records = context.messages
    whole = (len(records) == 1 and records[0].packets == (context.no,) and records[0].start_seq == tcp.seq
             and len(records[0].data) == tcp.payload_length)
    if not (records or context.part_of is not None) or whole:
        return layers
    # scapy sees one segment; the message only exists across several. Show the
    # segment as data and the message, reassembled, after it.
    data = frame[tcp.payload_offset:tcp.payload_offset + tcp.payload_length]
    name = context.protocol or "application"
    where = (f"{name} message reassembled in #{context.part_of}" if context.part_of
             else f"{name} message completed in this packet" if records
             else f"unfinished {name} message")
    layers = layers[:cut + 1] + [Layer("TCP segment data", (
        ("length", str(len(data))),
        ("part of", where),
        ("data", _cap(safe_bytes(data))),
    ))]
    for record in records:
        title = f"Reassembled {name} message ({len(record.packets)} segments: {_packet_list(record.packets)})"
        inner = _message_layer(record.data, context.layer)
        layers.append(Layer(title, (("packets", _packet_list(record.packets)), ("bytes", str(len(record.data))))
                            + inner.fields))
    return layers


def _message_layer(data: bytes, layer: Any) -> Layer:
    """The protocol's own scapy layer on the reassembled bytes (Raw if it has none)."""
    if layer is None:
        return Layer("data", (("data", _cap(safe_bytes(data))),))
    try:
        return _layer(layer(data))
    except Exception as exc:  # the protocol's layer on hostile bytes: show, don't crash
        return Layer("Undecodable message", (("error", _cap(safe_str(f"{type(exc).__name__}: {exc}"))),))
