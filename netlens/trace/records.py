"""The bounded buffer of trace records a reader fills and the app drains (in-process or from the helper)."""

from __future__ import annotations

import threading
from collections import deque

from netlens.trace.events import TraceEvent, TraceRecord, materialize


class RecordBuffer:
    """Records waiting for the consumer, oldest first; past ``capacity`` the oldest go (the owner counts them)."""

    def __init__(self, capacity: int) -> None:
        self._buffer: deque[TraceRecord] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._ready = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Block until records are waiting (True) or ``timeout`` passes (False)."""
        return self._ready.wait(timeout)

    def drain_records(self, limit: int | None = None) -> list[TraceRecord]:
        """The records that arrived since the last drain (at most ``limit``), oldest first."""
        with self._lock:
            if limit is None or limit >= len(self._buffer):
                out = list(self._buffer)
                self._buffer.clear()
            else:
                out = [self._buffer.popleft() for _ in range(limit)]
            if not self._buffer:
                self._ready.clear()
        return out

    def drain(self, limit: int | None = None) -> list[TraceEvent]:
        """Like :meth:`drain_records`, as event dataclasses."""
        return [materialize(record) for record in self.drain_records(limit)]
