"""Hex dumps of frames: offset, hex bytes, printable ASCII (everything else shown as ``.``)."""

from __future__ import annotations

from typing import NamedTuple

# Only printable ASCII survives; control bytes, DEL and all high bytes become '.',
# so a dump can never carry an escape sequence to the terminal.
_ASCII = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in range(256))


class HexRow(NamedTuple):
    """One row of a hex dump."""

    offset: int
    hex: str
    ascii: str


def hexdump_rows(data: bytes, width: int = 16) -> list[HexRow]:
    """Rows of ``width`` bytes: offset, hex pairs (an extra space mid-row), ASCII column."""
    rows = []
    half = width // 2
    for offset in range(0, len(data), width):
        chunk = data[offset:offset + width]
        left, right = chunk[:half].hex(" "), chunk[half:].hex(" ")
        text = f"{left}  {right}" if right else left
        rows.append(HexRow(offset, text, "".join(_ASCII[b] for b in chunk)))
    return rows


def hexdump(data: bytes, width: int = 16) -> list[str]:
    """Text lines like ``0000  45 00 00 3c ...  E..<`` (columns aligned on the last row too)."""
    pad = width * 3 + 1
    return [f"{row.offset:04x}  {row.hex:<{pad}} {row.ascii}" for row in hexdump_rows(data, width)]
