"""``serve --headless --kernel``: the kernel's events of the served port, printed among the socket events.

Stdlib only (no textual): a :class:`netlens.trace.TraceSession` filtered to the
server's port, drained by whoever calls :meth:`KernelPrinter.pump`. Lines are
``netlens trace``'s, marked ``kernel``; JSON objects are ``netlens trace
--json``'s with ``"source": "kernel"``. Every line carries its wall-clock time
(the socket events' clock). ``tcp_probe`` is left out: it fires for every
segment, and the socket events already say what moved. Without root or
tracefs the server still runs and :meth:`KernelPrinter.start` returns the one
sentence saying what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from netlens.trace import DEFAULT_KINDS, Kind, TraceFilter, TraceSession, TraceUnavailable, materialize
from netlens.trace.text import line

#: Tracepoints printed: everything ``netlens trace`` shows by default but the per-segment probe.
KINDS = DEFAULT_KINDS - {Kind.PROBE}


class KernelPrinter:
    """Formats the port's kernel events and hands them to ``emit(text, lines)``."""

    def __init__(self, port: int, emit: Callable[[str, int], object], as_json: bool, prefix: str = "netlens") -> None:
        self.session = TraceSession(TraceFilter.of(ports=(port,)), KINDS, prefix=prefix)
        self.emit = emit
        self.as_json = as_json
        self.printed = 0
        self.running = False

    def start(self) -> str | None:
        """Start tracing; returns None, or the sentence saying why there will be no kernel events."""
        try:
            self.session.start()
        except TraceUnavailable as exc:
            return "no kernel events: " + str(exc).replace("netlens trace with", "netlens with")
        self.running = True
        return None

    def pump(self) -> None:
        """Print what the reader has delivered since the last call, oldest first."""
        if not self.running:
            return
        records = self.session.drain_records()
        if not records:
            return
        records.sort(key=lambda record: record[1])  # batches from several CPUs interleave
        events = [materialize(record) for record in records]
        if self.as_json:
            text = "".join(json.dumps({"source": "kernel", **event.to_dict(), "time_ns": event.ts_ns},
                                      ensure_ascii=True) + "\n" for event in events)
        else:
            text = "".join(f"kernel  {line(event)}\n" for event in events)
        self.emit(text, len(events))
        self.printed += len(events)

    def stop(self) -> str | None:
        """Stop, print what was still read, remove the instance; returns a sentence if events were lost."""
        if not self.running:
            return None
        stats = self.session.stop()
        self.pump()
        self.running = False
        if stats.lost:
            return f"{stats.lost} kernel events lost (the reader fell behind)."
        return self.session.error
