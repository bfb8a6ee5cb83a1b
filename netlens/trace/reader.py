"""A trace session: a private tracefs instance, a reader thread draining it, and a bounded buffer of records.

The thread wakes every ``interval`` seconds (sooner when a CPU's buffer is
10 % full, through ``buffer_percent``), reads every CPU's
``trace_pipe_raw`` until it is empty, decodes the pages, orders the batch by
time, resolves sockets, filters, and appends the records to a buffer the
consumer drains whenever it likes (a UI on its timer, the CLI in its loop).
If the consumer falls ``capacity`` records behind, the oldest are discarded
and counted in ``stats.dropped``; events the kernel overwrote before the
thread read them are counted in ``stats.kernel_lost``.
"""

from __future__ import annotations

import atexit
import contextlib
import operator
import os
import select
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from netlens.threadname import show_thread_name
from netlens.trace import clock
from netlens.trace.decode import TRACEPOINTS, Decoder, RawEvent, build_decoder
from netlens.trace.events import Kind, TraceRecord
from netlens.trace.filters import Matcher, TraceFilter
from netlens.trace.formats import FormatError, read_format
from netlens.trace.records import RecordBuffer
from netlens.trace.ringbuf import PageLayout, parse_layout, parse_page
from netlens.trace.sockets import SocketDirectory
from netlens.trace.tracefs import DEFAULT_PREFIX, TraceInstance, TraceUnavailable, find_tracefs, remove_stale_instances

DEFAULT_CAPACITY = 1 << 17
#: Every kind but ``rcv-space``: tcp_rcv_space_adjust fires for each segment an application reads,
#: doubling a flood's event rate for little to see; ask for it by name.
DEFAULT_KINDS = frozenset(Kind) - {Kind.RCV_SPACE}
_U16 = struct.Struct("=H")
_MAX_PAGES_PER_CYCLE = 1024
#: A record located but not decoded yet: (time, offset in its page, length, page, its decoder, cpu).
_Pending = tuple[int, int, int, bytes, Decoder, int]
_TIME = operator.itemgetter(0)
_STATS_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class TraceStats:
    """What the session has seen and lost so far."""

    events: int  # records read from the kernel (after its filters)
    delivered: int  # records put in the buffer (after the user-space filter)
    filtered: int  # records the user-space filter removed
    dropped: int  # records discarded because the consumer fell `capacity` behind
    kernel_lost: int  # events the kernel overwrote before the reader got to them
    pages: int
    malformed: int  # pages that could not be parsed (skipped)
    skipped: int = 0  # records only noted, never decoded (``decode_newest``): not lost, left out by choice

    @property
    def lost(self) -> int:
        """Every event that happened and matched but never reached the consumer."""
        return self.dropped + self.kernel_lost


def _buffer_kb() -> int:
    # 32 MiB in all, 1 to 8 MiB per CPU: half a second of a 40k events/s flood on one CPU.
    return max(1024, min(8192, 32768 // max(1, os.cpu_count() or 1)))


class TraceSession(RecordBuffer):
    """One live trace: ``start()``, then ``drain()`` (or ``drain_records()``) on a timer, then ``stop()``."""

    def __init__(self, trace_filter: TraceFilter | None = None, kinds: Iterable[Kind] | None = None, *,
                 prefix: str = DEFAULT_PREFIX, capacity: int = DEFAULT_CAPACITY, interval: float = 0.05,
                 buffer_kb: int | None = None, mount: bool = True, decode_newest: int | None = None) -> None:
        self.filter = trace_filter or TraceFilter()
        self.kinds = frozenset(kinds) if kinds is not None else DEFAULT_KINDS
        self.prefix = prefix
        self.capacity = capacity
        self.interval = interval
        self.buffer_kb = buffer_kb or _buffer_kb()
        self.mount = mount
        #: Decode at most this many records per reading cycle, the newest (None: every one). A sampled
        #: consumer keeps only the newest few hundred per tenth of a second; the older bulk is only
        #: noted in the socket directory (numbers, cookies, ends) and counted in ``stats.skipped``.
        self.decode_newest = decode_newest
        self.instance: TraceInstance | None = None
        self.clock = clock.TAI
        #: Tracepoints this kernel lacks (``tcp:tcp_cong_state_set`` before 6.3...); their events never come.
        self.missing: list[str] = []
        #: Tracepoints whose kernel filter was refused (the user-space filter still applies).
        self.unfiltered: list[str] = []
        #: Stale instances of dead netlens processes removed at start.
        self.removed_stale: list[str] = []
        #: Why the reader thread stopped on its own (None while it runs or after a clean stop).
        self.error: str | None = None
        super().__init__(capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fds: list[tuple[int, int]] = []
        self._wake_r = self._wake_w = -1
        self._decoders: dict[int, Decoder] = {}
        self._layout = PageLayout()
        self._page_size = os.sysconf("SC_PAGE_SIZE")
        self._directory = SocketDirectory()
        self._matcher = Matcher(self.filter)
        self._counts = {"events": 0, "delivered": 0, "filtered": 0, "dropped": 0, "pages": 0, "malformed": 0,
                        "page_missed": 0, "kernel_stats": 0, "skipped": 0}

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> TraceSession:
        """Create and configure the instance and start the reader (raises :class:`TraceUnavailable`)."""
        root = find_tracefs(self.mount)
        self.removed_stale = remove_stale_instances(root, self.prefix)
        self.instance = TraceInstance(root, self.prefix).create()
        atexit.register(self.stop)
        try:
            self._configure(self.instance)
        except OSError as exc:
            self.stop()
            raise TraceUnavailable(f"configuring the trace instance failed: {exc.strerror or exc}.") from None
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._run, name="netlens-trace", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> TraceStats:
        """Stop the reader, deliver what it had read, and remove the instance (idempotent)."""
        self._stop.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        for _cpu, fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
        if self.instance is not None:
            self.instance.remove()
        atexit.unregister(self.stop)
        return self.stats

    def __enter__(self) -> TraceSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the reader thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def path(self) -> Path | None:
        """The instance's directory under ``tracefs/instances`` (None before start)."""
        return self.instance.path if self.instance is not None else None

    # -- consuming -------------------------------------------------------------------------------------

    @property
    def stats(self) -> TraceStats:
        """Counts so far (see :class:`TraceStats`)."""
        c = self._counts
        return TraceStats(c["events"], c["delivered"], c["filtered"], c["dropped"],
                          max(c["page_missed"], c["kernel_stats"]), c["pages"], c["malformed"], c["skipped"])

    # -- setting up ------------------------------------------------------------------------------------

    def _configure(self, instance: TraceInstance) -> None:
        self.clock = clock.choose(instance.read("trace_clock"))
        # The clock first: changing it clears the buffer.
        instance.write("trace_clock", self.clock.trace_clock)
        instance.write("buffer_size_kb", str(self.buffer_kb))
        with contextlib.suppress(OSError):  # not on every kernel; the timer wakes us anyway
            instance.write("buffer_percent", "10")
        with contextlib.suppress(OSError, ValueError):
            self._page_size = int(instance.read("buffer_subbuf_size_kb")) * 1024
        events = instance.events_dir
        try:
            self._layout = parse_layout((events / "header_page").read_text(), (events / "header_event").read_text())
        except FormatError as exc:
            raise TraceUnavailable(f"cannot read this kernel's trace buffer: {exc}.") from None
        for tracepoint in TRACEPOINTS:
            if tracepoint.kind not in self.kinds:
                continue
            try:
                fmt = read_format(events, tracepoint.system, tracepoint.name)
                self._decoders[fmt.id] = build_decoder(tracepoint.kind, fmt)
            except (OSError, FormatError):
                self.missing.append(f"{tracepoint.system}:{tracepoint.name}")
                continue
            expression = self.filter.kernel_expression(fmt)
            if expression and not instance.try_filter(tracepoint.path, expression):
                self.unfiltered.append(fmt.full_name)
            instance.write(f"events/{tracepoint.path}/enable", "1")
        if not self._decoders:
            raise TraceUnavailable("this kernel has none of the TCP tracepoints netlens reads (sock, tcp, skb).")
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        for cpu in instance.cpus():
            path = instance.path / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw"
            self._fds.append((cpu, os.open(path, os.O_RDONLY | os.O_NONBLOCK)))
        instance.write("tracing_on", "1")

    # -- the reader thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        show_thread_name("trace-reader")
        poller = select.poll()
        for _cpu, fd in self._fds:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        next_stats = 0.0
        try:
            while not self._stop.is_set():
                poller.poll(self.interval * 1000)
                self._cycle()
                if time.monotonic() >= next_stats:
                    self._read_kernel_stats()
                    next_stats = time.monotonic() + _STATS_EVERY
            self._cycle()  # what happened up to the stop
            self._read_kernel_stats()
        except Exception as exc:  # the consumer learns why through .error; the instance is still removed
            self.error = f"the trace reader stopped: {exc}"

    def _cycle(self) -> None:
        offset = self.clock.offset_ns()
        raws: list[RawEvent] = []
        pending: list[_Pending] | None = None if self.decode_newest is None else []
        for cpu, fd in self._fds:
            self._read_cpu(cpu, fd, offset, raws, pending)
        noted = self._decode_newest(pending, raws) if pending else 0
        if noted:
            self._counts["events"] += noted
            self._counts["skipped"] += noted
        if not raws:
            return
        raws.sort(key=lambda raw: raw[1])
        records, filtered = self._directory.resolve(raws, self._matcher)
        self._publish(records, len(raws), filtered)

    def _read_cpu(self, cpu: int, fd: int, offset: int, out: list[RawEvent], pending: list[_Pending] | None) -> None:
        """Read ``cpu``'s pages: records decoded into ``out``, or (decode_newest) located in ``pending``."""
        decoders = self._decoders
        unpack_type = _U16.unpack_from
        for _ in range(_MAX_PAGES_PER_CYCLE):
            try:
                page = os.read(fd, self._page_size)
            except (BlockingIOError, InterruptedError):
                return
            if not page:
                return
            self._counts["pages"] += 1
            try:
                parsed = parse_page(page, self._layout)
            except FormatError:
                self._counts["malformed"] += 1
                continue
            if parsed.missed:
                self._counts["page_missed"] += max(parsed.missed, 0)
            for ts, at, length in parsed.events:
                decoder = decoders.get(unpack_type(page, at)[0])
                if decoder is None:
                    continue
                if pending is not None:
                    pending.append((ts + offset, at, length, page, decoder, cpu))
                    continue
                raw = decoder.decode(page, at, length, ts + offset, cpu)
                if raw is not None:
                    out.append(raw)

    def _decode_newest(self, pending: list[_Pending], out: list[RawEvent]) -> int:
        """Decode the newest ``decode_newest`` of ``pending`` into ``out``, note the older; return how many were noted.

        Only an unbroken run of the oldest frequent records is noted (a rare
        record and everything after it is decoded), so every note comes before
        every decoded record in time, as :meth:`SocketDirectory.resolve` needs.
        """
        newest = self.decode_newest or 0
        cut = 0
        if len(pending) > newest:
            pending.sort(key=_TIME)
            note = self._directory.note
            for _ts, at, length, page, decoder, _cpu in pending[:len(pending) - newest]:
                if not decoder.light:
                    break
                note(*decoder.identify(page, at, length))
                cut += 1
        for ts, at, length, page, decoder, cpu in pending[cut:] if cut else pending:
            raw = decoder.decode(page, at, length, ts, cpu)
            if raw is not None:
                out.append(raw)
        return cut

    def _publish(self, records: list[TraceRecord], seen: int, filtered: int) -> None:
        with self._lock:
            overflow = max(0, len(self._buffer) + len(records) - self.capacity)
            self._buffer.extend(records)
            c = self._counts
            c["events"] += seen
            c["filtered"] += filtered
            c["delivered"] += len(records)
            c["dropped"] += overflow
            if records:
                self._ready.set()

    def _read_kernel_stats(self) -> None:
        """Sum the per-CPU ``overrun`` (overwritten) and ``dropped events`` counts of the instance."""
        if self.instance is None:
            return
        lost = 0
        for cpu, _fd in self._fds:
            try:
                text = self.instance.read(f"per_cpu/cpu{cpu}/stats")
            except OSError:
                continue
            for line in text.splitlines():
                name, _, value = line.partition(":")
                if name.strip() in ("overrun", "dropped events"):
                    with contextlib.suppress(ValueError):
                        lost += int(value)
        self._counts["kernel_stats"] = lost
