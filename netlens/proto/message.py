"""Messages of the search protocol and the constants that define them (PROTOCOL.md §2)."""

from __future__ import annotations

import enum
import reprlib
from dataclasses import dataclass
from typing import Any

from netlens.display import plural

#: ``struct`` format of the 2-byte proto header: big-endian unsigned 16-bit.
PROTO_HEADER_FORMAT = ">H"
PROTO_HEADER_SIZE = 2

#: Keys every JSON header must carry, in the order the stock senders write them.
REQUIRED_KEYS = ("byteorder", "content-type", "content-encoding", "content-length")

JSON_CONTENT_TYPE = "text/json"
CLIENT_BINARY_TYPE = "binary/custom-client-binary-type"
SERVER_BINARY_TYPE = "binary/custom-server-binary-type"
TEXT_ENCODING = "utf-8"
BINARY_ENCODING = "binary"
KNOWN_ENCODINGS = frozenset({TEXT_ENCODING, BINARY_ENCODING})
BYTEORDERS = frozenset({"little", "big"})

#: Default cap on ``content-length`` (bytes); configurable per decoder.
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024
#: Default cap on the JSON header length. The format allows 65535, but the stock
#: headers are ~105 bytes; a small cap rejects non-protocol bytes (an HTTP
#: request's "GE" reads as 18245) at once instead of waiting for them.
DEFAULT_MAX_HEADER_LENGTH = 16 * 1024
#: Deepest nesting of arrays/objects accepted in a JSON header or JSON content.
#: The stock messages nest one level; the bound keeps every later step (repr,
#: json.dumps, rendering) far below Python's recursion limit.
MAX_JSON_DEPTH = 32
#: Longest value text in a :meth:`Message.describe` summary (a value may be a megabyte).
DESCRIBE_LIMIT = 200

_short = reprlib.Repr()
_short.maxstring = DESCRIBE_LIMIT
_short.maxother = DESCRIBE_LIMIT
_short.maxlevel = 3


def short_repr(value: object) -> str:
    """``repr(value)`` for wire values, at most about :data:`DESCRIBE_LIMIT` characters.

    Short values read exactly like ``repr``; a long string keeps its start and
    end around ``...``; deep or long containers are elided (``[...]``). The cost
    is bounded by the limit, not by the value's size.
    """
    if type(value) is str and len(value) <= DESCRIBE_LIMIT // 2:
        return repr(value)  # the common case, at C speed
    return _short.repr(value)


class Stage(enum.Enum):
    """Where an incremental decoder is within the current message."""

    PROTO_HEADER = "proto header"
    JSON_HEADER = "JSON header"
    CONTENT = "content"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Message:
    """One complete message: its JSON header and its content.

    ``value`` is the decoded JSON object when the content type is
    ``text/json``; otherwise ``None`` and ``content`` holds the raw bytes.
    """

    header: dict[str, Any]
    content: bytes
    value: dict[str, Any] | None = None

    @property
    def content_type(self) -> str:
        """The ``content-type`` header value."""
        return str(self.header["content-type"])

    @property
    def content_encoding(self) -> str:
        """The ``content-encoding`` header value."""
        return str(self.header["content-encoding"])

    @property
    def byteorder(self) -> str:
        """The sender's declared ``byteorder`` (informational)."""
        return str(self.header["byteorder"])

    @property
    def is_json(self) -> bool:
        """True when the content is a JSON object (``text/json``)."""
        return self.value is not None

    def describe(self) -> str:
        """A short human summary: ``search 'morpheus'``, ``result '...'``, ``binary 12 bytes``.

        The result is *not* escaped; callers showing it in a terminal must pass
        it through :mod:`netlens.textsafe`.
        """
        if self.value is None:
            return f"{short_text(self.content_type)} {plural(len(self.content), 'byte')}"
        value = self.value
        if "action" in value:
            return f"{short_text(str(value.get('action')))} {short_repr(value.get('value'))}"
        if "result" in value:
            return f"result {short_repr(value.get('result'))}"
        if "error" in value:
            return f"error {short_repr(value.get('error'))}"
        return f"json {plural(len(self.content), 'byte')}"


def short_text(text: str, limit: int = DESCRIBE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters (with ``…``)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"

