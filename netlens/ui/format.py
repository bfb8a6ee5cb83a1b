"""Turning numbers and wire bytes into Rich text for the panels.

Everything that came off the network goes through :mod:`netlens.textsafe`
and into :class:`rich.text.Text` objects, never into markup strings, so a
search value like ``[bold red]x[/]`` or ``\\x1b[2J`` shows as those characters.
"""

from __future__ import annotations

from rich.text import Text

from netlens.capture.hexdump import hexdump_rows
from netlens.textsafe import safe_bytes, safe_str


def size(n: int | None) -> str:
    """``1.5 KiB``-style byte count; ``-`` when unknown."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def count(n: int | None) -> str:
    """An integer with thousands separators; ``-`` when unknown."""
    return "-" if n is None else f"{n:,}"


def duration(seconds: float | None) -> str:
    """A short age: ``850ms``, ``12s``, ``3m05s``, ``2h01m``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def micros(us: int | None) -> str:
    """Microseconds as ``0.052 ms`` / ``200 ms``; ``-`` when unknown."""
    if us is None:
        return "-"
    ms = us / 1000
    return f"{ms:.3f} ms" if ms < 10 else f"{ms:.0f} ms"


def wire(value: bytes | str, limit: int = 200, style: str = "") -> Text:
    """Untrusted bytes or text as a harmless :class:`Text` (escaped, never markup)."""
    if isinstance(value, bytes):
        return Text(safe_bytes(value, limit), style=style)
    text = safe_str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text, style=style)


def hexdump(data: bytes, width: int = 16, limit: int = 4096) -> Text:
    """Offset, hex bytes and printable ASCII, ``width`` bytes a line (like Wireshark's bytes pane)."""
    out = Text(no_wrap=True)
    pad = width * 3 + (1 if width > 8 else -1)
    for row in hexdump_rows(data[:limit], width):
        out.append(f"{row.offset:04x} ", style="dim")
        out.append(f"{row.hex:<{pad}} ")
        out.append(row.ascii, style="cyan")
        out.append("\n")
    if len(data) > limit:
        out.append(f"… {len(data) - limit:,} more bytes\n", style="dim")
    if not data:
        out.append("(empty)\n", style="dim")
    out.rstrip()
    return out


def pairs(rows: list[tuple[str, str | Text]], key_width: int = 14) -> Text:
    """Aligned ``key  value`` lines, one per row (keys are ours; values already safe).

    Plain lines, not a table: the inspector redraws them twice a second and
    a Rich table costs a measuring pass and a layout each time.
    """
    out = Text(no_wrap=True, overflow="ellipsis")
    for key, value in rows:
        out.append(f"{key:<{key_width}} ", style="bold")
        out.append_text(value if isinstance(value, Text) else Text(value))
        out.append("\n")
    out.rstrip()
    return out
