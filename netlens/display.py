"""Plain-text forms shared by every layer's output: endpoints and wall-clock times (stdlib only)."""

from __future__ import annotations

import time


def endpoint(host: str, port: int) -> str:
    """``127.0.0.1:65432`` or ``[::1]:65432``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


#: (whole second, its "HH:MM:SS" text): event lines come thousands a second, and
#: formatting the local time of day is most of what a line costs; one entry is
#: enough because stamps arrive in order. One tuple, so threads never see half of it.
_last_second: tuple[int, str] = (-1, "")


def clock(ts: float) -> str:
    """Local time of day of a ``time.time()`` stamp, with milliseconds: ``14:03:07.412``."""
    global _last_second
    ms = int(ts * 1000)
    second = ms // 1000
    cached = _last_second
    if cached[0] == second:
        prefix = cached[1]
    else:
        prefix = time.strftime("%H:%M:%S", time.localtime(second))
        _last_second = (second, prefix)
    return f"{prefix}.{ms % 1000:03d}"


def plural(n: int, unit: str) -> str:
    """``1 byte``, ``0 bytes``, ``2 bytes``: English plural rules for a count and its unit."""
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
