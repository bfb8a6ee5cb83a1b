"""Making sure every live lab network is torn down: normal exit, exceptions, Ctrl-C, SIGTERM, SIGHUP.

- Ctrl-C raises ``KeyboardInterrupt`` and any crash raises an exception: the
  ``with`` block's exit tears the lab down.
- SIGTERM and SIGHUP would end the process without running any Python code, so
  while a lab is live they raise ``SystemExit(128 + signal)`` in the main thread
  instead (only where no one installed a handler of their own; the previous
  handlers come back when the last lab closes). A second signal during teardown
  is ignored, so teardown is not cut short.
- ``atexit`` closes labs that are still open when the interpreter exits (a lab
  owned by a daemon thread, say).
- SIGKILL runs nothing: the relay exits by itself (its lifeline pipe closes) and
  the next lab deletes the namespaces whose owner is dead (``netns.clean_stale``).
"""

from __future__ import annotations

import atexit
import signal
import threading
from types import FrameType
from typing import Any, Protocol


class Closeable(Protocol):
    """Anything with an idempotent ``close()``: a lab network."""

    def close(self) -> None:
        """Tear everything down; safe to call more than once."""


_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_lock = threading.Lock()
_live: dict[int, Closeable] = {}
_saved_handlers: dict[int, Any] = {}
_terminating = False
_kept = False


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    global _terminating
    if _terminating:
        return  # already on our way out: let the teardown under way finish
    _terminating = True
    raise SystemExit(128 + signum)


def install_signal_handlers(keep: bool = False) -> None:
    """Turn SIGTERM/SIGHUP into ``SystemExit`` (where their handler is the default); main thread only.

    Labs call this when built on the main thread. A program that builds labs on
    worker threads (the TUI) calls it once from its main thread with
    ``keep=True``, so the handlers stay after the last lab closes.
    """
    global _kept
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; atexit still covers a normal exit
    _kept = _kept or keep
    for signum in _SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            _saved_handlers[signum] = signal.signal(signum, _raise_exit)


def _restore_handlers() -> None:
    if _kept or threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in list(_saved_handlers.items()):
        if signal.getsignal(signum) is _raise_exit:
            signal.signal(signum, previous)
        del _saved_handlers[signum]


def register(lab: Closeable) -> None:
    """Track a lab that is being built; the first one installs the signal handlers."""
    with _lock:
        first = not _live
        _live[id(lab)] = lab
    if first:
        install_signal_handlers()


def unregister(lab: Closeable) -> None:
    """Forget a lab that is fully torn down; the last one restores the previous signal handlers."""
    with _lock:
        _live.pop(id(lab), None)
        last = not _live
    if last:
        _restore_handlers()


def live_count() -> int:
    """How many labs are built and not yet torn down in this process."""
    with _lock:
        return len(_live)


@atexit.register
def close_all() -> None:
    """Tear down every lab still open (runs at interpreter exit)."""
    with _lock:
        labs = list(_live.values())
    for lab in labs:
        lab.close()
