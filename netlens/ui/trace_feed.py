"""The kernel-trace feed: tracepoints of the served port, joined per socket, for the UI to query.

No textual in here (the feeds' rule). The live feed owns one
:class:`netlens.trace.process.TraceProcess` (a trace session in a helper
process, so reading and decoding the kernel's buffers never takes the app's
GIL) filtered to the server's port and a
:class:`netlens.trace.TimelineBook`; the recorded one replays fixed events
(deterministic snapshot tests). The UI calls :meth:`KernelTraceFeed.poll` on
its timer (never one message per event), folds each sock_diag snapshot in
with :meth:`KernelTraceFeed.fold_snapshot` (TIME_WAIT and cookies come from
there), and asks :meth:`KernelTraceFeed.timeline_of` for the selected socket.

Without root or tracefs the live feed does not fail: :attr:`unavailable`
holds the one sentence saying what is missing and how to get it, and
everything else in the app works.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Iterable, Sequence

from netlens.trace import Kind, TimelineBook, TraceEvent, TraceFilter, TraceUnavailable, materialize
from netlens.trace.events import TraceRecord
from netlens.trace.process import TraceProcess
from netlens.trace.sample import Sampling, thin_probes
from netlens.trace.timeline import SocketLike, SocketTimeline

#: Kinds the events panel shows: what happened, not the per-segment tcp_probe stream (sparklines take those).
SHOWN_KINDS = frozenset({Kind.STATE, Kind.RETRANSMIT, Kind.RETRANSMIT_SYNACK, Kind.RESET_SENT,
                         Kind.RESET_RECEIVED, Kind.CONG_STATE, Kind.DROP, Kind.DESTROY})
#: Kernel events kept for queries by time (the events panel keeps its own copy).
MAX_KEPT = 50_000
#: Events built per poll at most (10 polls a second). Building one costs the UI thread tens of
#: microseconds; a search flood brings ~25 per connection, 20,000 a second, which took the keyboard's
#: time (palette p50 1.1 s against 0.24 s without tracing; at 1,000 a poll still a sixth of the UI
#: thread's time under the flood). Beyond it the newest are kept, the rest counted as skipped and
#: said in the status line.
POLL_LIMIT = 300
#: Records taken from the reader per poll (raw tuples: cheap), so a backlog never grows behind us.
DRAIN_LIMIT = 200_000
#: tcp_probe samples kept per socket per poll (10 polls a second): a sparkline needs no more, and under a
#: flood (one probe per segment) building every event would take the UI thread's time. The rest are counted.
PROBES_PER_POLL = 8


class KernelTraceFeed:
    """What the UI asks of kernel tracing; subclasses say where events come from."""

    def __init__(self) -> None:
        self.book = TimelineBook()
        #: One sentence saying why there is no kernel trace (None: it runs, or runs from a recording).
        self.unavailable: str | None = None
        self._kept: deque[TraceEvent] = deque(maxlen=MAX_KEPT)
        self._times: deque[float] = deque(maxlen=MAX_KEPT)
        self.total = 0
        #: tcp_probe samples left out (see PROBES_PER_POLL): the sparklines are sampled when this grows.
        self.probes_skipped = 0
        #: Events left out under a flood (see POLL_LIMIT): timelines may then miss transitions.
        self.skipped = 0

    # -- subclasses -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin tracing (blocking: call from a worker thread); sets :attr:`unavailable` instead of raising."""

    def _take(self) -> list[TraceEvent]:
        return []

    def stop(self) -> None:
        """Stop tracing and remove the tracefs instance (idempotent)."""

    @property
    def lost(self) -> int:
        """Events the reader could not keep (kernel buffer overwritten or consumer too slow)."""
        return 0

    # -- what the UI uses -----------------------------------------------------------------------------

    def poll(self) -> list[TraceEvent]:
        """Fold everything new into the timelines; returns the new events the events panel shows, oldest first."""
        events = self._take()
        if not events:
            return []
        self.book.add(events)
        shown = [event for event in events if event.kind in SHOWN_KINDS]
        shown.sort(key=lambda event: event.ts_ns)  # batches from several CPUs interleave
        for event in shown:
            if self._times and event.time < self._times[-1]:
                continue  # older than what is kept already (a late CPU): the panel shows it, queries skip it
            self._kept.append(event)
            self._times.append(event.time)
        self.total += len(shown)
        return shown

    def fold_snapshot(self, sockets: Iterable[SocketLike], ts: float) -> set[int]:
        """Fold a sock_diag snapshot of the port in (TIME_WAIT, cookies); returns the changed timelines."""
        return self.book.fold_sockets(sockets, ts)

    def timeline_of(self, sock: SocketLike) -> SocketTimeline | None:
        """The kernel's account of one socket the table shows: by cookie, else by 4-tuple."""
        found = self.book.by_cookie(sock.cookie) if sock.cookie is not None else None
        if found is None:
            found = self.book.by_tuple(sock.local_addr, sock.local_port, sock.remote_addr, sock.remote_port)
        return found

    def tuple_of(self, event: TraceEvent) -> tuple[str, int, str, int]:
        """The 4-tuple of the event's socket as bound (an event before the bind carries port 0)."""
        timeline = self.book.get(event.sock) if event.sock else None
        if timeline is not None and timeline.local[1]:
            return timeline.tuple
        return event.tuple

    def events_between(self, start: float, end: float) -> list[TraceEvent]:
        """Kept events with ``start <= time <= end``, oldest first."""
        times = self._times
        low = bisect.bisect_left(times, start)
        high = bisect.bisect_right(times, end)
        return [self._kept[i] for i in range(low, high)]

    def status(self) -> str:
        """A few words for the status line: event count, or why there are none."""
        if self.unavailable is not None:
            return "kernel trace off"
        lost = self.lost
        text = f"kernel events {self.total:,}" + (f" ({lost:,} lost)" if lost else "")
        if self.skipped:
            text += f" ({self.skipped:,} skipped under load)"
        return text + (f", tcp_probe sampled ({self.probes_skipped:,} skipped)" if self.probes_skipped else "")

    def thin(self, records: list[TraceRecord]) -> list[TraceEvent]:
        """Build the events of ``records``, with each socket's tcp_probe samples thinned to PROBES_PER_POLL."""
        kept, skipped = thin_probes(records, PROBES_PER_POLL)
        self.probes_skipped += skipped
        return [materialize(record) for record in kept]


class LiveTraceFeed(KernelTraceFeed):
    """Tracepoints of one port, live, from a private tracefs instance read by a helper process."""

    def __init__(self, port: int, prefix: str = "netlens") -> None:
        super().__init__()
        self.port = port
        self.prefix = prefix
        self.session: TraceProcess | None = None
        # start() runs in a worker: an app that quits meanwhile must not leave a reader running.
        self._lock = threading.Lock()
        self._stopped = False
        self._helper_skipped = (0, 0)  # the helper's sampling counts already added to ours

    def start(self) -> None:
        """Start the helper process, which creates the instance and reads it (blocking: a Python start, ~0.2-0.8 s)."""
        # The helper samples as poll() would (newest POLL_LIMIT, PROBES_PER_POLL per socket, per 0.1 s): under a
        # flood ~90 % of the records then never cross to this process (no unpickling, no draining for nothing).
        session = TraceProcess(TraceFilter.of(ports=(self.port,)), prefix=self.prefix,
                               sampling=Sampling(POLL_LIMIT, PROBES_PER_POLL, 0.1))
        try:
            session.start()
        except TraceUnavailable as exc:
            # The engine's sentence names what is missing and how to get it; here the command is this one.
            self.unavailable = "No kernel events: " + str(exc).replace("netlens trace with", "netlens with")
            return
        except OSError as exc:
            self.unavailable = (f"No kernel events: tracefs refused ({exc.strerror or exc}); "
                                "run netlens with sudo on a kernel with tracefs.")
            return
        with self._lock:
            if not self._stopped:
                self.session = session
                return
        session.stop()  # stopped while starting

    def _take(self) -> list[TraceEvent]:
        session = self.session
        if session is None:
            return []
        if session.error is not None and self.unavailable is None:
            self.unavailable = f"The kernel trace stopped: {session.error}"
        helper_skipped = (session.skipped, session.probes_skipped)
        self.skipped += helper_skipped[0] - self._helper_skipped[0]
        self.probes_skipped += helper_skipped[1] - self._helper_skipped[1]
        self._helper_skipped = helper_skipped
        records = session.drain_records(DRAIN_LIMIT)
        if len(records) > POLL_LIMIT:
            # The present matters more than a backlog: keep the newest, count the rest.
            self.skipped += len(records) - POLL_LIMIT
            records = records[-POLL_LIMIT:]
        return self.thin(records)

    @property
    def lost(self) -> int:
        """Events lost in the kernel's buffer or behind a slow consumer."""
        return self.session.stats.lost if self.session is not None else 0

    def stop(self) -> None:
        """Stop the reader and remove the instance (also when start() is still running: it stops at its end)."""
        with self._lock:
            self._stopped = True
            session = self.session
        if session is not None:
            session.stop()


class RecordedTraceFeed(KernelTraceFeed):
    """Fixed kernel events (and the snapshots to fold in), for deterministic screens and tests."""

    def __init__(self, events: Sequence[TraceEvent], snapshots: Sequence[tuple[float, Sequence[SocketLike]]] = (),
                 unavailable: str | None = None) -> None:
        super().__init__()
        self._pending = sorted(events, key=lambda event: event.ts_ns)
        self._snapshots = list(snapshots)
        self.unavailable = unavailable

    def _take(self) -> list[TraceEvent]:
        events, self._pending = self._pending, []
        return events

    def poll(self) -> list[TraceEvent]:
        """Replay the recording once: its events, then its snapshots, folded in order."""
        shown = super().poll()
        for ts, sockets in self._snapshots:
            self.fold_snapshot(sockets, ts)
        self._snapshots = []
        return shown
