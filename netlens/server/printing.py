"""Event records as printed lines, many at a time: what ``serve --headless`` writes.

The headless server prints every socket event, thousands a second, so these
formatters work on raw bus records (never building an event object), format
the clock once per second, and return one encoded batch (or string). Text lines are the
events' own ``describe()`` texts (wire bytes escaped and cut); JSON lines are
written from per-field templates rather than ``json.dumps`` of a dict, and
escape every control, bidi, zero-width and surrogate character as ``\\uXXXX``
(like :func:`netlens.textsafe.safe_json`), so both outputs are printable and
encode under every locale. ``json.loads`` of a JSON line equals
:func:`netlens.server.events.record_dict` of its record.
"""

from __future__ import annotations

import json.encoder
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from netlens.display import endpoint
from netlens.server.bus import EventRecord
from netlens.server.events import (
    _FIELD_NAMES,
    _KINDS,
    DESCRIBERS,
    EVENT_CODES,
    Accepted,
    MaskChanged,
    Received,
    mask_name,
)

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
#: What one cached text costs besides its bytes (dict slot, key tuple, bytes header).
_ENTRY_OVERHEAD = 200
#: Connection columns kept ready-made before that cache starts over.
_WHO_LIMIT = 4096
_ACCEPTED_CODE = EVENT_CODES[Accepted]
_ENCODED_HEADS = tuple(head.encode("ascii") for head in _HEADS)


class RecordFormatter:
    """Formats batches of records as text or JSON lines, remembering repeated descriptions.

    Most of a busy server's lines repeat but for their time and connection
    ("selector mask - -> READ", "send 148 bytes", the same request's bytes), so
    the part after the connection id is cached, already encoded, by the record's
    fields, within :data:`CACHE_BYTES` (the cache starts over when full). A
    batch is built as bytes: the clock and connection columns (ASCII, made once
    per millisecond and per connection) and the cached tails are joined once,
    with no per-line string concatenation or encoding.
    """

    def __init__(self, as_json: bool = False, encoding: str = "utf-8") -> None:
        self.as_json = as_json
        self.encoding = encoding
        # One cache per event code, keyed by the record's fields after ts and conn.
        self._caches: list[dict[tuple[Any, ...], bytes]] = [{} for _ in DESCRIBERS]
        self._cached_bytes = 0
        self._whos: dict[int, bytes] = {}
        self._second = -1
        self._prefix = ""
        self._last_ms = -1
        self._stamp = b""
        #: Encoded parts of "accepted" lines by address (each peer's port makes every line unique).
        self._peer_parts: dict[str, bytes] = {}
        self._local_parts: dict[tuple[Any, ...], bytes] = {}

    def format(self, records: Sequence[EventRecord]) -> str:
        """One line per record, each ending in a newline."""
        return self.format_bytes(records).decode(self.encoding, "backslashreplace")

    def format_bytes(self, records: Sequence[EventRecord]) -> bytes:
        """:meth:`format`, encoded (characters the encoding lacks as ``\\`` escapes)."""
        return self._json(records) if self.as_json else self._text(records)

    def _remember(self, code: int, key: tuple[Any, ...], text: str) -> bytes:
        encoded = text.encode(self.encoding, "backslashreplace")
        if code == _ACCEPTED_CODE:
            return encoded  # its peer's port makes every one unique: not worth keeping
        self._cached_bytes += len(encoded) + _ENTRY_OVERHEAD
        if self._cached_bytes > CACHE_BYTES:
            for cache in self._caches:
                cache.clear()
            self._cached_bytes = len(encoded) + _ENTRY_OVERHEAD
        self._caches[code][key] = encoded
        return encoded

    def _stamp_of(self, ms: int) -> bytes:
        """``HH:MM:SS.mmm `` of a millisecond count (the clock formatted once per second)."""
        second = ms // 1000
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%H:%M:%S", time.localtime(second))
        return f"{self._prefix}.{ms % 1000:03d} ".encode("ascii")

    def _who(self, conn: int) -> bytes:
        """The connection column (``     #12 `` or `` server ``), kept per connection."""
        if len(self._whos) >= _WHO_LIMIT:
            self._whos.clear()
        who = f"#{conn}" if conn else "server"
        text = self._whos[conn] = f"{who:>7} ".encode("ascii")
        return text

    def _text(self, records: Sequence[EventRecord]) -> bytes:
        out: list[bytes] = []
        append = out.append
        caches = self._caches
        last_ms, stamp = self._last_ms, self._stamp
        # Most lines share their millisecond and connection with the line before:
        # the "HH:MM:SS.mmm      #12 " prefix is then the one already made. A stamp
        # inside [low, high) has the millisecond of the last one (see _millisecond).
        low, high = _millisecond(last_ms)
        last_conn, prefix = -1, b""
        for record in records:
            conn = record[2]
            if conn != last_conn or not low <= record[1] < high:
                ms = int(record[1] * 1000)
                if ms != last_ms:
                    last_ms = ms
                    stamp = self._stamp_of(ms)
                    low, high = _millisecond(ms)
                last_conn = conn
                prefix = stamp + (self._whos.get(conn) or self._who(conn))
            # The fields: the stamp and the connection would make every key unique.
            text = caches[record[0]].get(record[3:])
            if text is None:
                text = self._describe(record)
            append(prefix)
            append(text)
        self._last_ms, self._stamp = last_ms, stamp
        return b"".join(out)

    def _describe(self, record: EventRecord) -> bytes:
        """A record's encoded text line after the connection column (kept for the next like it)."""
        code = record[0]
        key = record[3:]
        if code == _ACCEPTED_CODE:
            return self._accepted(key, False)
        return self._remember(code, key, DESCRIBERS[code](*key) + "\n")

    def _accepted(self, fields: tuple[Any, ...], as_json: bool) -> bytes:
        """An "accepted" line's encoded tail, from the parts kept per peer host and per local address.

        A search flood accepts thousands of connections a second, each line unique
        by its peer's port: only that port is formatted per line.
        """
        if not _as_the_loop_records(fields):
            # An old recording (no cookie), a test's odd values: the general way.
            text = _json_fields((_ACCEPTED_CODE, 0, 0, *fields)) + "}\n" if as_json else DESCRIBERS[
                _ACCEPTED_CODE](*fields) + "\n"
            return text.encode(self.encoding, "backslashreplace")
        parts, local_parts = self._peer_parts, self._local_parts
        if len(parts) >= _WHO_LIMIT or len(local_parts) >= _WHO_LIMIT:
            parts.clear()
            local_parts.clear()
        peer, local = fields[0], fields[1]
        host = peer[0]
        # JSON and text formatters are separate objects: a cache holds one output's parts.
        head = parts.get(host)
        if head is None:
            head = parts[host] = (f', "peer": [{json_string(host)}, ' if as_json
                                  else ("accepted [" + host + "]:" if ":" in host else "accepted " + host + ":")
                                  ).encode(self.encoding, "backslashreplace")
        tail = local_parts.get(local)
        if tail is None:
            tail = local_parts[local] = (f'], "local": {json_value(local)}, "cookie": ' if as_json
                                         else " -> " + endpoint(*local) + "\n").encode(self.encoding,
                                                                                     "backslashreplace")
        if not as_json:
            return b"%s%d%s" % (head, peer[1], tail)
        cookie = fields[2]
        return b"%s%d%s%s}\n" % (head, peer[1], tail, b"null" if cookie is None else b"%d" % cookie)

    def _json(self, records: Sequence[EventRecord]) -> bytes:
        out: list[bytes] = []
        append = out.append
        caches = self._caches
        heads = _ENCODED_HEADS
        # A float's repr() is most of a line's cost: events stamped by one clock
        # reading (one step of the loop) share it.
        last_ts, stamp = None, b""
        last_conn, conn_text = -1, b""
        for record in records:
            ts = record[1]
            if ts != last_ts:
                last_ts = ts
                # %r of a float is its repr(), as json.dumps writes it.
                stamp = b"%r" % ts
            conn = record[2]
            if conn != last_conn:
                last_conn = conn
                conn_text = b', "conn": %d' % conn
            key = record[3:]
            code = record[0]
            tail = caches[code].get(key)
            if tail is None:
                tail = (self._accepted(key, True) if code == _ACCEPTED_CODE
                        else self._remember(code, key, _json_fields(record) + "}\n"))
            append(heads[code])
            append(stamp)
            append(conn_text)
            append(tail)
        return b"".join(out)


def _as_the_loop_records(fields: tuple[Any, ...]) -> bool:
    """True for Accepted fields as the loop records them: ``((host, port), local, cookie or None)``."""
    if len(fields) != 3:
        return False
    peer, cookie = fields[0], fields[2]
    return (peer.__class__ is tuple and len(peer) == 2 and peer[0].__class__ is str and peer[1].__class__ is int
            and (cookie is None or cookie.__class__ is int))


def _millisecond(ms: int) -> tuple[float, float]:
    """Stamps ``ts`` in ``[low, high)`` all have ``int(ts * 1000) == ms`` (a comparison, not a product).

    The bounds are the float quotients moved inwards by a few units in the last
    place, so rounding can never put a stamp of the range in the next
    millisecond; the few stamps left between ranges take the exact path.
    """
    if ms < 0:
        return 0.0, 0.0
    low = math.nextafter(ms / 1000, math.inf)
    high = (ms + 1) / 1000
    for _ in range(3):
        high = math.nextafter(high, -math.inf)
    return low, high


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
