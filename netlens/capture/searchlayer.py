"""A scapy layer for the search protocol (PROTOCOL.md §2), bound to the server's TCP port.

``SearchMessage`` dissects the three parts of a message — the ``>H`` proto
header, the JSON header, the content (``content-length`` bytes, read from the
JSON header) — so a full dissection of a packet on the search port shows them
as fields. Bytes that cannot start a message (the JSON header must start
with ``{`` or whitespace) stay ``Raw``.

Importing this module imports scapy; only :mod:`netlens.capture.dissect` does.
"""

from __future__ import annotations

import json
from typing import Any

from scapy.config import conf
from scapy.fields import FieldLenField, StrLenField
from scapy.layers.inet import TCP
from scapy.packet import Packet, bind_layers

from netlens import DEFAULT_PORT
from netlens.proto.message import PROTO_HEADER_SIZE

_HEADER_FIRST_BYTES = b" \t\r\n{"
_bound_ports: set[int] = set()


def looks_like_message(data: bytes) -> bool:
    """True if ``data`` can be the start of a search-protocol message."""
    return (len(data) > PROTO_HEADER_SIZE and int.from_bytes(data[:2], "big") > 0
            and data[2] in _HEADER_FIRST_BYTES)


def json_header(raw: bytes) -> dict[str, Any] | None:
    """The JSON header as a dict, or None if it is not a JSON object."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _content_length(pkt: Packet) -> int:
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
        StrLenField("content", b"", length_from=_content_length),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kwargs: Any) -> type[Packet]:
        """Bytes that cannot begin a message are dissected as Raw instead."""
        if _pkt is not None and not looks_like_message(bytes(_pkt)):
            return conf.raw_layer
        return cls

    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        """After one message, another may follow on the same stream."""
        return SearchMessage if looks_like_message(payload) else conf.raw_layer

    def mysummary(self) -> str:
        """Short text for scapy's summary()."""
        return f"Search message {len(self.content or b'')} content bytes"


def bind_search_port(port: int = DEFAULT_PORT) -> None:
    """Dissect TCP payloads to or from ``port`` as search-protocol messages (idempotent)."""
    if port in _bound_ports or not 0 < port <= 0xFFFF:
        return
    bind_layers(TCP, SearchMessage, sport=port)
    bind_layers(TCP, SearchMessage, dport=port)
    _bound_ports.add(port)


bind_search_port(DEFAULT_PORT)
