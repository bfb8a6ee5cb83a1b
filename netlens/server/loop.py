"""The server: one ``selectors`` loop on its own thread, exactly the model the workshop teaches.

A socket is registered for READ while its protocol wants bytes and for WRITE
only while bytes wait in its send buffer, so an idle server sleeps in
``select()`` instead of spinning. Everything the loop does is published as a
socket event (see :mod:`netlens.server.events`) on a bounded bus that never
blocks the loop. Other threads reach the sockets only through
:meth:`Server.submit` (a queue plus a wake-up byte) and read state only
through :meth:`Server.snapshot`.
"""

from __future__ import annotations

import errno
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from netlens.display import endpoint, plural
from netlens.errors import UserError
from netlens.proto import ReplyCache
from netlens.server import controls as ctl
from netlens.server.bus import EventBus, Subscription
from netlens.server.config import ServerConfig
from netlens.server.connection import SNAPSHOT_BYTES, Connection, ConnectionSnapshot, ServerStats
from netlens.server.events import (
    EVENT_CODES,
    RECORD_DATA_BYTES,
    Accepted,
    Address,
    CloseCause,
    Closed,
    ControlApplied,
    ErrorEvent,
    Listening,
    MaskChanged,
    PeerShutdown,
    Received,
    ResponseQueued,
    Sent,
    StageReached,
    Stopped,
)
from netlens.server.sessions import EchoSession, Outcome, SearchSession, Session
from netlens.server.sockets import address_of, cookie_of, open_reserve, reset_close, unread_bytes
from netlens.textsafe import cut

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
#: Connections accepted per wake-up at most, so an accept flood cannot starve
#: the connections already open.
ACCEPT_BURST = 64
#: How long the listener rests after running out of file descriptors.
EMFILE_PAUSE = 0.1

#: A control's future and what it came to: the one-sentence result, or the error.
Completion = tuple[Future[str], "str | ctl.ControlError"]

_LISTENER = object()
_WAKER = object()


class PortInUseError(UserError):
    """The address is taken by another socket (exit code 2)."""


class Server:
    """The teaching server (echo or search) running its selectors loop on a thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. Binding
    happens in :meth:`start`, on the caller's thread, so a port in use is
    reported right there as :class:`PortInUseError`.
    """

    def __init__(self, config: ServerConfig | None = None, bus: EventBus | None = None) -> None:
        self.config = config or ServerConfig()
        self.bus = bus or EventBus(self.config.event_capacity, self.config.event_budget)
        #: Encoded search replies by request, bounded by bytes (owned by the loop thread).
        self.reply_cache = ReplyCache(self.config.reply_cache_bytes)
        self._publish = self.config.publish_events
        self._sel = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._listener_registered = False
        self._listener_resume_at = 0.0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._controls: queue.SimpleQueue[tuple[ctl.Control, Future[str]]] = queue.SimpleQueue()
        self._conns: dict[int, Connection] = {}
        self._next_id = 1
        # Held by the loop while it mutates state, and by snapshot() while it copies.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._reserve_fd: int | None = None
        self.address: Address = (self.config.host, self.config.port)
        self.started = 0.0
        self._accepted = 0
        self._closed_by: dict[str, int] = {}
        self._requests = 0
        self._protocol_errors = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._refused_emfile = 0
        self._echoed = 0
        self._echoed_bytes = 0
        self._deadline_closes = 0
        self._next_idle_scan = 0.0
        # With a specific listen address every accepted socket has it as its
        # local address, which saves a getsockname() per connection.
        self._fixed_local: Address | None = None
        #: Called on the loop thread after each wake-up's work, inside the loop's lock
        #: (keep it short). The headless printer formats its lines here: one thread
        #: doing both jobs never waits for the other to hand over the GIL.
        self.after_wake: Callable[[], None] | None = None
        #: ...at most this often: each call then takes a batch of events. While events
        #: wait for it, the loop wakes up when it is due (no event waits longer).
        self.after_wake_interval = 0.0
        self._hook_due = 0.0
        self._hook_seen = 0
        self._scan_every = self._scan_interval()

    # ----------------------------------------------------------------- public API

    def start(self) -> Server:
        """Bind, listen, and run the loop on a daemon thread. Returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._listener = self._bind()
        self.address = address_of(self._listener.getsockname())
        if self.address[0] not in ("0.0.0.0", "::"):
            self._fixed_local = self.address
        self._sel.register(self._listener, READ, _LISTENER)
        self._listener_registered = True
        self._sel.register(self._wake_r, READ, _WAKER)
        self._reserve_fd = open_reserve()
        self.started = time.time()
        self._emit(Listening, 0, self.address, self.config.mode)
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

    # ------------------------------------------------------------------ the loop

    def _bind(self) -> socket.socket:
        host, port = self.config.host, self.config.port
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise UserError(f"cannot listen on {host!r}: {exc.strerror}.", exit_code=2) from None
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # Restarting a server whose last connections sit in TIME_WAIT must not fail.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(self.config.backlog)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            where = endpoint(str(sockaddr[0]), port)
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"{where} is already in use by another program; pick another port with --port "
                    f"(or --port 0 for any free one).", exit_code=2) from None
            if exc.errno == errno.EACCES:
                raise UserError(f"permission denied to listen on {where}; ports below 1024 need root.",
                                exit_code=2) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UserError(f"{host} is not an address of this machine.", exit_code=2) from None
            raise UserError(f"cannot listen on {where}: {exc.strerror}.", exit_code=2) from None
        return sock

    def _run(self) -> None:
        select = self._sel.select
        finished: list[Completion] = []
        try:
            while not self._stopping:
                ready = select(self._select_timeout())
                with self._lock:
                    for key, events in ready:
                        data = key.data
                        if data is _LISTENER:
                            self._accept()
                        elif data is _WAKER:
                            self._drain_wake(finished)
                        else:
                            self._service(data, events)
                    self._timers()
                if finished:
                    # Outside the lock: a future's callbacks run right here, on this thread,
                    # and one that waits for a UI which itself waits for this lock would
                    # freeze both.
                    _complete(finished)
                    finished.clear()
        finally:
            with self._lock:
                self._close_all_resources()
            _complete(finished)
            self._fail_pending()

    def _service(self, conn: Connection, events: int) -> None:
        try:
            if events & READ and conn.mask & READ:
                self._on_readable(conn)
            if events & WRITE and not conn.closed and conn.mask & WRITE:
                self._on_writable(conn)
        except Exception as exc:  # one broken connection must never stop the loop
            self._emit(ErrorEvent, conn.id, "serving the connection", cut(f"{type(exc).__name__}: {exc}", 300))
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

    def _request_timeout(self) -> float:
        return self.config.request_timeout if self.config.mode == "search" else 0.0

    def _select_timeout(self) -> float | None:
        waits = []
        interval = self._scan_every
        hook_wait = self._hook_wait()
        if hook_wait is not None:
            waits.append(hook_wait)
        if interval and self._conns:
            waits.append(interval)
        if not self._listener_registered:
            waits.append(max(0.0, self._listener_resume_at - time.monotonic()))
        return min(waits) if waits else None

    def _timers(self) -> None:
        """After each wake-up: the listener's rest after EMFILE, idle/deadline closes, then ``after_wake``."""
        self._timer_duties()
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
            self._sel.register(self._listener, READ, _LISTENER)
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

    # ----------------------------------------------------------------- accepting

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(ACCEPT_BURST):
            try:
                sock, raw_peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._out_of_descriptors(exc)
                elif exc.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    self._emit(ErrorEvent, 0, "accept", exc.strerror or str(exc))
                return
            sock.setblocking(False)
            now = time.time()
            local = self._fixed_local or address_of(sock.getsockname())
            conn = Connection(self._next_id, sock, address_of(raw_peer), local, self._new_session(), now,
                              cookie_of(sock))
            deadline = self._request_timeout()
            if deadline:
                conn.deadline = now + deadline
            self._next_id += 1
            self._accepted += 1
            self._conns[conn.id] = conn
            self._emit(Accepted, conn.id, conn.peer, conn.local, conn.cookie)
            self._update_mask(conn)

    def _new_session(self) -> Session:
        if self.config.mode == "echo":
            return EchoSession()
        return SearchSession(self.config.max_content_length, self.reply_cache if self.reply_cache.budget else None)

    def _out_of_descriptors(self, exc: OSError) -> None:
        """Survive EMFILE: shed the waiting connection instead of spinning on it.

        The listener stays readable while connections wait, so ignoring the
        error would spin. A spare descriptor is released to accept-and-close
        one connection, and the listener rests briefly.
        """
        assert self._listener is not None
        if self._reserve_fd is not None:
            os.close(self._reserve_fd)
            self._reserve_fd = None
            try:
                shed, _ = self._listener.accept()
                reset_close(shed)
                self._refused_emfile += 1
            except OSError:
                pass
            self._reserve_fd = open_reserve()
        self._emit(ErrorEvent, 0, "accept",
                   f"out of file descriptors ({errno.errorcode.get(exc.errno or 0, exc.errno)}); "
                   f"refusing connections for {EMFILE_PAUSE:g} s (raise the limit with ulimit -n)")
        self._sel.unregister(self._listener)
        self._listener_registered = False
        self._listener_resume_at = time.monotonic() + EMFILE_PAUSE

    # --------------------------------------------------------------- reading/writing

    def _on_readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(self.config.recv_size)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            self._close(conn, CloseCause.RESET, "connection reset by peer")
            return
        except OSError as exc:
            self._close(conn, CloseCause.ERROR, f"recv failed: {exc.strerror or exc}")
            return
        conn.last_activity = time.time()
        if not data:
            conn.reading = False
            outcome = conn.session.on_eof()
            if not outcome.close_now and (conn.outbox or not outcome.close_after_reply):
                self._emit(PeerShutdown, conn.id)
            self._apply(conn, outcome)
            return
        n = len(data)
        conn.bytes_in += n
        conn.recv_calls += 1
        # Events and the inspector keep what a screen shows, not every chunk's 64 KiB.
        conn.last_in = data if n <= SNAPSHOT_BYTES else data[:SNAPSHOT_BYTES]
        self._bytes_in += n
        self._emit(Received, conn.id, n, data if n <= RECORD_DATA_BYTES else data[:RECORD_DATA_BYTES])
        if conn.session.mode == "echo":
            self._echo(conn, data)
            return
        self._apply(conn, conn.session.on_data(data))

    def _echo(self, conn: Connection, data: bytes) -> None:
        """Echo mode's whole job (what EchoSession.on_data says), without building an Outcome."""
        if conn.write_shut:
            conn.unechoed += len(data)
            return
        self._echoed += 1
        self._echoed_bytes += len(data)
        if conn.outbox:
            # Earlier bytes still wait for the socket to be writable: these queue behind
            # them, and past the echo buffer limit the mask stops reading this peer.
            conn.outbox += data
            self._update_mask(conn)
            return
        # Send at once: usually the kernel takes it all and WRITE interest is never needed.
        n = self._send(conn, data)
        if n is None:
            return
        if n:
            conn.bytes_out += n
            conn.send_calls += 1
            self._bytes_out += n
            self._emit(Sent, conn.id, n, len(data) - n)
        if n < len(data):
            conn.outbox += memoryview(data)[n:]
            self._update_mask(conn)

    def _apply(self, conn: Connection, outcome: Outcome) -> None:
        cid = conn.id
        for stage, detail in outcome.stages:
            self._emit(StageReached, cid, stage, detail)
        if outcome.error is not None:
            self._protocol_errors += 1
            self._emit(ErrorEvent, cid, "protocol", outcome.error)
        if outcome.close_now:
            self._close(conn, outcome.cause, outcome.reason)
            return
        echo = conn.session.mode == "echo"
        reply = outcome.reply
        if reply is not None:
            if conn.write_shut:
                conn.unechoed += len(reply)
            else:
                conn.outbox += reply
                if echo:
                    self._echoed += 1
                    self._echoed_bytes += len(reply)
                elif outcome.summary is not None:
                    self._requests += 1
                    conn.deadline = float("inf")
                    self._emit(ResponseQueued, cid, len(reply), outcome.summary)
        if outcome.stop_reading:
            conn.reading = False
        if outcome.close_after_reply:
            conn.close_after_flush = True
            conn.close_cause = outcome.cause
            conn.close_reason = outcome.reason
            if echo:
                conn.close_reason += (f"; {plural(conn.unechoed, 'byte')} could not be echoed "
                                      f"(our sending side was shut down)" if conn.unechoed else "; echo flushed")
            if not conn.outbox:
                self._close(conn, outcome.cause, conn.close_reason)
                return
        if conn.outbox and echo and not conn.mask & WRITE:
            # Echo sends at once: usually the kernel takes it all and WRITE interest is
            # never needed; only what it cannot take waits for the socket to be writable.
            # (Search mode keeps the reference's visible READ -> WRITE switch.)
            self._on_writable(conn)
            return
        self._update_mask(conn)

    def _send(self, conn: Connection, data: bytes | bytearray) -> int | None:
        """``send()`` what the kernel takes: bytes sent (0 if none), None if that closed the connection."""
        try:
            return conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except (BrokenPipeError, ConnectionResetError):
            self._close(conn, CloseCause.RESET, "connection reset by peer while sending")
        except OSError as exc:
            self._close(conn, CloseCause.ERROR, f"send failed: {exc.strerror or exc}")
        return None

    def _on_writable(self, conn: Connection) -> None:
        n = self._send(conn, conn.outbox)
        if not n:
            return
        # Deleting from the front of a bytearray is O(1) in CPython.
        del conn.outbox[:n]
        conn.bytes_out += n
        conn.send_calls += 1
        conn.last_activity = time.time()
        self._bytes_out += n
        self._emit(Sent, conn.id, n, len(conn.outbox))
        if not conn.outbox:
            if conn.close_after_flush:
                self._close(conn, conn.close_cause, conn.close_reason)
                return
            if conn.shutdown_after_flush:
                self._shutdown_write(conn)
        # Also re-enables reading once an echo backlog drains below its limit.
        self._update_mask(conn)

    def _update_mask(self, conn: Connection) -> None:
        """Register exactly the interest the connection has now (never WRITE with nothing to send)."""
        want = 0
        # Echo backpressure: stop reading a peer that does not read its echoes.
        backlogged = conn.session.mode == "echo" and len(conn.outbox) > self.config.echo_buffer_limit
        if conn.reading and not conn.paused and not backlogged:
            want = READ
        if conn.outbox:
            want |= WRITE
        old = conn.mask
        if want == old:
            return
        if old == 0:
            self._sel.register(conn.sock, want, conn)
        elif want == 0:
            self._sel.unregister(conn.sock)
        else:
            self._sel.modify(conn.sock, want, conn)
        conn.mask = want
        self._emit(MaskChanged, conn.id, old, want)

    def _close(self, conn: Connection, cause: CloseCause, reason: str, abort: bool = False) -> None:
        """Close once (idempotent); ``abort`` sends RST instead of FIN."""
        if conn.closed:
            return
        conn.closed = True
        if conn.mask:
            try:
                self._sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.mask = 0
        if abort:
            reset_close(conn.sock)
        else:
            # close() with unread bytes in the receive queue sends RST, not FIN (RFC 2525).
            unread = unread_bytes(conn.sock)
            if unread:
                reason += f"; RST sent, not FIN: {plural(unread, 'byte')} left unread in the receive queue"
            conn.sock.close()
        self._conns.pop(conn.id, None)
        self._closed_by[cause.value] = self._closed_by.get(cause.value, 0) + 1
        self._emit(Closed, conn.id, cause.value, reason)

    def _shutdown_write(self, conn: Connection) -> None:
        conn.shutdown_after_flush = False
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.write_shut = True
        except OSError as exc:
            self._emit(ErrorEvent, conn.id, "shutdown", exc.strerror or str(exc))

    # ---------------------------------------------------------------- controls

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or we are shutting down

    def _drain_wake(self, finished: list[Completion]) -> None:
        """Run the queued controls (under the lock); their outcomes go to ``finished``.

        The futures are completed later, by :meth:`_run`, once the lock is released.
        """
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass
        while True:
            try:
                control, future = self._controls.get_nowait()
            except queue.Empty:
                return
            if future.cancelled():
                continue  # its caller gave up on it: do not act on the connection
            try:
                result: str | ctl.ControlError = self._run_control(control)
            except ctl.ControlError as exc:
                self._emit(ErrorEvent, getattr(control, "conn", 0), "control", str(exc))
                result = exc
            except OSError as exc:
                result = ctl.ControlError(f"{type(control).__name__} failed: {exc.strerror or exc}")
                self._emit(ErrorEvent, getattr(control, "conn", 0), "control", str(result))
            finished.append((future, result))

    def _fail_pending(self) -> None:
        """Answer every control still queued: the loop that would run them has ended."""
        while True:
            try:
                _, future = self._controls.get_nowait()
            except queue.Empty:
                return
            _complete([(future, ctl.ControlError("the server has stopped"))])

    def _run_control(self, control: ctl.Control) -> str:
        conn = self._conns.get(control.conn)
        if conn is None:
            raise ctl.ControlError(f"connection #{control.conn} is not open")
        action, detail = self._apply_control(conn, control)
        self._emit(ControlApplied, conn.id, action, detail)
        return f"#{conn.id} {action}" + (f": {detail}" if detail else "")

    def _apply_control(self, conn: Connection, control: ctl.Control) -> tuple[str, str]:
        if isinstance(control, ctl.PauseReading):
            conn.paused = True
            self._update_mask(conn)
            return "paused reading", "unread bytes now pile up in the kernel's receive queue"
        if isinstance(control, ctl.ResumeReading):
            conn.paused = False
            conn.last_activity = time.time()
            self._update_mask(conn)
            return "resumed reading", ""
        if isinstance(control, ctl.SendBytes):
            if conn.write_shut or conn.shutdown_after_flush:
                raise ctl.ControlError(f"connection #{conn.id} has shut down its sending side")
            conn.outbox += control.data
            self._update_mask(conn)
            return "send queued", f"{len(control.data)} bytes"
        if isinstance(control, ctl.ShutdownWrite):
            if conn.outbox:
                conn.shutdown_after_flush = True
                return "shutdown(SHUT_WR) pending", f"FIN after {len(conn.outbox)} queued bytes"
            self._shutdown_write(conn)
            return "shutdown(SHUT_WR)", "FIN sent; still reading"
        if isinstance(control, ctl.CloseConnection):
            dropped = len(conn.outbox)
            unread = unread_bytes(conn.sock)
            self._close(conn, CloseCause.CONTROL, "closed by the user"
                        + (f", {plural(dropped, 'unsent byte')} dropped" if dropped else ""))
            if unread:
                return "close", f"RST sent: {plural(unread, 'byte')} were left unread in the receive queue"
            return "close", "FIN sent"
        if isinstance(control, ctl.AbortConnection):
            self._close(conn, CloseCause.CONTROL, "aborted by the user (RST)", abort=True)
            return "abort", "RST sent (SO_LINGER 0)"
        if isinstance(control, ctl.SetOption):
            return self._set_option(conn, control)
        raise ctl.ControlError(f"unknown control {control!r}")  # pragma: no cover

    def _set_option(self, conn: Connection, control: ctl.SetOption) -> tuple[str, str]:
        option = ctl.SocketOption(control.option)
        value = int(control.value)
        if option is ctl.SocketOption.TCP_NODELAY:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if value else 0)
            actual = conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            conn.options[option.value] = 1 if actual else 0
            return "set option", f"TCP_NODELAY={'on' if actual else 'off'}"
        if value <= 0:
            raise ctl.ControlError(f"{option.value} must be a positive number of bytes")
        level_opt = socket.SO_RCVBUF if option is ctl.SocketOption.SO_RCVBUF else socket.SO_SNDBUF
        conn.sock.setsockopt(socket.SOL_SOCKET, level_opt, value)
        actual = conn.sock.getsockopt(socket.SOL_SOCKET, level_opt)
        conn.options[option.value] = actual
        # Linux doubles the value to leave room for its bookkeeping; say so.
        return "set option", f"{option.value}={value} (kernel uses {actual})"

    # ---------------------------------------------------------------- plumbing

    def _emit(self, cls: type, conn_id: int, *fields: Any) -> None:
        if self._publish:
            self.bus.publish((EVENT_CODES[cls], time.time(), conn_id, *fields))

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
        self._sel.close()
        if self.started:
            self._emit(Stopped, 0)


def _complete(finished: list[Completion]) -> None:
    """Complete each future with its result or error (a future cancelled meanwhile is skipped)."""
    for future, outcome in finished:
        if not future.set_running_or_notify_cancel():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
