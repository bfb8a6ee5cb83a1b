"""The status line's memory, echo and accept-queue figures (what the user set, what is used now).

Kept apart from the main screen so the figures the server and the kernel
provide are formatted in one place: the echo server's work (echoed messages,
not "requests 0"), each memory budget with its use, and the kernel's
ListenOverflows since netlens started (connections dropped because an accept
queue was full), read at most once a second.
"""

from __future__ import annotations

from rich.text import Text

from netlens.probe.counters import CounterWatch
from netlens.server import ServerStats
from netlens.ui.format import count, size

_overflows: CounterWatch | None = None


def listen_overflows() -> int:
    """TcpExt ListenOverflows in this network namespace since the first call (all listeners)."""
    global _overflows
    if _overflows is None:
        _overflows = CounterWatch("TcpExt", "ListenOverflows")
    return _overflows.delta()


def work_text(stats: ServerStats) -> str:
    """``requests 12`` for the search server, ``echoed 40 (1.7 KiB)`` for the echo server."""
    if stats.mode == "echo":
        return f"echoed {count(stats.echoed_messages)} ({size(stats.echoed_bytes)})"
    return f"requests {count(stats.requests)}"


def budget_text(stats: ServerStats, log_bytes: int, log_budget: int) -> Text:
    """``mem events 1.2/32 MiB  log 3.4/64 MiB  replies 0.1/4 MiB`` and, when any, accept-queue overflows."""
    text = Text()

    def used(label: str, held: int, budget: int) -> None:
        near = budget and held > budget * 0.9
        text.append(f"{label} {held / 2**20:.1f}/{budget / 2**20:.0f}M ", style="yellow" if near else "dim")

    text.append("mem ", style="dim")
    used("events", stats.event_bytes, stats.event_budget)
    used("log", log_bytes, log_budget)
    if stats.mode == "search":
        used("replies", stats.reply_cache_bytes, stats.reply_cache_budget)
    overflows = listen_overflows()
    if overflows:
        # The kernel counts every listener in the namespace: say so, with our backlog beside it.
        text.append(f" ListenOverflows +{count(overflows)} (any listener; backlog {stats.backlog})",
                    style="bold red")
    return text
