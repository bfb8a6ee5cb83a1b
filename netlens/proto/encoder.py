"""Encoding messages to bytes exactly as the stock tutorial senders do."""

from __future__ import annotations

import json
import re
import struct
import sys
from typing import Any

from netlens.proto.message import (
    BINARY_ENCODING,
    CLIENT_BINARY_TYPE,
    JSON_CONTENT_TYPE,
    PROTO_HEADER_FORMAT,
    TEXT_ENCODING,
    Message,
)

_PROTO_HEADER = struct.Struct(PROTO_HEADER_FORMAT)
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_bytes(value: Any) -> bytes:
    """``json.dumps(value, ensure_ascii=False)`` in UTF-8, as the stock senders write it.

    A string may hold lone surrogates (a JSON ``"\\ud800"`` escape decodes to
    one), which UTF-8 cannot encode; those few characters are written as
    ``\\uXXXX`` escapes instead, which JSON reads back as the same string.
    Everything else is byte-for-byte what the stock senders produce.
    """
    text = json.dumps(value, ensure_ascii=False)
    try:
        return text.encode(TEXT_ENCODING)
    except UnicodeEncodeError:
        # Surrogates can only be inside JSON strings, where the escape means the same thing.
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text).encode(TEXT_ENCODING)


def make_message(
    content: bytes,
    content_type: str,
    content_encoding: str,
    byteorder: str = sys.byteorder,
    value: dict[str, Any] | None = None,
) -> Message:
    """Build a :class:`Message` with the JSON header the stock senders write.

    Keys come in the stock order (``byteorder``, ``content-type``,
    ``content-encoding``, ``content-length``) so the encoding is byte-exact.
    """
    header = {
        "byteorder": byteorder,
        "content-type": content_type,
        "content-encoding": content_encoding,
        "content-length": len(content),
    }
    return Message(header, content, value)


def json_message(value: dict[str, Any], byteorder: str = sys.byteorder) -> Message:
    """A ``text/json`` message carrying ``value``, encoded with ``ensure_ascii=False``."""
    content = json_bytes(value)
    return make_message(content, JSON_CONTENT_TYPE, TEXT_ENCODING, byteorder, value)


def binary_message(content: bytes, content_type: str, byteorder: str = sys.byteorder) -> Message:
    """A raw-bytes message of ``content_type`` with encoding ``binary``."""
    return make_message(content, content_type, BINARY_ENCODING, byteorder)


def request_message(action: str, value: str, byteorder: str = sys.byteorder) -> Message:
    """The request the stock client sends for ``action``/``value``.

    ``search`` is JSON; any other action is the binary request whose content
    is ``(action + value)`` in UTF-8.
    """
    if action == "search":
        return json_message({"action": action, "value": value}, byteorder)
    return binary_message((action + value).encode(TEXT_ENCODING), CLIENT_BINARY_TYPE, byteorder)


def encode(message: Message) -> bytes:
    """Serialise ``message``: proto header + JSON header + content."""
    header = json_bytes(message.header)
    return _PROTO_HEADER.pack(len(header)) + header + message.content


def encode_request(action: str, value: str, byteorder: str = sys.byteorder) -> bytes:
    """Bytes of the stock client's request (see :func:`request_message`)."""
    return encode(request_message(action, value, byteorder))
