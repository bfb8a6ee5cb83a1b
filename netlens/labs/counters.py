"""The kernel's TCP counters of the calling thread's network namespace, by ``nstat``'s names.

Read from ``/proc/thread-self/net``: ``/proc/net`` follows the *process's*
main thread, while a lab's thread sits in the lab's own namespace. The
parsing is :mod:`netlens.impair.counters`'; labs name the counters as
``nstat`` prints them (``TcpExtDelayedACKs``), the names students see.
"""

from __future__ import annotations

from netlens.impair.counters import parse_counter_table, read_counters


def nstat_names(counters: dict[str, int]) -> dict[str, int]:
    """``{"TcpExt:DelayedACKs": 3}`` -> ``{"TcpExtDelayedACKs": 3}``."""
    return {name.replace(":", "", 1): value for name, value in counters.items()}


def parse(text: str) -> dict[str, int]:
    """Every counter of a netstat/snmp file's text, by nstat's names."""
    return nstat_names(parse_counter_table(text))


def read(root: str = "/proc/thread-self/net") -> dict[str, int]:
    """Every counter of the calling thread's namespace (files that cannot be read are skipped)."""
    try:
        return nstat_names(read_counters(root))
    except OSError:
        return {}
