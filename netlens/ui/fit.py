"""Fitting text into a width without cutting words: wrapped lines, and one-line bars that drop whole parts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text


def wrap_words(text: Text, width: int) -> list[Text]:
    """``text`` in lines of at most ``width`` cells, broken at spaces (styles kept).

    Only a single word longer than a whole line is split inside (a hex
    string, a long address): there is no other way to show it.
    """
    width = max(1, width)
    plain = text.plain
    if cell_len(plain) <= width:
        return [text]
    cuts: list[int] = []
    used = 0  # cells on the current line
    for match in re.finditer(r"(\S+)(\s*)", plain):
        word_start = match.start(1)
        word = cell_len(match.group(1))
        if used and used + word > width:
            cuts.append(word_start)
            used = 0
        while word > width:
            # A word longer than a line: split it where the line ends.
            fits = _prefix_fitting(plain, word_start, width - used)
            cuts.append(fits)
            word -= cell_len(plain[word_start:fits])
            word_start, used = fits, 0
        used += word + cell_len(match.group(2))
    lines = text.divide(cuts)
    for line in lines:
        line.rstrip()
    return list(lines)


def clip_words(text: str, width: int) -> str:
    """``text`` if it fits ``width`` cells, else its leading whole words and ``…`` (never half a word)."""
    if cell_len(text) <= width:
        return text
    cut = text[: max(1, width - 1)]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip() + "…"


def _prefix_fitting(plain: str, start: int, width: int) -> int:
    """The end of the longest run of characters from ``start`` that fits in ``width`` cells (at least one)."""
    used = 0
    end = start
    while end < len(plain) and used + cell_len(plain[end]) <= width:
        used += cell_len(plain[end])
        end += 1
    return max(end, start + 1)


def pairs(rows: Sequence[tuple[str, str | Text]], width: int, key_width: int = 14) -> Text:
    """Aligned ``key  value`` lines; a value too long for ``width`` wraps under itself, between words."""
    out = Text(no_wrap=True, overflow="crop")
    indent = " " * (key_width + 1)
    for key, value in rows:
        body = value if isinstance(value, Text) else Text(value)
        out.append(f"{key:<{key_width}} ", style="bold")
        for n, line in enumerate(wrap_words(body, width - key_width - 1)):
            if n:
                out.append("\n" + indent)
            out.append_text(line)
        out.append("\n")
    out.rstrip()
    return out


def paragraph(text: Text, width: int) -> Text:
    """``text`` wrapped at spaces into lines of ``width`` cells, joined into one Text."""
    return Text("\n", no_wrap=True, overflow="crop").join(wrap_words(text, width))


def fit_line(parts: Sequence[tuple[Text, int]], width: int, tail: Text | None = None) -> Text:
    """One line of ``parts`` (text, priority) within ``width`` cells, ``tail`` kept at the right end.

    Parts are dropped whole, lowest priority first, until the rest fits, so
    nothing is cut in the middle of a word or a number.
    """
    kept = list(range(len(parts)))
    room = width - (tail.cell_len if tail is not None else 0)
    while kept and sum(parts[i][0].cell_len for i in kept) > room:
        kept.remove(min(kept, key=lambda i: (parts[i][1], -i)))
    line = Text(no_wrap=True, overflow="crop")
    for i in kept:
        line.append_text(parts[i][0])
    if tail is not None:
        line.append(" " * max(0, room - line.cell_len))
        line.append_text(tail)
    return line
