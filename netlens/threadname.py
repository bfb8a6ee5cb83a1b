"""Thread names the system can see: ``top -H``, ``ps -L`` and ``/proc/PID/task/*/comm`` show them.

CPython (before 3.14) names threads only for Python: every thread of a
netlens process shows as "python", so nobody can tell from outside which of
them (the server's loop, the capture, the analysis, the probe) uses the CPU.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

#: prctl() option that names the calling thread (linux/prctl.h); the kernel keeps 15 bytes.
_PR_SET_NAME = 15
_NAME_BYTES = 15

_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux's libc: the names stay Python's own
    _prctl = None


def show_thread_name(name: str | None = None) -> None:
    """Give the calling thread ``name`` (default: its Python name without "netlens-") at the OS level."""
    if _prctl is None:
        return
    text = name if name is not None else threading.current_thread().name.removeprefix("netlens-")
    _prctl(_PR_SET_NAME, ctypes.c_char_p(text.encode("ascii", "replace")[:_NAME_BYTES]), 0, 0, 0)
