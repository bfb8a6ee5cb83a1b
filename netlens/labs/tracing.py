"""The kernel-trace engine seen from a lab: started for the run, its events collected at the end.

Tracepoints are global (every namespace's sockets report to the same
tracefs), so a lab's trace keeps only events between the lab's own
addresses: each loopback lab talks over its own 127.x.y.z address, each
two-namespace lab over its own subnet. Without tracefs (or without the
engine's support) the lab still runs; checks that need kernel events say
what was missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from netlens.labs.evidence import Evidence
from netlens.trace import TraceFilter, TraceSession, TraceUnavailable

#: The reader delivers every ``interval``; wait a little more than that before the last drain.
_LAST_EVENTS = 0.12


class LabTracer:
    """A running trace session whose events end up in ``evidence.trace``."""

    def __init__(self, session: TraceSession, evidence: Evidence) -> None:
        self.session = session
        self._evidence = evidence

    def collect(self) -> None:
        """Stop the reader and move everything it recorded into the evidence."""
        time.sleep(_LAST_EVENTS)
        self._evidence.trace.extend(self.session.drain())
        stats = self.session.stop()
        self._evidence.trace.extend(self.session.drain())
        if stats.lost:
            self._evidence.notes.append(f"the kernel trace lost {stats.lost} events (buffer overrun).")

    def drain_live(self) -> None:
        """Move the events recorded so far into the evidence (a live view calls this on a timer)."""
        self._evidence.trace.extend(self.session.drain())

    def close(self) -> None:
        """Stop the engine and remove its tracefs instance (idempotent)."""
        self.session.stop()


def start(addresses: Iterable[str], evidence: Evidence) -> LabTracer | None:
    """Trace TCP events between ``addresses``, or None (with a note in ``evidence``) when tracing is unavailable."""
    session = TraceSession(TraceFilter.of(addresses=tuple(addresses)), interval=0.05)
    try:
        session.start()
    except TraceUnavailable as exc:
        evidence.notes.append(f"no kernel trace events: {exc}")
        return None
    return LabTracer(session, evidence)
