"""The server: one selectors loop on its own thread, exactly the model the workshop teaches.

A socket is registered for READ while its protocol wants bytes and for WRITE
only while bytes wait in its send buffer, so an idle server sleeps in
``epoll_wait()`` instead of spinning. Everything the loop does is published as a
socket event (see :mod:`netlens.server.events`) on a bounded bus that never
blocks the loop. Other threads reach the sockets only through
:meth:`Server.submit` (a queue plus a wake-up byte) and read state only
through :meth:`Server.snapshot`.

The loop's parts live beside it: :mod:`~netlens.server.accepting` (accept
bursts, EMFILE), :mod:`~netlens.server.transfers` (recv, the session's outcome,
send, close), :mod:`~netlens.server.control_paths` (submitted commands), on
the state of :mod:`~netlens.server.loopstate` and the interest list of
:mod:`~netlens.server.interest`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from netlens.display import plural
from netlens.keygate import KeyGate
from netlens.server import controls as ctl
from netlens.server.accepting import Accepting
from netlens.server.binding import PortInUseError, bind_listener
from netlens.server.bus import EventBus, Subscription
from netlens.server.config import ServerConfig
from netlens.server.connection import Connection, ConnectionSnapshot, ServerStats
from netlens.server.control_paths import Completion, ControlPaths, complete
from netlens.server.events import Address, CloseCause
from netlens.server.interest import EPOLLIN, READ, WRITE, ready_mask
from netlens.server.loopstate import ERROR, LISTENER, LISTENING, STOPPED, WAKER
from netlens.server.sockets import address_of, open_reserve
from netlens.textsafe import cut
from netlens.threadname import show_thread_name

__all__ = ["PortInUseError", "Server"]


class Server(Accepting, ControlPaths):
    """The teaching server (echo or search) running its selectors loop on a thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. Binding
    happens in :meth:`start`, on the caller's thread, so a port in use is
    reported right there as :class:`PortInUseError`.
    """

    def __init__(self, config: ServerConfig | None = None, bus: EventBus | None = None) -> None:
        super().__init__(config or ServerConfig(), bus)
        #: Called on the loop thread after each wake-up's work, inside the loop's lock
        #: (keep it short). The headless printer formats its lines here: one thread
        #: doing both jobs never waits for the other to hand over the GIL.
        self.after_wake: Callable[[], None] | None = None
        #: ...at most this often: each call then takes a batch of events. While events
        #: wait for it, the loop wakes up when it is due (no event waits longer).
        self.after_wake_interval = 0.0
        #: The app's keys-first gate: the loop waits at it (briefly) while a key is being handled.
        self.key_gate: KeyGate | None = None
        self._hook_due = 0.0
        self._hook_seen = 0
        self._scan_every = self._scan_interval()

    # ----------------------------------------------------------------- public API

    def start(self) -> Server:
        """Bind, listen, and run the loop on a daemon thread. Returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._listener = bind_listener(self.config.host, self.config.port, self.config.backlog)
        self.address = address_of(self._listener.getsockname())
        self._listen_family, self._listen_proto = int(self._listener.family), self._listener.proto
        if self.address[0] not in ("0.0.0.0", "::"):
            self._fixed_local = self.address
        self._interest.register(self._listener.fileno(), READ, LISTENER)
        self._listener_registered = True
        self._interest.register(self._wake_r.fileno(), READ, WAKER)
        self._reserve_fd = open_reserve()
        self.started = time.time()
        self._emit(LISTENING, 0, self.address, self.config.mode)
        self._flush_events()
        self._thread = threading.Thread(target=self._run, name="netlens-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Close every socket and end the loop; waits at most ``timeout`` seconds."""
        self._stopping = True
        if self._thread is None:
            self._close_all_resources()
            return
        self._wake()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def subscribe(self, from_start: bool = True) -> Subscription:
        """A reader of this server's socket events."""
        return self.bus.subscribe(from_start=from_start)

    def submit(self, control: ctl.Control) -> Future[str]:
        """Run ``control`` on the loop thread; the future holds its one-sentence result."""
        future: Future[str] = Future()
        if not self.running:
            future.set_exception(ctl.ControlError("the server is not running"))
            return future
        self._controls.put((control, future))
        self._wake()
        if not self.running:
            # The loop ended between the check and the put: nobody else will answer it.
            self._fail_pending()
        return future

    def snapshot(self, conn: int | None = None, buffers: bool = True) -> list[ConnectionSnapshot]:
        """The server's view of every live connection (or just ``conn``), oldest first (thread-safe).

        The loop waits while this copies, so a caller that shows many
        connections asks for them without ``buffers``. It also waits for the
        loop's current iteration to end: call it from a worker thread, never
        from a UI's event loop.
        """
        now = time.time()
        with self._lock:
            if conn is not None:
                found = self._conns.get(conn)
                return [found.snapshot(now, buffers)] if found is not None else []
            return [c.snapshot(now, buffers) for c in self._conns.values()]

    def open_pairs(self) -> list[tuple[Address, Address]]:
        """``(local, peer)`` of every open connection (thread-safe; no snapshot of each is built)."""
        with self._lock:
            return [(conn.local, conn.peer) for conn in self._conns.values()]

    def recently_closed(self, limit: int = 100, within: float = 60.0) -> list[tuple[Address, Address]]:
        """``(local, peer)`` of the newest ``limit`` connections closed in the last ``within`` seconds, newest first.

        Where the TIME_WAIT sockets of the port may sit (the side that closed
        first holds one for 60 s on Linux), for
        :meth:`netlens.probe.Prober.snapshot_connections` (thread-safe).
        """
        since = time.time() - within
        found: list[tuple[Address, Address]] = []
        with self._lock:
            for local, peer, when in reversed(self._recent_closes):
                if when < since or len(found) >= limit:
                    break
                found.append((local, peer))
        return found

    def closes_within(self, within: float = 60.0) -> int:
        """Connections closed in the last ``within`` seconds (at most a minute; whole seconds), thread-safe.

        An estimate of the port's TIME_WAIT sockets where listing them costs
        too much: each close leaves one on the side that closed first, unless
        it was a reset, the kernel's TIME_WAIT table was full, or the peer
        reused the 4-tuple.
        """
        since = int(time.time() - within)
        with self._lock:
            return sum(count for second, count in self._closes_per_second if second > since)

    def stats(self) -> ServerStats:
        """Counters since start (thread-safe)."""
        with self._lock:
            return ServerStats(
                address=self.address,
                mode=self.config.mode,
                started=self.started,
                active=len(self._conns),
                accepted=self._accepted,
                closed=dict(self._closed_by),
                requests=self._requests,
                protocol_errors=self._protocol_errors,
                bytes_in=self._bytes_in,
                bytes_out=self._bytes_out,
                events_published=self.bus.published,
                refused_emfile=self._refused_emfile,
                echoed_messages=self._echoed,
                echoed_bytes=self._echoed_bytes,
                backlog=self.config.backlog,
                event_bytes=self.bus.bytes,
                event_budget=self.bus.budget,
                events_evicted=self.bus.evicted,
                reply_cache_bytes=self.reply_cache.bytes,
                reply_cache_budget=self.reply_cache.budget,
                deadline_closes=self._deadline_closes,
            )

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        show_thread_name("server-loop")
        wait = self._interest.wait
        targets = self._interest.targets
        on_readable = self._on_readable
        finished: list[Completion] = []
        try:
            while not self._stopping:
                gate = self.key_gate  # read each pass: the app attaches it once the loop runs
                if gate is not None:
                    gate.wait_turn()
                ready = wait(self._select_timeout())
                with self._lock:
                    for fd, flags in ready:
                        # Gone when an earlier socket of this batch closed it.
                        target = targets.get(fd)
                        if target.__class__ is Connection:
                            if flags != EPOLLIN:
                                self._service(target, ready_mask(flags))
                            elif target.mask & READ:
                                # The usual wake-up (readable, nothing else), served without
                                # _service's checks: a busy loop does this thousands of times a second.
                                try:
                                    on_readable(target)
                                except Exception as exc:  # one broken connection must never stop the loop
                                    self._serve_failed(target, exc)
                        elif target is LISTENER:
                            self._accept()
                        elif target is WAKER:
                            self._drain_wake(finished)
                    self._timers()
                if finished:
                    # Outside the lock: a future's callbacks run right here, on this thread,
                    # and one that waits for a UI which itself waits for this lock would
                    # freeze both.
                    complete(finished)
                    finished.clear()
        finally:
            with self._lock:
                self._close_all_resources()
            complete(finished)
            self._fail_pending()

    def _service(self, conn: Connection, events: int) -> None:
        try:
            if events & READ and conn.mask & READ:
                self._on_readable(conn)
            if events & WRITE and not conn.closed and conn.mask & WRITE:
                self._on_writable(conn)
        except Exception as exc:  # one broken connection must never stop the loop
            self._serve_failed(conn, exc)

    def _serve_failed(self, conn: Connection, exc: Exception) -> None:
        """Say what broke while serving ``conn`` and close it (the loop carries on)."""
        self._emit(ERROR, conn.id, "serving the connection", cut(f"{type(exc).__name__}: {exc}", 300))
        self._close(conn, CloseCause.ERROR, f"internal error: {type(exc).__name__}")

    def _scan_interval(self) -> float:
        """How often idle connections and request deadlines are checked (0: never)."""
        limits = [t for t in (self.config.idle_timeout, self._request_timeout()) if t]
        return min(1.0, min(limits) / 4) if limits else 0.0

    def _hook_wait(self) -> float | None:
        """Seconds until ``after_wake`` is due while events wait for it (None: nothing waits)."""
        if self.after_wake is None or self.bus.published == self._hook_seen:
            return None
        return max(0.0, self._hook_due - time.monotonic())

    def _select_timeout(self) -> float | None:
        hook_wait = self._hook_wait()
        if self._listener_registered:
            # The usual case, without building a list of candidates.
            if not (self._scan_every and self._conns):
                return hook_wait
            return self._scan_every if hook_wait is None or hook_wait > self._scan_every else hook_wait
        waits = [max(0.0, self._listener_resume_at - time.monotonic())]
        if hook_wait is not None:
            waits.append(hook_wait)
        if self._scan_every and self._conns:
            waits.append(self._scan_every)
        return min(waits)

    def _timers(self) -> None:
        """After each wake-up: the listener's rest after EMFILE, idle/deadline closes, then ``after_wake``."""
        self._timer_duties()
        self._flush_events()
        hook = self.after_wake
        if hook is not None:
            now = time.monotonic()
            if now >= self._hook_due:
                self._hook_due = now + self.after_wake_interval
                self._hook_seen = self.bus.published
                hook()

    def _timer_duties(self) -> None:
        if not self._listener_registered and time.monotonic() >= self._listener_resume_at:
            assert self._listener is not None
            self._interest.register(self._listener.fileno(), READ, LISTENER)
            self._listener_registered = True
        interval = self._scan_every
        if interval and self._conns:
            now = time.time()
            # Scan at most a few times per timeout, not on every wake-up.
            if now < self._next_idle_scan:
                return
            self._next_idle_scan = now + interval
            self._close_stalled(now)

    def _close_stalled(self, now: float) -> None:
        """Close connections idle longer than the idle timeout, or past their request deadline."""
        limit = self.config.idle_timeout
        for conn in list(self._conns.values()):
            # A connection the user paused is waiting on purpose, not stalled.
            if conn.paused:
                continue
            if limit and now - conn.last_activity > limit:
                self._close(conn, CloseCause.TIMEOUT,
                            f"idle timeout: no progress for {limit:g} s while {conn.session.stage}")
            elif now > conn.deadline:
                self._deadline_closes += 1
                got = conn.bytes_in
                self._close(conn, CloseCause.TIMEOUT,
                            f"request deadline: the request was not complete {self._request_timeout():g} s "
                            f"after the connection opened ({plural(got, 'byte')} received, "
                            f"{conn.session.stage})")

    # ---------------------------------------------------------------- plumbing

    def _close_all_resources(self) -> None:
        for conn in list(self._conns.values()):
            self._close(conn, CloseCause.STOP, "server stopping")
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for sock in (self._wake_r, self._wake_w):
            sock.close()
        if self._reserve_fd is not None:
            os.close(self._reserve_fd)
            self._reserve_fd = None
        self._interest.close()
        if self.started:
            self._emit(STOPPED, 0)
        self._flush_events()
