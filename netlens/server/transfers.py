"""The server loop's reading and writing paths: recv, the session's outcome, send, close.

Everything here runs on the loop thread under its lock. A socket is registered
for READ while its protocol wants bytes and for WRITE only while bytes wait in
its send buffer (:meth:`Transfers._update_mask`), so an idle server sleeps.
"""

from __future__ import annotations

import socket
import time

from netlens.display import plural
from netlens.server.connection import SNAPSHOT_BYTES, Connection
from netlens.server.events import RECORD_DATA_BYTES, CloseCause
from netlens.server.interest import EPOLL_FLAGS, READ, WRITE
from netlens.server.loopstate import CLOSED, ERROR, MASK, PEER_FIN, QUEUED, RECV, SENT, STAGE, LoopState
from netlens.server.sessions import Outcome
from netlens.server.sockets import reset_close, unread_bytes

_now = time.time


class Transfers(LoopState):
    """Reading, answering, writing and closing connections."""

    def _on_readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(self._recv_size)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            self._close(conn, CloseCause.RESET, "connection reset by peer")
            return
        except OSError as exc:
            self._close(conn, CloseCause.ERROR, f"recv failed: {exc.strerror or exc}")
            return
        now = conn.last_activity = _now()
        if not data:
            conn.reading = False
            outcome = conn.session.on_eof()
            if not outcome.close_now and (conn.outbox or not outcome.close_after_reply):
                self._emit(PEER_FIN, conn.id)
            self._apply(conn, outcome, now)
            return
        n = len(data)
        conn.bytes_in += n
        conn.recv_calls += 1
        self._bytes_in += n
        # Events and the inspector keep what a screen shows, not every chunk's 64 KiB.
        if n <= RECORD_DATA_BYTES:
            conn.last_in = data
            self._record((RECV, now, conn.id, n, data))
        else:
            conn.last_in = data[:SNAPSHOT_BYTES]
            self._record((RECV, now, conn.id, n, data[:RECORD_DATA_BYTES]))
        if self._echo_mode:
            self._echo(conn, data, n, now)
            return
        self._apply(conn, conn.session.on_data(data), now)

    def _echo(self, conn: Connection, data: bytes, size: int, now: float) -> None:
        """Echo mode's whole job (what EchoSession.on_data says) for ``size`` bytes, without building an Outcome.

        ``now`` is the recv's clock reading: the send that answers it in the same
        step (microseconds later) shares it, as the events of one step do.
        """
        if conn.write_shut:
            conn.unechoed += size
            return
        self._echoed += 1
        self._echoed_bytes += size
        if conn.outbox:
            # Earlier bytes still wait for the socket to be writable: these queue behind
            # them, and past the echo buffer limit the mask stops reading this peer.
            conn.outbox += data
            self._update_mask(conn)
            return
        # Send at once: usually the kernel takes it all and WRITE interest is never needed.
        try:
            n = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            self._send_failed(conn, exc)
            return
        if n:
            conn.bytes_out += n
            conn.send_calls += 1
            self._bytes_out += n
            self._record((SENT, now, conn.id, n, size - n))
        if n < size:
            conn.outbox += memoryview(data)[n:]
            self._update_mask(conn)

    def _apply(self, conn: Connection, outcome: Outcome, now: float = 0.0) -> None:
        """Carry out what the session decided (stages, reply, close), stamped ``now`` (0: read the clock).

        The chunk that was read, what the session decided from it, the mask change
        that follows and the send of the same pass are one step: the recv's clock
        reading stamps them all (a JSON line's time is most of its formatting cost).
        """
        cid = conn.id
        now = now or _now()
        for stage, detail in outcome.stages:
            self._record((STAGE, now, cid, stage, detail))
        if outcome.error is not None:
            self._protocol_errors += 1
            self._emit(ERROR, cid, "protocol", outcome.error)
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
                    self._record((QUEUED, now, cid, len(reply), outcome.summary))
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
            self._on_writable(conn, now)
            return
        self._update_mask(conn, now)
        if conn.outbox and conn.mask & WRITE:
            # Search mode keeps the reference's visible READ -> WRITE switch, then sends
            # at once rather than after another epoll_wait(): a socket with an empty
            # send buffer is writable, and send() says how much the kernel took.
            self._on_writable(conn, now)

    def _send(self, conn: Connection, data: bytes | bytearray) -> int | None:
        """``send()`` what the kernel takes: bytes sent (0 if none), None if that closed the connection."""
        try:
            return conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._send_failed(conn, exc)
        return None

    def _send_failed(self, conn: Connection, exc: OSError) -> None:
        """Close a connection whose ``send()`` failed, saying why."""
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            self._close(conn, CloseCause.RESET, "connection reset by peer while sending")
        else:
            self._close(conn, CloseCause.ERROR, f"send failed: {exc.strerror or exc}")

    def _on_writable(self, conn: Connection, now: float = 0.0) -> None:
        """Send what waits in the outbox; ``now``: the clock reading of the step that queued it in this pass."""
        n = self._send(conn, conn.outbox)
        if not n:
            return
        # Deleting from the front of a bytearray is O(1) in CPython.
        del conn.outbox[:n]
        conn.bytes_out += n
        conn.send_calls += 1
        now = conn.last_activity = now or _now()
        self._bytes_out += n
        self._record((SENT, now, conn.id, n, len(conn.outbox)))
        if not conn.outbox:
            if conn.close_after_flush:
                self._close(conn, conn.close_cause, conn.close_reason)
                return
            if conn.shutdown_after_flush:
                self._shutdown_write(conn)
        # Also re-enables reading once an echo backlog drains below its limit.
        self._update_mask(conn)

    def _update_mask(self, conn: Connection, now: float = 0.0) -> None:
        """Register exactly the interest the connection has now (never WRITE with nothing to send).

        ``now``: the clock reading of the step that changed it (0: read the clock).
        """
        want = 0
        # Echo backpressure: stop reading a peer that does not read its echoes.
        outbox = conn.outbox
        backlogged = self._echo_mode and len(outbox) > self.config.echo_buffer_limit
        if conn.reading and not conn.paused and not backlogged:
            want = READ
        if outbox:
            want |= WRITE
        old = conn.mask
        if want == old:
            return
        if old == 0:
            # Interest.register, without the call: once per connection.
            self._epoll_register(conn.fd, EPOLL_FLAGS[want])
            self._interest.targets[conn.fd] = conn
        elif want == 0:
            self._interest.unregister(conn.fd)
        else:
            self._epoll_modify(conn.fd, EPOLL_FLAGS[want])
        conn.mask = want
        self._record((MASK, now or _now(), conn.id, old, want))

    def _close(self, conn: Connection, cause: CloseCause, reason: str, abort: bool = False) -> None:
        """Close once (idempotent); ``abort`` sends RST instead of FIN."""
        if conn.closed:
            return
        conn.closed = True
        if conn.mask:
            # close() below takes the socket out of the epoll set (nothing else holds its
            # file): one epoll_ctl() a connection saved.
            self._interest.forget(conn.fd)
            conn.mask = 0
        if not abort:
            # close() with unread bytes in the receive queue sends RST, not FIN (RFC 2525).
            unread = unread_bytes(conn.fd)
            if unread:
                reason += f"; RST sent, not FIN: {plural(unread, 'byte')} left unread in the receive queue"
        self._conns.pop(conn.id, None)
        # `_value_`, not `value`: the enum's property costs more than the rest of this line.
        by: str = cause._value_
        self._closed_by[by] = self._closed_by.get(by, 0) + 1
        # What happened before is published before the peer can see the FIN/RST.
        self._flush_events()
        if abort:
            reset_close(conn.sock)
        else:
            conn.sock.close()
        # Stamped after close(), like the kernel's own events of it, and published at once.
        now = _now()
        self._remember_close(conn, now)
        # (Nothing was recorded since the flush above: publishing this one alone keeps the order.)
        self._publish_now((CLOSED, now, conn.id, by, reason))

    def _shutdown_write(self, conn: Connection) -> None:
        conn.shutdown_after_flush = False
        self._flush_events()  # the peer sees the FIN: the events before it are out first
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.write_shut = True
        except OSError as exc:
            self._emit(ERROR, conn.id, "shutdown", exc.strerror or str(exc))

