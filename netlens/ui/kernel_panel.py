"""The socket inspector's kernel-trace part: state timeline, lit state diagram, tcp_probe sparklines.

Plain Rich built from the trace feed's typed queries, so the inspector adds
these parts to its one text body (no extra widget, no layout pass).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from netlens.trace.timeline import SocketLike
from netlens.ui.probe_spark import probe_lines
from netlens.ui.tcp_states import PacketLike, diagram, timeline_text
from netlens.ui.trace_feed import KernelTraceFeed


def signature(feed: KernelTraceFeed | None, sock: SocketLike | None) -> object:
    """Changes whenever what :func:`trace_sections` shows for ``sock`` would (the inspector redraws then)."""
    if feed is None or sock is None:
        return None
    timeline = feed.timeline_of(sock)
    if timeline is None:
        return (feed.unavailable, sock.state)
    tw = timeline.timewait
    last_probe = timeline.probes[-1].time if timeline.probes else None
    return (feed.unavailable, sock.state, len(timeline.kernel_transitions), len(timeline.resets),
            len(timeline.retransmits), last_probe, tw and (tw.state, tw.since, tw.gone))


def trace_sections(feed: KernelTraceFeed | None, sock: SocketLike, packets: Sequence[PacketLike], now: float,
                   spark_width: int = 32) -> list[Text]:
    """The inspector's parts for ``sock``: timeline, diagram and sparklines, or why there is no trace."""
    if feed is None:
        return []
    timeline = feed.timeline_of(sock)
    parts: list[Text] = []
    if feed.unavailable is not None:
        parts.append(Text("kernel's account (tracepoints)", style="bold cyan"))
        parts.append(Text(feed.unavailable, style="yellow"))
    else:
        parts.append(timeline_text(timeline, packets, now))
    states = timeline.states if timeline is not None else []
    current = timeline.current if timeline is not None and states else sock.state
    title = Text("TCP state machine", style="bold cyan")
    title.append("  lit: states this connection went through; highlighted: now", style="dim")
    parts += [title, diagram(states, current)]
    if feed.unavailable is None:
        parts += probe_lines(timeline.probes if timeline is not None else (), spark_width)
    return parts
