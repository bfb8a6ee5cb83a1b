"""The helper process of :class:`netlens.trace.process.TraceProcess`: one trace session, streamed to the parent.

Started as ``python -m netlens.trace.worker FD`` where ``FD`` is this end of a
socketpair (a :class:`multiprocessing.connection.Connection`). The parent
sends one ``("start", settings)``; this process starts a
:class:`netlens.trace.TraceSession` (tracefs instance ``<prefix>-<this pid>``,
reader thread, decoding, socket joins: all the GIL time that used to be the
app's), answers ``("ready", facts)`` or ``("unavailable", sentence)`` /
``("oserror", errno, strerror)``, then sends ``("records", batch, stats,
skipped, probes_skipped)``
messages until the parent says ``("stop",)``; with a
:class:`netlens.trace.sample.Sampling` in the settings, one sampled message
per ``every`` seconds (the skipped counts ride along).

The instance is removed whatever ends us: a stop, SIGTERM or SIGHUP, or the
parent's death (its end of the socket closes: EOF while we wait, a broken
pipe while we send, and ``getppid()`` changes). ``PR_SET_PDEATHSIG`` is not
used on purpose: it fires when the *thread* that started us ends, and the
app starts the feed from a short-lived worker thread. SIGINT is ignored (a
ctrl-c in the terminal is the parent's to handle; it stops us through the
socket). If this process is SIGKILLed itself, the parent (or the next netlens
that starts a trace) removes the instance as stale.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from netlens.trace.events import Kind
from netlens.trace.reader import TraceSession, TraceStats
from netlens.trace.sample import Sampling, sample
from netlens.trace.tracefs import TraceUnavailable

#: Records per message at most: a message is unpickled in one go by the parent's receiving thread,
#: which holds the GIL meanwhile (4,096 records take ~2 ms), so large backlogs go in slices.
BATCH = 4096


def stats_tuple(stats: TraceStats) -> tuple[int, ...]:
    """A session's counts as a plain tuple (cheap to pickle; :class:`TraceStats` field order)."""
    return dataclasses.astuple(stats)


class Worker:
    """One session and the socket to the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.parent = os.getppid()
        self.session: TraceSession | None = None
        self.sampling: Sampling | None = None
        #: SIGTERM or SIGHUP came: stop at the next turn of the loop (a flag, not an exception, so a message
        #: being sent is never cut in half).
        self.signalled = False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGHUP handler: ask the loop to stop (at most ``interval`` later)."""
        self.signalled = True

    def start(self, settings: dict[str, Any]) -> bool:
        """Start the session the parent asked for and say how it went; True when it runs."""
        self.sampling = settings["sampling"]
        # Sampling keeps the newest records of each message: the session need not decode the older bulk.
        session = TraceSession(settings["filter"], [Kind(code) for code in settings["kinds"]],
                               prefix=settings["prefix"], capacity=settings["capacity"],
                               interval=settings["interval"], mount=settings["mount"],
                               decode_newest=self.sampling.newest if self.sampling is not None else None)
        self.session = session
        try:
            session.start()
        except TraceUnavailable as exc:
            self.session = None
            self.conn.send(("unavailable", str(exc)))
            return False
        except OSError as exc:
            self.session = None
            self.conn.send(("oserror", exc.errno, exc.strerror or str(exc)))
            return False
        self.conn.send(("ready", {"path": str(session.path), "missing": session.missing,
                                  "unfiltered": session.unfiltered, "removed_stale": session.removed_stale,
                                  "clock": session.clock.trace_clock}))
        return True

    def run(self, interval: float) -> None:
        """Forward records every ``interval`` seconds (sampling's own) until told to stop, orphaned, or signalled."""
        conn, session = self.conn, self.session
        assert session is not None
        if self.sampling is not None:
            interval = self.sampling.every
        while not self.signalled and os.getppid() == self.parent and session.error is None:
            if conn.poll(interval):
                message = conn.recv()  # EOFError: the parent is gone
                if message[0] == "stop":
                    return
            self.forward()

    def forward(self) -> None:
        """Send what the session has read: sampled in one message, or everything in slices of BATCH records."""
        session = self.session
        assert session is not None
        if self.sampling is not None:
            records = session.drain_records()
            if records:
                kept = sample(records, self.sampling)
                self.conn.send(("records", kept.records, stats_tuple(session.stats), kept.skipped,
                                kept.probes_skipped))
            return
        while True:
            records = session.drain_records(BATCH)
            if not records:
                return
            self.conn.send(("records", records, stats_tuple(session.stats), 0, 0))
            if session.error is not None:
                return

    def finish(self) -> None:
        """Stop the session (removes the instance), then hand over what it read last and the final counts."""
        session = self.session
        if session is None:
            return
        stats = session.stop()
        try:
            self.forward()
            if session.error is not None:
                self.conn.send(("error", session.error))
            self.conn.send(("stopped", stats_tuple(stats)))
        except OSError:
            pass  # the parent is gone: nobody to tell


def main(argv: list[str] | None = None) -> int:
    """Serve one trace session over the socket whose descriptor is the first argument."""
    args = sys.argv[1:] if argv is None else argv
    worker = Worker(Connection(int(args[0])))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, worker.on_signal)
    signal.signal(signal.SIGHUP, worker.on_signal)
    try:
        message = worker.conn.recv()
        if message[0] != "start" or not worker.start(message[1]):
            return 0
        # From here on nothing may write to the terminal the parent draws on.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        worker.run(message[1]["interval"])
    except (EOFError, OSError):
        pass
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        worker.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
