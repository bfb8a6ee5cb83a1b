"""The kernel-trace engine seen from a lab: start it for the run, collect its events at the end.

The engine (``netlens.trace``) is optional: without it, or without tracefs,
a lab still runs and checks that need kernel events say what was missing.
"""

from __future__ import annotations

from typing import Any

from netlens.labs.evidence import Evidence
from netlens.labs.model import Lab


class LabTracer:
    """A running trace session whose events end up in ``evidence.trace``."""

    def __init__(self, session: Any, evidence: Evidence) -> None:
        self._session = session
        self._evidence = evidence

    def collect(self) -> None:
        """Move the events recorded so far into the evidence."""
        self._evidence.trace.extend(self._session.drain())

    def close(self) -> None:
        """Stop the engine and remove its tracefs instance (idempotent)."""
        self._session.stop()


def start(lab: Lab, evidence: Evidence) -> LabTracer | None:
    """Start tracing for ``lab``, or None (with a note in ``evidence``) when the engine is missing."""
    try:
        import netlens.trace as engine  # noqa: F401
    except ImportError:
        evidence.notes.append("no kernel trace events: the trace engine (netlens.trace) is not installed.")
        return None
    evidence.notes.append("no kernel trace events: the lab runner does not drive the trace engine yet.")
    return None
