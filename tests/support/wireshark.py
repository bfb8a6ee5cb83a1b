"""tshark as the witness for the stream statistics: its per-packet fields and conversation table."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from netlens.capture import PacketRing, PacketStore, PcapReader
from netlens.capture.stats import StatsTracker


def load(path: Path) -> StatsTracker:
    """Read ``path`` into a ring, analyse it and run the statistics over it."""
    reader = PcapReader(str(path))
    ring = PacketRing(linktype=reader.linktype)
    store = PacketStore(ring)
    with reader:
        for ts_ns, frame, orig_len in reader:
            ring.append(ts_ns, frame, orig_len)
    tracker = StatsTracker(ring, store)
    while store.update() or tracker.update():
        pass
    while tracker.update():
        pass
    return tracker


def fields(path: Path, *names: str, two_pass: bool = False) -> list[list[str]]:
    """One row per frame of tshark's ``-T fields`` output for ``names``.

    ``two_pass`` (``tshark -2``) gives values that depend on later packets, such as
    ``tcp.completeness``, their final value; in one pass they hold what was known so far.
    """
    passes = ["-2"] if two_pass else []
    out = subprocess.run(["tshark", "-n", *passes, "-r", str(path), "-T", "fields", *(f"-e{name}" for name in names)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [(line.split("\t") + [""] * len(names))[:len(names)] for line in out.splitlines()]


def conversation_frames(path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """``tshark -z conv,tcp``: (A, B) endpoints -> (frames B→A, frames A→B)."""
    out = subprocess.run(["tshark", "-n", "-q", "-r", str(path), "-z", "conv,tcp"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    table = {}
    for line in out.splitlines():
        match = re.match(r"(\S+)\s+<->\s+(\S+)\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s", line)
        if match:
            table[(match[1], match[2])] = (int(match[3]), int(match[4]))
    return table
