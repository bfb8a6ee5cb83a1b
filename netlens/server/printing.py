"""Event records as printed lines, many at a time: what ``serve --headless`` writes.

The headless server prints every socket event, thousands a second, so these
formatters work on raw bus records (never building an event object), format
the clock once per second, and return one string per batch. Text lines are the
events' own ``describe()`` texts (wire bytes escaped and cut); JSON lines are
written from per-field templates rather than ``json.dumps`` of a dict, and
escape every control, bidi, zero-width and surrogate character as ``\\uXXXX``
(like :func:`netlens.textsafe.safe_json`), so both outputs are printable and
encode under every locale. ``json.loads`` of a JSON line equals
:func:`netlens.server.events.record_dict` of its record.
"""

from __future__ import annotations

import json.encoder
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from netlens.server.bus import EventRecord
from netlens.server.events import _FIELD_NAMES, _KINDS, DESCRIBERS, EVENT_CODES, MaskChanged, Received, mask_name

_encode_basestring: Callable[[str], str] = json.encoder.encode_basestring
# What json's encoder leaves as it is but a terminal must not see (see netlens.textsafe).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
_MASK_CODE = EVENT_CODES[MaskChanged]
_RECV_CODE = EVENT_CODES[Received]
# '{"event": "recv", "ts": ' and the like, and each kind's '"name": ' keys.
_HEADS = tuple(f'{{"event": "{kind}", "ts": ' for kind in _KINDS)
_KEYS = tuple(tuple(f', "{name}": ' for name in names) for names in _FIELD_NAMES)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def json_string(text: str) -> str:
    """``text`` as a JSON string literal, safe for a terminal (see the module docstring)."""
    quoted = _encode_basestring(text)
    return _JSON_UNSAFE.sub(_json_escape, quoted) if _JSON_UNSAFE.search(quoted) else quoted


def json_value(value: Any) -> str:
    """A record field (int, float, str, None, bool, or a tuple of those) as JSON text."""
    kind = value.__class__
    if kind is int:
        return str(value)
    if kind is str:
        return json_string(value)
    if kind is tuple:
        return "[" + ", ".join(json_value(item) for item in value) + "]"
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return repr(value)
    if kind is bytes:
        return json_string(value.decode("utf-8", "backslashreplace"))
    return json_string(str(value))


#: Bytes of cached describer output a formatter may hold before it starts over.
CACHE_BYTES = 1 << 20


class RecordFormatter:
    """Formats batches of records as text or JSON lines, remembering repeated descriptions.

    Most of a busy server's lines repeat but for their time and connection
    ("selector mask - -> READ", "send 148 bytes", the same request's bytes), so
    the part after the connection id is cached by the record's fields, within
    :data:`CACHE_BYTES` (the cache starts over when full).
    """

    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json
        self._cache: dict[tuple[Any, ...], str] = {}
        self._cached_bytes = 0
        self._second = -1
        self._prefix = ""

    def format(self, records: Sequence[EventRecord]) -> str:
        """One line per record, each ending in a newline."""
        return self._json(records) if self.as_json else self._text(records)

    def _remember(self, key: tuple[Any, ...], text: str) -> str:
        self._cached_bytes += len(text) + 200
        if self._cached_bytes > CACHE_BYTES:
            self._cache.clear()
            self._cached_bytes = len(text) + 200
        self._cache[key] = text
        return text

    def _text(self, records: Sequence[EventRecord]) -> str:
        out: list[str] = []
        append = out.append
        cache = self._cache
        describers = DESCRIBERS
        second, prefix = self._second, self._prefix
        # Consecutive records mostly share their millisecond and connection: reuse both texts.
        last_ms, last_conn, head = -1, -1, ""
        for record in records:
            ts = record[1]
            ms = int(ts * 1000)
            conn = record[2]
            if ms != last_ms or conn != last_conn:
                whole = ms // 1000
                if whole != second:
                    second = whole
                    prefix = time.strftime("%H:%M:%S", time.localtime(whole))
                who = f"#{conn}" if conn else "server"
                head = f"{prefix}.{ms % 1000:03d} {who:>7} "
                last_ms, last_conn = ms, conn
            # The code and the fields: the stamp and the connection would make every key unique.
            key = (record[0], *record[3:])
            text = cache.get(key)
            if text is None:
                text = self._remember(key, describers[record[0]](*record[3:]))
            append(head + text + "\n")
        self._second, self._prefix = second, prefix
        return "".join(out)

    def _json(self, records: Sequence[EventRecord]) -> str:
        out: list[str] = []
        append = out.append
        cache = self._cache
        for record in records:
            key = (record[0], *record[3:])
            tail = cache.get(key)
            if tail is None:
                tail = self._remember(key, _json_fields(record))
            append(f"{_HEADS[record[0]]}{record[1]!r}, \"conn\": {record[2]}{tail}}}\n")
        return "".join(out)


def _json_fields(record: EventRecord) -> str:
    """The ``, "name": value`` part of a record's JSON object."""
    code = record[0]
    values = record[3:]
    if code == _MASK_CODE:
        values = (mask_name(values[0]), mask_name(values[1]))
    parts: list[str] = []
    for key, value in zip(_KEYS[code], values, strict=False):
        parts.append(key)
        parts.append(json_value(value))
    return "".join(parts)


def format_json(records: Sequence[EventRecord]) -> str:
    """One JSON object per record, each ending in a newline."""
    return RecordFormatter(as_json=True).format(records)


def format_text(records: Sequence[EventRecord]) -> str:
    """One human line per record (``14:03:07.412      #3 recv 146 bytes: ...``), each ending in a newline."""
    return RecordFormatter().format(records)


__all__ = ["RecordFormatter", "format_json", "format_text", "json_string", "json_value"]
