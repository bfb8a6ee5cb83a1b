"""The kernel's TCP counters of the calling thread's network namespace, by ``nstat``'s names.

Read from ``/proc/thread-self/net``: ``/proc/net`` follows the *process's*
main thread, while a lab's thread sits in the lab's own namespace. The
parsing is :mod:`netlens.probe.counters`'; labs name the counters as
``nstat`` prints them (``TcpExtDelayedACKs``), the names students see.
"""

from __future__ import annotations

from netlens.probe.counters import CounterError, flat, parse_counters, read_counters


def parse(text: str) -> dict[str, int]:
    """Every counter of a netstat/snmp file's text, by nstat's names."""
    return flat(parse_counters(text))


def read(root: str = "/proc/thread-self/net") -> dict[str, int]:
    """Every counter of the calling thread's namespace (empty if they cannot be read)."""
    try:
        return flat(read_counters(root))
    except CounterError:
        return {}
