"""Make untrusted text (anything that came off the network) safe to show in a terminal.

Bytes from the wire may hold ANSI escape sequences, other control characters,
bidirectional overrides or Rich markup. Nothing from the wire may ever change
what the terminal does, so every such character is replaced by a visible escape
(``\\x1b``, ``\\n``...). Rich markup is a separate concern: code that renders with
Rich must build ``rich.text.Text`` objects from these strings (never parse them
as markup), or pass them through ``rich.markup.escape``.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the Unicode format characters that can
# reorder or hide text (bidi overrides/isolates, zero-width joiners, BOM, line
# and paragraph separators).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_str(text: str) -> str:
    """Return ``text`` with every control or invisible formatting character shown as an escape."""
    return _UNSAFE.sub(_escape_char, text)


def safe_bytes(data: bytes, limit: int | None = None) -> str:
    """Decode ``data`` as UTF-8 (invalid bytes as ``\\xNN``) and escape it like :func:`safe_str`.

    ``limit`` truncates the input first and appends an ellipsis, so a huge
    payload never costs more than a screenful to render.
    """
    suffix = ""
    if limit is not None and len(data) > limit:
        data, suffix = data[:limit], "…"
    return safe_str(data.decode("utf-8", "backslashreplace")) + suffix


def safe_repr(value: object) -> str:
    """``repr()`` of a value from the wire, escaped; quotes make empty strings visible."""
    return safe_str(repr(value))
