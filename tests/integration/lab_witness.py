"""Outside witnesses for the lab tests: tshark on a lab's pcap, ss and nstat inside its namespace,
and a census of everything a lab could leave behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TRACEFS = Path("/sys/kernel/tracing/instances")


def tshark(pcap: Path, display_filter: str, fields: tuple[str, ...] = ("frame.number",)) -> list[list[str]]:
    """Rows of ``fields`` for each packet of ``pcap`` that matches ``display_filter``."""
    argv = ["tshark", "-r", str(pcap), "-Y", display_filter, "-T", "fields"]
    for name in fields:
        argv += ["-e", name]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return [line.split("\t") for line in done.stdout.splitlines() if line.strip()]


def nstat_value(text: str, name: str) -> int:
    """The value of counter ``name`` in ``nstat -az`` output (0 if absent)."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return int(parts[1])
    return 0


def _lines(argv: list[str]) -> set[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return {line.strip() for line in done.stdout.splitlines() if line.strip()}


def census() -> dict[str, set[str]]:
    """What exists now that a lab could leave behind: namespaces, links, nft tables, qdiscs, tracefs instances."""
    instances = {p.name for p in TRACEFS.iterdir()} if TRACEFS.is_dir() else set()
    return {
        "netns": _lines(["ip", "netns", "list"]),
        "links": {line.split(":")[1].strip() for line in _lines(["ip", "-o", "link"]) if ":" in line},
        "nft": _lines(["nft", "list", "tables"]),
        "qdisc": {q for q in _lines(["tc", "qdisc", "show"]) if " dev lo " not in q},
        "tracefs": instances,
        "fds": {str(len(os.listdir("/proc/self/fd")))},
        # Every thread of this process back in its own namespace (a lab's threads have ended).
        "thread_netns": {os.readlink(f"/proc/self/task/{tid}/ns/net") for tid in os.listdir("/proc/self/task")},
    }


def left_behind(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, set[str]]:
    """What appeared between two censuses and names this process (others share the machine), plus fd growth.

    Everything a lab creates by name carries the pid of the process that made it.
    """
    pid = str(os.getpid())
    grown = {key: {item for item in after[key] - before[key] if pid in item}
             for key in after if key not in ("fds", "thread_netns")}
    extra = {key: items for key, items in grown.items() if items}
    if int(next(iter(after["fds"]))) > int(next(iter(before["fds"]))) + 2:
        extra["fds"] = after["fds"]
    if after["thread_netns"] != before["thread_netns"]:
        extra["thread_netns"] = after["thread_netns"]
    return extra
