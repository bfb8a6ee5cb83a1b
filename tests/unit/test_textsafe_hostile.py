"""Untrusted text made printable: lone surrogates, C0/C1, bidi and zero-width characters, in text and JSON."""

from __future__ import annotations

import json

from netlens.textsafe import cut, json_preview, safe_bytes, safe_json, safe_short, safe_str

HOSTILE = "a\ud800b\udc9bc\udcff\x1b[2J\x9b31m\u202eevil\u200b\u2028\ufeff\x7f"


def test_lone_surrogates_become_visible_escapes_that_always_encode() -> None:
    shown = safe_str(HOSTILE)
    assert "\\ud800" in shown and "\\udc9b" in shown and "\\udcff" in shown
    # Encodable under strict UTF-8 and even ASCII: nothing raw is left to fail or to pass through.
    shown.encode("ascii")
    # Under a C locale Python writes \udc80-\udcff as raw 0x80-0xff bytes: none may remain.
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in shown)


def test_c1_bidi_and_zero_width_are_escaped() -> None:
    shown = safe_str(HOSTILE)
    for raw, escape in (("\x9b", "\\x9b"), ("\u202e", "\\u202e"), ("\u200b", "\\u200b"),
                        ("\u2028", "\\u2028"), ("\ufeff", "\\ufeff"), ("\x7f", "\\x7f"), ("\x1b", "\\x1b")):
        assert raw not in shown and escape in shown


def test_the_fast_path_never_skips_an_unsafe_character() -> None:
    # safe_str returns str.isprintable() text untouched: each character it escapes must be unprintable.
    for code in range(0x30000):
        char = chr(code)
        shown = safe_str(char)
        if shown != char:
            assert not char.isprintable(), hex(code)
    assert all(safe_str(chr(code)) != chr(code) for code in range(0xD800, 0xE000))


def test_safe_json_keeps_meaning_and_readable_text_but_escapes_the_rest() -> None:
    value = {"value": HOSTILE, "emoji": "🐰 é", "n": 1}
    text = safe_json(value)
    assert json.loads(text) == value
    assert "🐰 é" in text
    for raw in ("\ud800", "\x9b", "\u202e", "\u200b", "\u2028", "\ufeff", "\x7f", "\x1b"):
        assert raw not in text
    assert "\\u009b" in text and "\\u202e" in text and "\\ud800" in text
    text.encode("utf-8")


def test_cutting_long_text() -> None:
    assert cut("abcdef", 4) == "abc…" and cut("abc", 4) == "abc"
    huge = "\x1b" * 100_000
    shown = safe_short(huge, 50)
    assert len(shown) <= 50 and shown.endswith("…") and "\x1b" not in shown
    assert safe_bytes(b"\xff" * 100, 10).endswith("…")


def test_json_preview_has_no_recursion_limit_and_stops_at_its_budget() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(50_000):
        child: list[object] = []
        node.append(child)
        node = child
    shown = json_preview(deep, 40)
    assert len(shown) <= 40 and shown.startswith("[[[[")
    header = {"byteorder": "little", "content-type": "\ud800\x1b", "list": [1, None, True, {"k": []}]}
    assert json_preview(header, 500) == safe_str(json.dumps(header, ensure_ascii=False))
    assert json_preview({"x": "y" * 10_000}, 30).endswith("…")
