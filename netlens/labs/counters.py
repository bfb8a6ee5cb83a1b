"""The kernel's TCP counters (``nstat``'s names) of the calling thread's network namespace.

Read from ``/proc/thread-self/net``: ``/proc/net`` follows the *process's*
main thread, while a lab's thread sits in the lab's own namespace.
"""

from __future__ import annotations

from pathlib import Path

_FILES = ("netstat", "snmp")


def parse(text: str) -> dict[str, int]:
    """``{"TcpExtDelayedACKs": 3, "TcpRetransSegs": 0, ...}`` from a netstat/snmp file's text."""
    values: dict[str, int] = {}
    lines = text.splitlines()
    # The files come in pairs of lines: "Prefix: name name ..." then "Prefix: value value ...".
    for header, row in zip(lines[::2], lines[1::2], strict=False):
        prefix, _, names = header.partition(":")
        _, _, numbers = row.partition(":")
        for name, number in zip(names.split(), numbers.split(), strict=False):
            try:
                values[prefix.strip() + name] = int(number)
            except ValueError:
                continue
    return values


def read(root: str = "/proc/thread-self/net") -> dict[str, int]:
    """Every counter of both files, or {} where a file cannot be read."""
    values: dict[str, int] = {}
    for name in _FILES:
        try:
            values.update(parse((Path(root) / name).read_text(encoding="ascii")))
        except OSError:
            continue
    return values
