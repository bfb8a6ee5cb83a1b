"""The kernel's own account of TCP: state changes, retransmissions, resets, drops (docs to come)."""

from __future__ import annotations

from netlens.trace.events import Kind, TraceEvent, TraceRecord, materialize
from netlens.trace.filters import TraceFilter
from netlens.trace.reader import TraceSession, TraceStats
from netlens.trace.tracefs import TraceUnavailable

__all__ = ["Kind", "TraceEvent", "TraceFilter", "TraceRecord", "TraceSession", "TraceStats", "TraceUnavailable",
           "materialize"]
