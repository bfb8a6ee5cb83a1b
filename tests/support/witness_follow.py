"""tshark's ``-z follow,tcp,raw`` as plain data, to compare with netlens's follow view stream by stream.

tshark prints one hex line per chunk; node 1's lines are indented by a tab.
Where it gave up waiting for bytes the receiver acknowledged but the capture
never held, it inserts the text ``[N bytes missing in capture file]`` and a NUL
as if they were data. Here each direction becomes a list of items: ``bytes``
for data, ``int`` N for such a gap marker; adjacent data items are joined.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

Item = bytes | int
_MISSING = re.compile(rb"\[(\d+) bytes missing in capture file\]\x00")


def joined(items: list[Item]) -> list[Item]:
    """Adjacent data items joined into one (gap markers stay where they are)."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, bytes) and out and isinstance(out[-1], bytes):
            out[-1] += item
        elif not isinstance(item, bytes) or item:
            out.append(item)
    return out


def tshark_streams(path: Path) -> list[int]:
    """Every ``tcp.stream`` index in the file."""
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return sorted({int(line) for line in out.split()})


def tshark_follow(path: Path, streams: list[int]) -> dict[int, tuple[list[str], list[list[Item]]]]:
    """Per tshark stream index: (node addresses ``ip:port`` in tshark's order, items per node)."""
    argv = ["tshark", "-n", "-r", str(path), "-q"]
    for index in streams:
        argv += ["-z", f"follow,tcp,raw,{index}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    result: dict[int, tuple[list[str], list[list[Item]]]] = {}
    for block in out.split("Follow: tcp,raw")[1:]:
        nodes: list[str] = ["", ""]
        items: list[list[Item]] = [[], []]
        index = -1
        for line in block.splitlines():
            if line.startswith("Filter: tcp.stream eq "):
                index = int(line.rsplit(" ", 1)[1])
            elif line.startswith("Node "):
                nodes[int(line[5])] = line.split(": ", 1)[1].strip()
            elif line.strip() and not line.startswith("=") and index >= 0 and nodes[1]:
                side = 1 if line.startswith("\t") else 0
                raw = bytes.fromhex(line.strip())
                marker = _MISSING.fullmatch(raw)
                items[side].append(int(marker.group(1)) if marker else raw)
        result[index] = (nodes, [joined(items[0]), joined(items[1])])
    return result
