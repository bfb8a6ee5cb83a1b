"""Make untrusted text (anything that came off the network) safe to show in a terminal.

Bytes from the wire may hold ANSI escape sequences, other control characters,
bidirectional overrides, lone surrogates or Rich markup. Nothing from the wire
may ever change what the terminal does, so every such character is replaced by
a visible escape (``\\x1b``, ``\\n``, ``\\ud800``...). Lone surrogates matter
twice: they cannot be encoded to UTF-8 at all (a print would raise), and under
a C/POSIX locale Python writes ``\\udc80``-``\\udcff`` as the raw bytes
0x80-0xFF (0x9b is the 8-bit CSI). Rich markup is a separate concern: code that
renders with Rich must build ``rich.text.Text`` objects from these strings
(never parse them as markup), or pass them through ``rich.markup.escape``.

:func:`safe_json` is the JSON counterpart: ``json.dumps`` that keeps readable
non-ASCII text but writes every one of those characters as a ``\\u`` escape,
so a terminal showing the JSON is safe too and the output always encodes.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls, DEL, C1 controls, the Unicode format characters that can reorder
# or hide text (Arabic letter mark, zero-width space/joiners, LRM/RLM, line and
# paragraph separators, bidi embeddings/overrides/isolates, word joiner and
# invisible operators, BOM), and every surrogate code point.
_UNSAFE_CLASS = "\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff"
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
# The same set less what json.dumps already escapes (C0, '"' and '\\' are handled by it).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: What a cut text ends with.
ELLIPSIS = "…"


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def safe_str(text: str) -> str:
    """Return ``text`` with every control, invisible formatting or surrogate character shown as an escape."""
    # Fast path: every character this module escapes is one Python calls unprintable
    # (categories Cc, Cf, Cs, Zl, Zp), and the check is one C loop.
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape_char, text)


def safe_bytes(data: bytes, limit: int | None = None) -> str:
    """Decode ``data`` as UTF-8 (invalid bytes as ``\\xNN``) and escape it like :func:`safe_str`.

    ``limit`` truncates the input first and appends an ellipsis, so a huge
    payload never costs more than a screenful to render.
    """
    suffix = ""
    if limit is not None and len(data) > limit:
        data, suffix = data[:limit], ELLIPSIS
    return safe_str(data.decode("utf-8", "backslashreplace")) + suffix


def safe_repr(value: object) -> str:
    """``repr()`` of a value from the wire, escaped; quotes make empty strings visible."""
    return safe_str(repr(value))


def cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def safe_short(text: str, limit: int) -> str:
    """:func:`safe_str` of ``text`` cut to ``limit`` characters (the cut is made before escaping, too,
    so a megabyte of wire text costs no more than ``limit`` to show)."""
    return cut(safe_str(text[: limit + 1]), limit)


def safe_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)`` with every unsafe character as a ``\\uXXXX`` escape.

    Readable text (accents, CJK, emoji) stays as it is; C0/C1 controls, DEL,
    bidi and zero-width characters and lone surrogates become escapes, which any
    JSON parser reads back to the same string. The result is printable and
    encodes under every locale.
    """
    text = json.dumps(value, ensure_ascii=False)
    # These characters can only occur inside JSON strings (the syntax is ASCII), where
    # a \u escape means the same character: the document's meaning does not change.
    return _JSON_UNSAFE.sub(_json_escape, text)


def json_preview(value: Any, limit: int = 300) -> str:
    """Compact JSON text of ``value`` for a screen, at most ``limit`` characters, escaped like :func:`safe_str`.

    Written without recursion (an explicit stack), so no nesting depth can
    raise RecursionError, and it stops as soon as ``limit`` is reached, so a
    huge value costs no more than the screen shows. Strings are quoted like
    JSON (``json.dumps`` of each scalar).
    """
    out: list[str] = []
    used = 0
    # Work items: a value to render, or a literal piece of text (closing brackets, separators).
    stack: list[tuple[bool, Any]] = [(False, value)]
    while stack and used <= limit:
        literal, item = stack.pop()
        if literal:
            piece = item
        elif isinstance(item, dict):
            piece = "{"
            pending: list[tuple[bool, Any]] = [(True, "}")]
            for index, (key, inner) in enumerate(reversed(list(item.items()))):
                pending.append((False, inner))
                pending.append((True, json.dumps(str(key), ensure_ascii=False) + ": "))
                if index < len(item) - 1:
                    pending.append((True, ", "))
            stack.extend(pending)
        elif isinstance(item, (list, tuple)):
            piece = "["
            pending = [(True, "]")]
            for index, inner in enumerate(reversed(item)):
                pending.append((False, inner))
                if index < len(item) - 1:
                    pending.append((True, ", "))
            stack.extend(pending)
        else:
            if isinstance(item, str) and len(item) > limit:
                item = item[: limit + 1]  # what is past the limit is never shown
            try:
                piece = json.dumps(item, ensure_ascii=False)
            except (TypeError, ValueError):
                piece = repr(item)
        out.append(piece)
        used += len(piece)
    return safe_short("".join(out), limit)
