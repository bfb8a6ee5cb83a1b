"""cwnd / srtt / send window of one connection as text sparklines, fed by ``tcp:tcp_probe``.

Plain Rich (one line per series, eight block heights), so the socket
inspector draws them inside its one text body with no extra widget and no
plotting library. ``tcp_probe`` fires once per segment received on an
established socket; the last ``width`` samples are drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text

from netlens.trace.text import INFINITE_SSTHRESH
from netlens.trace.timeline import ProbeSample
from netlens.ui.format import micros, size

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters, scaled from the smallest to the largest shown."""
    shown = list(values)[-width:]
    if not shown:
        return ""
    low, high = min(shown), max(shown)
    if high == low:
        return BLOCKS[len(BLOCKS) // 2 if high else 0] * len(shown)
    scale = (len(BLOCKS) - 1) / (high - low)
    return "".join(BLOCKS[round((value - low) * scale)] for value in shown)


def probe_lines(samples: Iterable[ProbeSample], width: int = 32) -> list[Text]:
    """Title and three sparklines (cwnd, srtt, peer's window) with the latest values; a hint when empty."""
    recent = list(samples)[-width:]
    title = Text("tcp_probe: cwnd / srtt / send window", style="bold cyan")
    if not recent:
        return [title, Text("no samples yet (tcp_probe fires for each segment an established socket receives)",
                            style="dim")]
    last = recent[-1]
    ssthresh = "∞" if last.ssthresh >= INFINITE_SSTHRESH else str(last.ssthresh)
    span = recent[-1].time - recent[0].time
    title.append(f"  last {len(recent)} samples over {span:.2f} s", style="dim")
    series: list[tuple[str, list[float], str, str]] = [
        ("cwnd", [s.cwnd for s in recent], f"{last.cwnd} segments (ssthresh {ssthresh})", "green"),
        ("srtt", [s.srtt_us for s in recent], micros(last.srtt_us), "yellow"),
        ("snd_wnd", [s.snd_wnd for s in recent], size(last.snd_wnd), "blue"),
    ]
    lines = [title]
    for label, values, latest, style in series:
        line = Text(no_wrap=True)
        line.append(f" {label:<8}", style="bold")
        line.append(f"{latest:<26}")
        line.append(sparkline(values, width), style=style)
        lines.append(line)
    return lines
