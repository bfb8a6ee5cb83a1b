"""The main screen's server figures: echo work, memory budgets, the kernel's accept-queue overflows.

Kept apart from the main screen so the figures the server and the kernel
provide are formatted in one place: the echo server's work for the status
line (echoed messages, not "requests 0"), each memory budget with its use (the
events panel's subtitle: ``log 3.4/64M · ring 1.2/32M · replies 0.1/4M``, set
with ``--event-log``, ``--event-buffer``, ``--reply-cache``), and the kernel's
ListenOverflows since netlens started (connections dropped because an accept
queue was full), read at most once a second and shown when there were any;
and how long the server waited for keys (see :mod:`netlens.keygate`).
"""

from __future__ import annotations

from rich.text import Text

from netlens.keygate import KeyGate
from netlens.probe.counters import CounterWatch
from netlens.server import ServerStats
from netlens.ui.format import count, size

_overflows: CounterWatch | None = None
#: The server's total wait for keys is said from this many seconds on.
SHOWN_KEY_WAIT = 0.05


def key_wait_text(gate: KeyGate | None) -> Text:
    """How long the server gave way to keys (empty below :data:`SHOWN_KEY_WAIT`).

    Said so that gaps in its events while keys were pressed under load are not
    taken for the network's.
    """
    if gate is None or gate.paused < SHOWN_KEY_WAIT:
        return Text()
    return Text(f"  waited {gate.paused:.1f} s for keys", style="dim")


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


def memory_text(stats: ServerStats, log_bytes: int, log_budget: int) -> str:
    """``log 3.4/64M · ring 1.2/32M · replies 0.1/4M``: memory held against each budget (numbers only)."""
    parts = [f"log {_mib(log_bytes)}/{_mib(log_budget, 0)}M"]
    # A budget of 0 is unknown (a recording) or switched off: nothing to show.
    if stats.event_budget:
        parts.append(f"ring {_mib(stats.event_bytes)}/{_mib(stats.event_budget, 0)}M")
    if stats.mode == "search" and stats.reply_cache_budget:
        parts.append(f"replies {_mib(stats.reply_cache_bytes)}/{_mib(stats.reply_cache_budget, 0)}M")
    return " · ".join(parts)


def overflow_text(stats: ServerStats) -> Text:
    """The kernel's ListenOverflows since netlens started, when there were any (else empty)."""
    overflows = listen_overflows()
    if not overflows:
        return Text()
    # The kernel counts every listener in the namespace: say so, with our backlog beside it.
    return Text(f"  ListenOverflows +{count(overflows)} (any listener; backlog {stats.backlog})", style="bold red")


def _mib(n: int, digits: int = 1) -> str:
    return f"{n / 2**20:.{digits}f}"
