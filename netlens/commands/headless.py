"""The headless server: the loop on its thread, every socket event printed as it happens.

Printing thousands of lines a second is most of what this command does, so it
is arranged to cost the server as little as possible:

* the loop thread formats the records itself (``after_wake``, every
  :data:`PRINT_INTERVAL` at most, so each batch is large), from raw records with
  cached, already encoded clock and description texts: no second Python thread
  competes with it for the GIL, which would make every one of its syscalls wait;
* when stdout is a regular file (``> events.log``) the loop thread also writes
  each batch itself, one ``write()`` (the page cache never waits for a reader);
* otherwise (a pipe, a terminal) a writer thread moves big encoded chunks to
  the file descriptor (no Python work, the GIL released while it writes), so a
  slow reader never blocks the loop: past :data:`WRITE_BACKLOG` bytes waiting,
  whole chunks are dropped and a line says how many events were lost;
* the main thread only waits for a signal, then stops everything.

Every line is printable and encodes under every locale (wire text is escaped
before formatting; the encoder falls back to ``\\`` escapes), and a stdout that
cannot be written (closed, ``/dev/full``) ends the command with one sentence.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from types import FrameType

from netlens.commands.kernel_printing import KernelPrinter
from netlens.display import plural
from netlens.errors import UserError
from netlens.probe.counters import CounterWatch
from netlens.server import Server, ServerConfig, ServerStats
from netlens.server.bus import EventRecord, Subscription
from netlens.server.printing import RecordFormatter

#: Encoded bytes allowed to wait for stdout before whole batches are dropped.
WRITE_BACKLOG = 16 * 1024 * 1024
#: Longest an event waits to be formatted; the loop formats a batch this often at most.
PRINT_INTERVAL = 0.002
#: How often the main thread looks at the server (it does nothing else).
WATCH_INTERVAL = 0.2
#: How often the writer thread writes what has piled up. It is never woken per
#: chunk: waking a thread on every loop wake-up costs the loop more than the write.
WRITE_INTERVAL = 0.02


class OutputError(Exception):
    """Standard output cannot be written (the reason is a sentence)."""


def stdout_fd() -> int:
    """The file descriptor of standard output, or a one-sentence :class:`UserError` if there is none."""
    stream = sys.stdout
    try:
        if stream is None:
            raise ValueError
        fd = stream.fileno()
        os.fstat(fd)
    except (ValueError, OSError, AttributeError):
        raise UserError("standard output is closed, so there is nowhere to print the events; "
                        "run without closing it (e.g. `> events.log`).") from None
    return fd


class ChunkWriter:
    """A thread that writes encoded chunks to ``fd``, bounded by bytes, never blocking the producer."""

    def __init__(self, fd: int, limit: int = WRITE_BACKLOG, direct: bool | None = None) -> None:
        self.fd = fd
        self.limit = limit
        #: Write in the caller's thread, at once: for a regular file, whose writes go to the
        #: page cache and never wait for a reader (a pipe or a terminal may; they get the thread).
        self.direct = is_regular_file(fd) if direct is None else direct
        self.pending = 0
        #: Lines not written because too much was already waiting.
        self.dropped_lines = 0
        #: Why writing stopped (None while it works).
        self.error: OutputError | None = None
        #: True when the reader went away (EPIPE): a normal end, not an error.
        self.reader_left = False
        self._chunks: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netlens-stdout", daemon=True)

    def start(self) -> ChunkWriter:
        """Start the writing thread (none when writing directly)."""
        if not self.direct:
            self._thread.start()
        return self

    @property
    def failed(self) -> bool:
        """True once writing is impossible (error or the reader left)."""
        return self.error is not None or self.reader_left

    def put(self, chunk: bytes, lines: int) -> None:
        """Queue ``chunk`` (``lines`` lines); drop it if too much is already waiting."""
        if self.failed:
            return
        if self.direct:
            self._write(chunk)
            return
        with self._lock:
            if self.pending + len(chunk) > self.limit:
                self.dropped_lines += lines
                return
            self.pending += len(chunk)
            self._chunks.append(chunk)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (at most ``timeout`` seconds), then end the thread."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            closing = self._closing.wait(WRITE_INTERVAL)
            with self._lock:
                chunk = b"".join(self._chunks)
                self._chunks.clear()
            if not chunk:
                if closing:
                    return
                continue
            try:
                self._write(chunk)
            finally:
                with self._lock:
                    self.pending -= len(chunk)
            if self.failed:
                return

    def _write(self, chunk: bytes) -> None:
        """Write all of ``chunk``; a failure is remembered (:attr:`error`, :attr:`reader_left`)."""
        try:
            _write_all(self.fd, chunk)
        except BrokenPipeError:
            self.reader_left = True
        except OSError as exc:
            self.error = OutputError(f"cannot write the events to standard output: "
                                     f"{exc.strerror or errno.errorcode.get(exc.errno or 0, exc)}.")


def is_regular_file(fd: int) -> bool:
    """True when ``fd`` is a regular file (not a pipe, socket or terminal)."""
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class EventPrinter:
    """Drains the server's events, formats them (text or JSON lines) and hands them to a writer."""

    def __init__(self, subscription: Subscription, writer: ChunkWriter, as_json: bool, encoding: str) -> None:
        self.subscription = subscription
        self.writer = writer
        self.format: Callable[[Sequence[EventRecord]], bytes] = RecordFormatter(as_json, encoding).format_bytes
        self.encoding = encoding
        self.as_json = as_json
        self.printed = 0
        #: The first failure while formatting (the loop must never die of it).
        self.error: BaseException | None = None
        # The loop thread pumps after each wake-up; the main thread at start and at the end.
        self._lock = threading.Lock()

    def pump(self) -> None:
        """Print every event since the last call (on the loop thread, or on any while it is stopped)."""
        if self.error is not None:
            return
        with self._lock:
            try:
                records = self.subscription.drain_records()
                lost = self.subscription.dropped + self.writer.dropped_lines
                if lost:
                    self.subscription.dropped = self.writer.dropped_lines = 0
                    self._emit(self._lost_line(lost), 1)
                if records:
                    self.writer.put(self.format(records), len(records))
                    self.printed += len(records)
            except Exception as exc:  # a formatting bug must not take the server down with it
                self.error = exc

    def _lost_line(self, lost: int) -> str:
        if self.as_json:
            return f'{{"event": "dropped", "count": {lost}, "reason": "output too slow"}}\n'
        return f"... {plural(lost, 'event')} dropped (output too slow)\n"

    def _emit(self, text: str, lines: int) -> None:
        self.writer.put(text.encode(self.encoding, "backslashreplace"), lines)

    def emit(self, text: str, lines: int) -> None:
        """Hand already formatted lines (the kernel's, from another thread) to the writer."""
        self._emit(text, lines)


def serve_headless(config: ServerConfig, as_json: bool = False, kernel: bool = False) -> int:
    """Run until SIGINT/SIGTERM, printing one line (or JSON object) per socket event.

    ``kernel``: also the port's kernel events (:mod:`netlens.commands.kernel_printing`),
    printed from this thread every :data:`WATCH_INTERVAL`, each with its time.
    """
    fd = stdout_fd()
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    server = Server(config)
    overflows = CounterWatch("TcpExt", "ListenOverflows", interval=0.0)
    writer = ChunkWriter(fd).start()
    printer = EventPrinter(server.subscribe(), writer, as_json, encoding)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server.after_wake = printer.pump
    server.after_wake_interval = PRINT_INTERVAL
    tracer: KernelPrinter | None = None
    # Everything imported and built so far lives as long as the command: keep it out of
    # the collector's scans (a search flood's collections cost ~3x less, measured).
    gc.freeze()
    try:
        server.start()
        printer.pump()  # "listening", published before the loop ran
        _say(budget_line(server.stats()))
        if kernel:
            tracer = KernelPrinter(server.address[1], printer.emit, as_json)
            missing = tracer.start()
            if missing:
                _say(missing)
        while not stop.wait(WATCH_INTERVAL):
            if tracer is not None:
                tracer.pump()
            if not server.running or writer.failed or printer.error is not None:
                break
    finally:
        server.stop()
        lost = tracer.stop() if tracer is not None else None
        if lost:
            _say(lost)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    server.after_wake = None
    printer.pump()  # what the last wake-ups and the stop published
    writer.close()
    _say(summary_line(server.stats(), printer.printed, overflows.delta()))
    if printer.error is not None:
        raise printer.error
    if writer.error is not None:
        raise UserError(str(writer.error), exit_code=1)
    return 0


def _say(text: str) -> None:
    """A note on stderr (which may be closed too: then nothing is said)."""
    try:
        print(f"netlens: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):
        pass


def budget_line(stats: ServerStats) -> str:
    """What the server may keep in memory, and the options that set it."""
    return (f"keeping at most {_mib(stats.event_budget)} of events (--event-buffer) and "
            f"{_mib(stats.reply_cache_budget)} of cached replies (--reply-cache); backlog {stats.backlog}.")


def summary_line(stats: ServerStats, printed: int, overflows: int = 0) -> str:
    """The end-of-run figures: work done, memory held against each budget, accept-queue overflows."""
    work = (f"{plural(stats.echoed_messages, 'message')} echoed ({plural(stats.echoed_bytes, 'byte')})"
            if stats.mode == "echo" else f"{plural(stats.requests, 'request')} answered")
    return (f"{plural(stats.accepted, 'connection')}, {work}, {plural(printed, 'event')} printed; "
            f"event buffer {_mib(stats.event_bytes)} of {_mib(stats.event_budget)}"
            + (f" ({stats.events_evicted} let go early)" if stats.events_evicted else "")
            + f", reply cache {_mib(stats.reply_cache_bytes)} of {_mib(stats.reply_cache_budget)}"
            + (f"; the kernel's ListenOverflows grew by {overflows} (any listener in this network namespace; "
               f"backlog {stats.backlog})" if overflows else "") + ".")


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
