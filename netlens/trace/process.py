"""A trace session in a helper process: the reader's GIL time leaves the app, its records come back in batches.

:class:`TraceProcess` has the consuming side of :class:`netlens.trace.TraceSession`
(``start()``, ``drain_records()``, ``drain()``, ``wait()``, ``stats``,
``error``, ``path``, ``missing``, ``unfiltered``, ``stop()``), so a consumer
swaps one for the other. The work that held the app's GIL (reading every
CPU's ring, decoding pages, the socket directory's joins: ~14 % of a busy
TUI's GIL under a search flood) runs in ``python -m netlens.trace.worker``.
Here one daemon thread only receives and unpickles record batches (C code
for the most part) into a bounded buffer; when the consumer falls
``capacity`` records behind, the oldest are discarded and counted in
``stats.dropped``, as the in-process session does. With ``sampling`` the
helper sends only what a display can use (see :mod:`netlens.trace.sample`)
and counts the rest in :attr:`TraceProcess.skipped` / ``probes_skipped``. The helper has its own
bounded buffer (the session's), whose drops it reports in the same count.

Lifetime: ``start()`` blocks until the helper said whether tracing runs, and
raises :class:`TraceUnavailable` with the helper's sentence (root, tracefs)
or ``OSError`` as the in-process session would. ``stop()`` (idempotent, also
at exit) asks the helper to stop, which removes the instance; a helper that
does not exit in time is killed and its instance removed from here. If this
process dies, however it dies, the helper sees its socket close and removes
the instance itself (see :mod:`netlens.trace.worker`).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from netlens.threadname import show_thread_name
from netlens.trace.events import Kind, TraceRecord
from netlens.trace.filters import TraceFilter
from netlens.trace.reader import DEFAULT_CAPACITY, DEFAULT_KINDS, TraceStats
from netlens.trace.records import RecordBuffer
from netlens.trace.sample import Sampling
from netlens.trace.tracefs import DEFAULT_PREFIX, TraceUnavailable, find_tracefs, remove_stale_instances

#: How long start() waits for the helper's answer (it starts Python and a trace: 0.2-0.8 s on a busy machine).
START_TIMEOUT = 15.0
#: How long stop() waits for the helper to remove its instance and exit before it kills it.
STOP_TIMEOUT = 5.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_NO_STATS = TraceStats(0, 0, 0, 0, 0, 0, 0)


def _helper_environment() -> dict[str, str]:
    """This environment, with this netlens first on the path (it may run from a checkout, not installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, env.get("PYTHONPATH"))))
    return env


class TraceProcess(RecordBuffer):
    """One live trace in a helper process: ``start()``, then ``drain_records()`` on a timer, then ``stop()``."""

    def __init__(self, trace_filter: TraceFilter | None = None, kinds: Iterable[Kind] | None = None, *,
                 prefix: str = DEFAULT_PREFIX, capacity: int = DEFAULT_CAPACITY, interval: float = 0.05,
                 mount: bool = True, sampling: Sampling | None = None) -> None:
        self.filter = trace_filter or TraceFilter()
        self.kinds = frozenset(kinds) if kinds is not None else DEFAULT_KINDS
        self.prefix = prefix
        self.capacity = capacity
        self.interval = interval
        self.mount = mount
        #: Sample in the helper (records it leaves out never cross): see :mod:`netlens.trace.sample`.
        self.sampling = sampling
        #: Records the helper's sampling left out after decoding them: tcp_probe samples thinned out, and
        #: (with :attr:`skipped`) those beyond the newest.
        self.probes_skipped = 0
        self._sampled_out = 0
        #: The helper's tracefs instance (None before start).
        self.path: Path | None = None
        self.missing: list[str] = []
        self.unfiltered: list[str] = []
        self.removed_stale: list[str] = []
        #: Why tracing stopped on its own (the helper's reader failed, or the helper died); None otherwise.
        self.error: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        super().__init__(capacity)
        self._receiver: threading.Thread | None = None
        self._stopping = False
        self._helper_stats = _NO_STATS
        self._dropped = 0  # discarded here because the consumer fell `capacity` behind
        self._received = 0
        self._stderr = b""

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> TraceProcess:
        """Start the helper and its trace; raises :class:`TraceUnavailable` (or ``OSError``) as a session would."""
        # The usual refusals (not root, no tracefs) in their own words, without starting a process for them.
        find_tracefs(self.mount)
        # Our end is not inheritable, so only the helper holds the other: when we die, it reads EOF.
        mine, theirs = socket.socketpair()
        with theirs:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "netlens.trace.worker", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, env=_helper_environment())
            except OSError as exc:
                mine.close()
                why = exc.strerror or exc
                raise TraceUnavailable(f"cannot start the kernel-trace helper process: {why}.") from None
        self._conn = Connection(mine.detach())
        atexit.register(self.stop)
        settings = {"filter": self.filter, "kinds": sorted(int(kind) for kind in self.kinds),
                    "prefix": self.prefix, "capacity": self.capacity, "interval": self.interval,
                    "mount": self.mount, "sampling": self.sampling}
        try:
            self._conn.send(("start", settings))
            answer = self._conn.recv() if self._conn.poll(START_TIMEOUT) else None
        except (EOFError, OSError):
            answer = None
        if answer is None or answer[0] != "ready":
            self._fail_to_start(answer)
        assert answer is not None
        facts: dict[str, Any] = answer[1]
        self.path = Path(facts["path"])
        self.missing, self.unfiltered = facts["missing"], facts["unfiltered"]
        self.removed_stale = facts["removed_stale"]
        self._receiver = threading.Thread(target=self._receive, name="netlens-trace-receiver", daemon=True)
        self._receiver.start()
        return self

    def _fail_to_start(self, answer: tuple[Any, ...] | None) -> None:
        """Raise what the helper said (its sentence), after making sure it is gone."""
        self.stop()
        if answer is not None and answer[0] == "unavailable":
            raise TraceUnavailable(answer[1])
        if answer is not None and answer[0] == "oserror":
            raise OSError(answer[1], answer[2])
        last = self._stderr.decode(errors="replace").strip().splitlines()
        why = f" ({last[-1]})" if last else ""
        raise TraceUnavailable(f"the kernel-trace helper process did not start{why}.")

    def stop(self) -> TraceStats:
        """Stop the helper (it removes the instance) and keep what it had read (idempotent)."""
        self._stopping = True
        conn, process = self._conn, self.process
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("stop",))
        receiver = self._receiver
        if receiver is not None and receiver is not threading.current_thread():
            receiver.join(timeout=STOP_TIMEOUT)
        if process is not None:
            self._end(process)
        if conn is not None:
            conn.close()
            self._conn = None
        atexit.unregister(self.stop)
        return self.stats

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for the helper; kill it if it hangs; remove its instance from here if it could not."""
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self.path is not None and self.path.exists():
            # The helper died without removing it (killed): the instance is stale now, removable by name.
            remove_stale_instances(self.path.parent.parent, self.prefix)
        if process.stderr is not None:
            # What it said before it started (after that its stderr is /dev/null): a failed start's reason.
            with contextlib.suppress(OSError, ValueError):
                self._stderr = process.stderr.read()[-4096:]
            process.stderr.close()

    def __enter__(self) -> TraceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the helper is alive and its records still come."""
        return self._receiver is not None and self._receiver.is_alive()

    # -- the receiving thread --------------------------------------------------------------------------

    def _receive(self) -> None:
        show_thread_name("trace-receive")
        conn = self._conn
        assert conn is not None
        try:
            while True:
                message = conn.recv()
                if message[0] == "records":
                    self._publish(*message[1:])
                elif message[0] == "error":
                    self.error = message[1]
                elif message[0] == "stopped":
                    self._helper_stats = TraceStats(*message[1])
                    if not self._stopping and self.error is None:
                        self.error = "the kernel-trace helper process was stopped by a signal"
                    return
        except Exception:  # EOF, a cut message: either way the helper is gone, which is said below
            pass
        if not self._stopping and self.error is None:
            self.error = "the kernel-trace helper process ended unexpectedly"

    def _publish(self, records: list[TraceRecord], helper_stats: tuple[int, ...], skipped: int,
                 probes_skipped: int) -> None:
        with self._lock:
            self._sampled_out += skipped
            self.probes_skipped += probes_skipped
            self._dropped += max(0, len(self._buffer) + len(records) - self.capacity)
            self._buffer.extend(records)
            self._received += len(records)
            self._helper_stats = TraceStats(*helper_stats)
            if records:
                self._ready.set()

    # -- consuming -------------------------------------------------------------------------------------

    @property
    def skipped(self) -> int:
        """Records left out under load: beyond the newest when sampled, or never decoded by the helper's session."""
        return self._sampled_out + self._helper_stats.skipped

    @property
    def stats(self) -> TraceStats:
        """The helper's counts, with the records discarded here added to ``dropped``."""
        helper = self._helper_stats
        return dataclasses.replace(helper, dropped=helper.dropped + self._dropped)
