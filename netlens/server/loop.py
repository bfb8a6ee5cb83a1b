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
import struct
import threading
import time
from concurrent.futures import Future
from typing import Any

from netlens.display import endpoint
from netlens.errors import UserError
from netlens.server import controls as ctl
from netlens.server.bus import EventBus, Subscription
from netlens.server.config import ServerConfig
from netlens.server.connection import Connection, ConnectionSnapshot, ServerStats
from netlens.server.events import (
    EVENT_CODES,
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


def _address(raw: Any) -> Address:
    # IPv6 addresses come as 4-tuples (host, port, flowinfo, scope_id).
    return (str(raw[0]), int(raw[1]))


class Server:
    """The teaching server (echo or search) running its selectors loop on a thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. Binding
    happens in :meth:`start`, on the caller's thread, so a port in use is
    reported right there as :class:`PortInUseError`.
    """

    def __init__(self, config: ServerConfig | None = None, bus: EventBus | None = None) -> None:
        self.config = config or ServerConfig()
        self.bus = bus or EventBus(self.config.event_capacity)
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
        self._next_idle_scan = 0.0
        # With a specific listen address every accepted socket has it as its
        # local address, which saves a getsockname() per connection.
        self._fixed_local: Address | None = None

    # ----------------------------------------------------------------- public API

    def start(self) -> Server:
        """Bind, listen, and run the loop on a daemon thread. Returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._listener = self._bind()
        self.address = _address(self._listener.getsockname())
        if self.address[0] not in ("0.0.0.0", "::"):
            self._fixed_local = self.address
        self._sel.register(self._listener, READ, _LISTENER)
        self._listener_registered = True
        self._sel.register(self._wake_r, READ, _WAKER)
        self._reserve_fd = _open_reserve()
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
            self._emit(ErrorEvent, conn.id, "serving the connection", f"{type(exc).__name__}: {exc}")
            self._close(conn, CloseCause.ERROR, f"internal error: {type(exc).__name__}")

    def _select_timeout(self) -> float | None:
        waits = []
        if self.config.idle_timeout and self._conns:
            waits.append(min(1.0, self.config.idle_timeout / 4))
        if not self._listener_registered:
            waits.append(max(0.0, self._listener_resume_at - time.monotonic()))
        return min(waits) if waits else None

    def _timers(self) -> None:
        if not self._listener_registered and time.monotonic() >= self._listener_resume_at:
            assert self._listener is not None
            self._sel.register(self._listener, READ, _LISTENER)
            self._listener_registered = True
        limit = self.config.idle_timeout
        if limit and self._conns:
            now = time.time()
            # Scan at most a few times per timeout, not on every wake-up.
            if now < self._next_idle_scan:
                return
            self._next_idle_scan = now + min(1.0, limit / 4)
            for conn in list(self._conns.values()):
                # A connection the user paused is waiting on purpose, not stalled.
                if not conn.paused and now - conn.last_activity > limit:
                    self._close(conn, CloseCause.TIMEOUT,
                                f"no progress for {limit:g} s while {conn.session.stage}")

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
            local = self._fixed_local or _address(sock.getsockname())
            conn = Connection(self._next_id, sock, _address(raw_peer), local, self._new_session(), now)
            self._next_id += 1
            self._accepted += 1
            self._conns[conn.id] = conn
            self._emit(Accepted, conn.id, conn.peer, conn.local)
            self._update_mask(conn)

    def _new_session(self) -> Session:
        if self.config.mode == "echo":
            return EchoSession()
        return SearchSession(self.config.max_content_length)

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
                _abort(shed)
                self._refused_emfile += 1
            except OSError:
                pass
            self._reserve_fd = _open_reserve()
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
        conn.last_in = data
        self._bytes_in += n
        self._emit(Received, conn.id, n, data)
        self._apply(conn, conn.session.on_data(data))

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
        if outcome.reply is not None and not conn.write_shut:
            conn.outbox += outcome.reply
            if outcome.summary is not None:
                self._requests += 1
                self._emit(ResponseQueued, cid, len(outcome.reply), outcome.summary)
        if outcome.stop_reading:
            conn.reading = False
        if outcome.close_after_reply:
            conn.close_after_flush = True
            conn.close_cause = outcome.cause
            conn.close_reason = outcome.reason
            if not conn.outbox:
                self._close(conn, outcome.cause, outcome.reason)
                return
        if conn.outbox and conn.session.mode == "echo" and not conn.mask & WRITE:
            # Echo sends at once: usually the kernel takes it all and WRITE interest is
            # never needed; only what it cannot take waits for the socket to be writable.
            # (Search mode keeps the reference's visible READ -> WRITE switch.)
            self._on_writable(conn)
            return
        self._update_mask(conn)

    def _on_writable(self, conn: Connection) -> None:
        try:
            n = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except (BrokenPipeError, ConnectionResetError):
            self._close(conn, CloseCause.RESET, "connection reset by peer while sending")
            return
        except OSError as exc:
            self._close(conn, CloseCause.ERROR, f"send failed: {exc.strerror or exc}")
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
            _abort(conn.sock)
        else:
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
            self._close(conn, CloseCause.CONTROL, "closed by the user"
                        + (f", {dropped} unsent bytes dropped" if dropped else ""))
            return "close", "FIN (or RST if unread bytes remain)"
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


def _open_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _abort(sock: socket.socket) -> None:
    """Close with RST: SO_LINGER on, timeout 0."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
