"""Incremental (sans-IO) decoder for the search protocol.

Feed it bytes in any split — a whole message, or one byte at a time — and it
returns the same events in the same order: :class:`ProtoHeaderRead`, then
:class:`JsonHeaderRead`, then :class:`MessageComplete`. It never touches a
socket or a clock; the server and the clients wrap it with I/O.
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netlens.proto.errors import ProtocolError
from netlens.proto.message import (
    BYTEORDERS,
    DEFAULT_MAX_CONTENT_LENGTH,
    DEFAULT_MAX_HEADER_LENGTH,
    JSON_CONTENT_TYPE,
    KNOWN_ENCODINGS,
    MAX_JSON_DEPTH,
    PROTO_HEADER_SIZE,
    REQUIRED_KEYS,
    TEXT_ENCODING,
    Message,
    Stage,
)

# A JSON object may start after JSON whitespace; anything else cannot be ours.
_HEADER_FIRST_BYTES = frozenset(b" \t\r\n{")
# A bound decoder method skips json.loads()'s per-call argument handling.
_json_decoder = json.JSONDecoder()
_json_decode = _json_decoder.decode
# (typeshed types make_scanner's argument as the scanner class; the runtime takes the decoder.)
_json_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(_json_decoder)  # type: ignore[arg-type]


def _decode_json(text: str) -> Any:
    """``json.loads(text)``, with one C call for the usual text: an object with no whitespace around it.

    Anything else (or trailing bytes) goes through the full decoder, which
    raises exactly what ``json.loads`` raises.
    """
    if text[:1] == "{":
        try:
            value, end = _json_scan(text, 0)
        except StopIteration:  # the scanner's "no value here" (text cut after a key): the decoder says it properly
            return _json_decode(text)
        if end == len(text):
            return value
    return _json_decode(text)

# JSON strings (which may hold brackets) and the brackets outside them.
_JSON_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_OPENERS = frozenset(b"[{")
_REQUIRED = frozenset(REQUIRED_KEYS)


def json_too_deep(raw: bytes | bytearray, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays/objects in the JSON text ``raw`` nest more than ``limit`` levels deep.

    Cheap for ordinary messages: when the whole text has no more opening
    brackets than ``limit``, nothing can nest deeper and no scan is made.
    Brackets inside strings do not count.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_STRING_OR_BRACKET.finditer(raw):
        token = match.group()
        if len(token) != 1:
            continue  # a string: its brackets are text
        if token[0] in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


@dataclass(frozen=True, slots=True)
class ProtoHeaderRead:
    """The 2-byte proto header arrived: the JSON header is ``header_length`` bytes."""

    header_length: int


@dataclass(frozen=True, slots=True)
class JsonHeaderRead:
    """The JSON header arrived and passed every check."""

    header: dict[str, Any]

    @property
    def content_length(self) -> int:
        """Bytes of content still to come for this message."""
        return int(self.header["content-length"])


@dataclass(frozen=True, slots=True)
class MessageComplete:
    """A whole message arrived and its content decoded."""

    message: Message
    wire_length: int


DecoderEvent = ProtoHeaderRead | JsonHeaderRead | MessageComplete


class Decoder:
    """Turns a byte stream into search-protocol messages, one stage at a time.

    After a :class:`ProtocolError` the decoder stays in ``Stage.FAILED`` and
    every later :meth:`feed` raises again: a stream that broke framing cannot
    be resynchronised.

    ``max_messages`` stops parsing after that many messages (the search
    protocol has one request per connection): later bytes are only counted in
    :attr:`extra`, so trailing junk cannot spoil a request that already
    arrived whole.
    """

    def __init__(
        self,
        max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
        max_header_length: int = DEFAULT_MAX_HEADER_LENGTH,
        max_messages: int | None = None,
    ) -> None:
        if max_content_length < 0 or not 0 < max_header_length <= 0xFFFF:
            raise ValueError("limits must be non-negative and the header cap at most 65535")
        self.max_content_length = max_content_length
        self.max_header_length = max_header_length
        self._buffer = bytearray()
        self.stage = Stage.PROTO_HEADER
        #: Length of the current JSON header, once the proto header is read.
        self.header_length: int | None = None
        #: The current JSON header, once read and checked.
        self.header: dict[str, Any] | None = None
        #: Messages completed so far on this stream.
        self.messages = 0
        self.max_messages = max_messages
        #: Bytes that arrived after ``max_messages`` messages and were not parsed.
        self.extra = 0
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> bytes:
        """Bytes received but not yet consumed by a complete stage."""
        return bytes(self._buffer)

    def peek(self, limit: int) -> bytes:
        """The first ``limit`` buffered bytes (without copying the rest)."""
        return bytes(self._buffer[:limit])

    @property
    def buffered_length(self) -> int:
        """How many bytes wait in the buffer."""
        return len(self._buffer)

    @property
    def needed(self) -> int:
        """How many more bytes the current stage needs before it completes."""
        if self.stage is Stage.PROTO_HEADER:
            return max(0, PROTO_HEADER_SIZE - len(self._buffer))
        if self.stage is Stage.JSON_HEADER:
            assert self.header_length is not None
            return max(0, self.header_length - len(self._buffer))
        if self.stage is Stage.CONTENT:
            assert self.header is not None
            return max(0, int(self.header["content-length"]) - len(self._buffer))
        return 0

    def feed(self, data: bytes) -> list[DecoderEvent]:
        """Consume ``data`` and return the events it completes, in order.

        Raises :class:`ProtocolError` (and only that) when the bytes break the
        protocol; the events completed before the bad byte are lost with it,
        which is fine because a broken stream is closed anyway.
        """
        if self._error is not None:
            raise self._error
        if self.max_messages is not None and self.messages >= self.max_messages:
            self.extra += len(data)
            return []
        self._buffer += data
        events: list[DecoderEvent] = []
        try:
            while True:
                event = self._step()
                if event is None:
                    return events
                events.append(event)
                if self.max_messages is not None and self.messages >= self.max_messages:
                    self.extra += len(self._buffer)
                    self._buffer.clear()
                    return events
        except ProtocolError as exc:
            self.stage = Stage.FAILED
            self._error = exc
            raise

    def _fail(self, message: str, answerable: bool) -> ProtocolError:
        return ProtocolError(message, stage=str(self.stage), answerable=answerable)

    def _step(self) -> DecoderEvent | None:
        buf = self._buffer
        stage = self.stage
        if stage is Stage.PROTO_HEADER:
            if len(buf) < PROTO_HEADER_SIZE:
                return None
            length = (buf[0] << 8) | buf[1]  # ">H", without a struct call on the hot path
            if length == 0:
                raise self._fail("JSON header length is 0", answerable=False)
            if length > self.max_header_length:
                raise self._fail(
                    f"JSON header length {length} exceeds the limit of {self.max_header_length} bytes",
                    answerable=False,
                )
            del buf[:PROTO_HEADER_SIZE]
            self.header_length = length
            self.stage = Stage.JSON_HEADER
            return ProtoHeaderRead(length)

        if stage is Stage.JSON_HEADER:
            header_length = self.header_length
            assert header_length is not None
            # Reject non-protocol bytes (e.g. an HTTP request) on the first
            # header byte instead of waiting for a length that never comes.
            if buf and buf[0] not in _HEADER_FIRST_BYTES:
                raise self._fail(
                    f"JSON header starts with byte 0x{buf[0]:02x}, not '{{'", answerable=False
                )
            if len(buf) < header_length:
                return None
            raw = buf[:header_length]
            del buf[:header_length]
            parsed = self._parse_header(raw)
            self.header = parsed
            self.stage = Stage.CONTENT
            return JsonHeaderRead(parsed)

        if stage is Stage.CONTENT:
            current = self.header
            assert current is not None and self.header_length is not None
            header = current
            length = header["content-length"]
            if len(buf) < length:
                return None
            content = bytes(buf[:length]) if length else b""
            del buf[:length]
            value = self._parse_content(header, content)
            wire = PROTO_HEADER_SIZE + self.header_length + length
            self.header = self.header_length = None
            self.stage = Stage.PROTO_HEADER
            self.messages += 1
            return MessageComplete(Message(header, content, value), wire)

        raise self._fail("decoder already failed", answerable=False)  # pragma: no cover

    def _parse_header(self, raw: bytearray) -> dict[str, Any]:
        header = self._json_object(raw, "JSON header")
        # One set comparison in C for the usual header that has every key.
        if not header.keys() >= _REQUIRED:
            missing = [key for key in REQUIRED_KEYS if key not in header]
            raise self._fail("JSON header is missing " + ", ".join(repr(k) for k in missing), True)
        byteorder = header["byteorder"]
        if not isinstance(byteorder, str) or byteorder not in BYTEORDERS:
            raise self._fail(f"byteorder {_short(byteorder)} is neither 'little' nor 'big'", True)
        content_type = header["content-type"]
        if not isinstance(content_type, str):
            raise self._fail(f"content-type {_short(content_type)} is not a string", True)
        encoding = header["content-encoding"]
        if not isinstance(encoding, str) or encoding not in KNOWN_ENCODINGS:
            raise self._fail(
                f"content-encoding {_short(encoding)} is unknown (expected 'utf-8' or 'binary')", True
            )
        if content_type == JSON_CONTENT_TYPE and encoding != TEXT_ENCODING:
            raise self._fail(f"text/json content must be 'utf-8', not {encoding!r}", True)
        length = header["content-length"]
        # bool is an int subclass: `true` is not a length.
        if not isinstance(length, int) or isinstance(length, bool):
            raise self._fail(f"content-length {_short(length)} is not an integer", True)
        if length < 0:
            raise self._fail(f"content-length {length} is negative", True)
        if length > self.max_content_length:
            raise self._fail(
                f"content-length {length} exceeds the limit of {self.max_content_length} bytes", True
            )
        return header

    def _parse_content(self, header: dict[str, Any], content: bytes) -> dict[str, Any] | None:
        if header["content-type"] != JSON_CONTENT_TYPE:
            return None
        return self._json_object(content, "JSON content")

    def _json_object(self, raw: bytes | bytearray, what: str) -> dict[str, Any]:
        """Decode UTF-8 JSON that must be an object; every failure is a ProtocolError naming ``what``."""
        if json_too_deep(raw):
            raise self._fail(f"{what} nests arrays/objects deeper than {MAX_JSON_DEPTH} levels", True)
        try:
            value = _decode_json(raw.decode(TEXT_ENCODING))
        except UnicodeDecodeError as exc:
            raise self._fail(f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start})", True) from None
        except RecursionError:
            raise self._fail(f"{what} is nested too deeply", True) from None
        except ValueError as exc:
            raise self._fail(f"{what} is not valid JSON ({_json_reason(exc)})", True) from None
        if not isinstance(value, dict):
            raise self._fail(f"{what} is {_json_type(value)}, not an object", True)
        return value

def _json_reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        # Some of json's messages end in "at" already ("Invalid control character at").
        msg = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg
        return f"{msg} at byte {exc.pos}"
    return str(exc).split(";")[0]


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
             float: "a number", int: "a number"}
    return names.get(type(value), type(value).__name__)


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "Decoder",
    "DecoderEvent",
    "JsonHeaderRead",
    "MessageComplete",
    "ProtoHeaderRead",
]
