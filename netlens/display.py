"""Plain-text forms shared by every layer's output: endpoints and wall-clock times (stdlib only)."""

from __future__ import annotations

import time


def endpoint(host: str, port: int) -> str:
    """``127.0.0.1:65432`` or ``[::1]:65432``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def clock(ts: float) -> str:
    """Local time of day of a ``time.time()`` stamp, with milliseconds: ``14:03:07.412``."""
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"
