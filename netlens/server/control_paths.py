"""The server loop's control paths: commands other threads submit, run on the loop thread.

Other threads never touch a socket: :meth:`Server.submit` queues a control and
writes a wake-up byte; the loop runs the queued controls under its lock and
completes their futures once the lock is released (:func:`complete`).
"""

from __future__ import annotations

import queue
import socket
import time
from concurrent.futures import Future

from netlens.display import plural
from netlens.server import controls as ctl
from netlens.server.connection import Connection
from netlens.server.events import CloseCause
from netlens.server.loopstate import CONTROL, ERROR
from netlens.server.sockets import unread_bytes
from netlens.server.transfers import Transfers

#: A control's future and what it came to: the one-sentence result, or the error.
Completion = tuple[Future[str], "str | ctl.ControlError"]

_now = time.time


class ControlPaths(Transfers):
    """Waking the loop, and running the controls queued for it."""

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
                self._emit(ERROR, getattr(control, "conn", 0), "control", str(exc))
                result = exc
            except OSError as exc:
                result = ctl.ControlError(f"{type(control).__name__} failed: {exc.strerror or exc}")
                self._emit(ERROR, getattr(control, "conn", 0), "control", str(result))
            finished.append((future, result))

    def _fail_pending(self) -> None:
        """Answer every control still queued: the loop that would run them has ended."""
        while True:
            try:
                _, future = self._controls.get_nowait()
            except queue.Empty:
                return
            complete([(future, ctl.ControlError("the server has stopped"))])

    def _run_control(self, control: ctl.Control) -> str:
        conn = self._conns.get(control.conn)
        if conn is None:
            raise ctl.ControlError(f"connection #{control.conn} is not open")
        action, detail = self._apply_control(conn, control)
        self._emit(CONTROL, conn.id, action, detail)
        return f"#{conn.id} {action}" + (f": {detail}" if detail else "")

    def _apply_control(self, conn: Connection, control: ctl.Control) -> tuple[str, str]:
        if isinstance(control, ctl.PauseReading):
            conn.paused = True
            self._update_mask(conn)
            return "paused reading", "unread bytes now pile up in the kernel's receive queue"
        if isinstance(control, ctl.ResumeReading):
            conn.paused = False
            conn.last_activity = _now()
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


def complete(finished: list[Completion]) -> None:
    """Complete each future with its result or error (a future cancelled meanwhile is skipped)."""
    for future, outcome in finished:
        if not future.set_running_or_notify_cancel():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
