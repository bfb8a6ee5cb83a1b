"""The search protocol (PROTOCOL.md §2) in captured streams, decoded by the server's own :class:`proto.Decoder`.

Each direction's in-order bytes go into a decoder; when it completes a
message, the packet that completed it learns what the message said, and every
packet that carried part of it is known (so one byte per segment still reads
as one request). A direction whose bytes are not this protocol (echo
traffic, HTTP, junk after the one request) is dropped quietly; a message
whose JSON header arrived whole but was wrong gets a "malformed search
message" note.

The scapy layer (:func:`scapy_layer`) shows the three parts of a message as
fields in a full dissection; which bytes can start a message is decided by the
same decoder, not a copy of its rules.
"""

from __future__ import annotations

import functools
import json
import struct
from typing import Any

from netlens import DEFAULT_PORT
from netlens.capture.protocols import MessageEvent
from netlens.proto import Decoder, Message, MessageComplete, ProtocolError, ProtoHeaderRead
from netlens.textsafe import safe_bytes, safe_str

_MASK = 0xFFFFFFFF
#: Longest summary kept for a message (values from the wire can be huge).
MAX_INFO = 160


def describe_message(message: Message, direction: int) -> str:
    """``search request 'morpheus'`` / ``response result '...'``, escaped and length-capped."""
    role = "request" if direction == 0 else "response"
    text = message.describe()
    value = message.value
    action = value.get("action") if value is not None else None
    if action is not None and text.startswith(f"{action} "):
        text = f"{action} {role} {text[len(str(action)) + 1:]}"
    else:
        text = f"{role} {text}"
    text = safe_str(text)
    return text if len(text) <= MAX_INFO else text[: MAX_INFO - 1] + "…"


def message_text(raw: bytes) -> str:
    """What one whole message says (``search 'morpheus'``), or why it is not one."""
    try:
        events = Decoder().feed(raw)
    except ProtocolError as exc:
        return f"not a valid message: {exc}"
    for event in events:
        if isinstance(event, MessageComplete):
            return event.message.describe()
    return "incomplete message"


def can_start_message(data: bytes) -> bool:
    """True if ``data`` can be the start of a message (the decoder accepts its first three bytes)."""
    if len(data) < 3:
        return False
    try:
        Decoder().feed(data[:3])
    except ProtocolError:
        return False
    return True


class _Direction:
    """One direction's decoder and the packets whose bytes it holds."""

    __slots__ = ("decoder", "parts", "alive")

    def __init__(self) -> None:
        # Created on the first payload byte: most directions of most streams carry none.
        self.decoder: Decoder | None = None
        #: [packet number, bytes, seq of first byte] fed but not yet part of a completed message.
        self.parts: list[list[int]] = []
        self.alive = True


class SearchSession:
    """Search-protocol messages of one stream."""

    __slots__ = ("dirs", "alive", "recognised")

    def __init__(self) -> None:
        self.dirs = (_Direction(), _Direction())
        self.alive = True
        #: A whole JSON header was read at least once: this stream speaks the protocol.
        self.recognised = False

    def feed(self, direction: int, seq: int, data: bytes, no: int, ts_ns: int) -> list[MessageEvent]:
        """Decode the next in-order bytes of ``direction``; return the messages they completed."""
        side = self.dirs[direction]
        if not side.alive:
            return []
        decoder = side.decoder
        if decoder is None:
            decoder = side.decoder = Decoder()
        side.parts.append([no, len(data), seq])
        try:
            events = decoder.feed(data)
        except ProtocolError as exc:
            # "answerable" means the JSON header arrived whole: this was the protocol, broken.
            # Anything else (bytes that never looked like a message, even after a good
            # one) is just not this protocol, and the packet list shows the bytes instead.
            self._give_up(direction)
            if not exc.answerable:
                return []
            return [MessageEvent(f"malformed search message: {safe_str(exc.reason)}", (no,), error=True)]
        out: list[MessageEvent] = []
        for event in events:
            if isinstance(event, ProtoHeaderRead):
                continue
            self.recognised = True
            if isinstance(event, MessageComplete):
                start = side.parts[0][2] if side.parts else (seq + len(data)) & _MASK
                packets = _take_parts(side.parts, event.wire_length)
                out.append(MessageEvent(describe_message(event.message, direction), packets, start,
                                        event.wire_length))
        return out

    def wants(self, direction: int) -> bool:
        """False once ``direction`` proved not to be this protocol (its bytes need not come any more)."""
        return self.dirs[direction].alive

    def in_message(self, direction: int) -> bool:
        """True while bytes of an unfinished message are buffered."""
        return bool(self.dirs[direction].parts)

    def abandon(self, direction: int) -> list[int]:
        """Give up on ``direction``; the packets that carried its unfinished message."""
        return self._give_up(direction)

    def describe(self, direction: int, seq: int, length: int, ts_ns: int) -> str | None:
        """Every message is named when it completes; nothing to add."""
        return None

    def close(self, direction: int) -> None:
        """Free the decoder of a finished direction with nothing unfinished in it."""
        side = self.dirs[direction]
        if side.alive and not side.parts:
            side.decoder = None
            side.alive = False
            self.alive = any(d.alive for d in self.dirs) or self.recognised

    def _give_up(self, direction: int) -> list[int]:
        side = self.dirs[direction]
        abandoned = [part[0] for part in side.parts]
        side.alive = False
        side.decoder = None
        side.parts.clear()
        # A recognised stream stays ours (its other direction may still talk); else let others try.
        self.alive = any(d.alive for d in self.dirs) or self.recognised
        return abandoned


def _take_parts(parts: list[list[int]], length: int) -> tuple[int, ...]:
    """Pop the packets whose bytes made up a message of ``length`` bytes."""
    packets: list[int] = []
    while length > 0 and parts:
        part = parts[0]
        if not packets or packets[-1] != part[0]:
            packets.append(part[0])
        if part[1] <= length:
            length -= part[1]
            parts.pop(0)
        else:
            part[1] -= length
            part[2] = (part[2] + length) & _MASK
            length = 0
    return tuple(packets)


def json_header(raw: bytes) -> dict[str, Any] | None:
    """The JSON header as a dict, or None if it is not a JSON object."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


@functools.cache
def _layer_class() -> Any:
    """Build the scapy layer (imports scapy; once per process)."""
    from scapy.config import conf
    from scapy.fields import FieldLenField, StrLenField
    from scapy.packet import Packet

    def content_length(pkt: Any) -> int:
        header = json_header(pkt.json_header or b"")
        length = header.get("content-length") if header else None
        if isinstance(length, int) and not isinstance(length, bool) and length >= 0:
            return length
        # No usable length: the rest of the bytes are the content, as far as anyone can tell.
        return 1 << 30

    class SearchMessage(Packet):
        """One search-protocol message: proto header, JSON header, content."""

        name = "Search protocol message"
        fields_desc = [
            FieldLenField("header_length", None, length_of="json_header", fmt="!H"),
            StrLenField("json_header", b"", length_from=lambda pkt: pkt.header_length),
            StrLenField("content", b"", length_from=content_length),
        ]

        @classmethod
        def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kwargs: Any) -> Any:
            """Bytes that cannot begin a message are dissected as Raw instead."""
            if _pkt is not None and not can_start_message(bytes(_pkt)):
                return conf.raw_layer
            return cls

        def guess_payload_class(self, payload: bytes) -> Any:
            """After one message, another may follow on the same stream."""
            return SearchMessage if can_start_message(payload) else conf.raw_layer

        def netlens_fields(self) -> list[tuple[str, str]]:
            """The three parts as text, and what the message says (values are escaped by the caller)."""
            header = self.json_header or b""
            content = self.content or b""
            length = self.header_length if self.header_length is not None else len(header)
            raw = struct.pack(">H", length & 0xFFFF) + header + content
            return [("header_length", str(length)), ("json_header", safe_bytes(header)),
                    ("content", safe_bytes(content)), ("message", message_text(raw))]

        def mysummary(self) -> str:
            """Short text for scapy's summary()."""
            return f"Search message {len(self.content or b'')} content bytes"

    return SearchMessage


_bound_ports: set[int] = set()


def bind_port(port: int) -> None:
    """Dissect TCP payloads to or from ``port`` as search-protocol messages (idempotent; imports scapy)."""
    if port in _bound_ports or not 0 < port <= 0xFFFF:
        return
    from scapy.layers.inet import TCP
    from scapy.packet import bind_layers

    layer = _layer_class()
    bind_layers(TCP, layer, sport=port)
    bind_layers(TCP, layer, dport=port)
    _bound_ports.add(port)


class Search:
    """The search protocol: claims every stream, recognises its own framing."""

    name = "search"

    def claims(self, client_port: int, server_port: int) -> bool:
        """Any stream may carry it (the tutorial's server listens wherever it is told)."""
        return True

    def session(self) -> SearchSession:
        """Fresh per-stream state."""
        return SearchSession()

    def scapy_layer(self) -> Any:
        """The scapy layer, bound to the workshop port (imports scapy)."""
        bind_port(DEFAULT_PORT)
        return _layer_class()


PROTOCOL = Search()
