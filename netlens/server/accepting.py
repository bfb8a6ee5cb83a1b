"""The server loop's accepting path: accept bursts, new sessions, and surviving EMFILE."""

from __future__ import annotations

import errno
import os
import socket
import time

from netlens.server.connection import Connection
from netlens.server.loopstate import ACCEPTED, ERROR
from netlens.server.sessions import EchoSession, SearchSession, Session
from netlens.server.sockets import address_of, cookie_of, open_reserve, reset_close
from netlens.server.transfers import Transfers

#: Connections accepted per wake-up at most, so an accept flood cannot starve
#: the connections already open.
ACCEPT_BURST = 64
#: How long the listener rests after running out of file descriptors.
EMFILE_PAUSE = 0.1

_now = time.time


class Accepting(Transfers):
    """Taking connections out of the accept queue."""

    # ----------------------------------------------------------------- accepting

    def _accept(self) -> None:
        assert self._listener is not None
        # socket.accept() builds the new socket from the listener's family and type
        # properties, each an enum conversion: what the loop spent most on per
        # connection. The listener's plain numbers make the same socket.
        accept = self._listener._accept  # type: ignore[attr-defined]
        family, proto = self._listen_family, self._listen_proto
        deadline = self._request_timeout()
        for _ in range(ACCEPT_BURST):
            try:
                fd, raw_peer = accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._out_of_descriptors(exc)
                elif exc.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    self._emit(ERROR, 0, "accept", exc.strerror or str(exc))
                return
            sock = socket.socket(family, socket.SOCK_STREAM, proto, fd)
            sock.setblocking(False)
            now = _now()
            local = self._fixed_local or address_of(sock.getsockname())
            # IPv4 peers come as (host, port) already; IPv6 ones with flowinfo and scope id.
            peer = raw_peer if len(raw_peer) == 2 else address_of(raw_peer)
            conn = Connection(self._next_id, sock, peer, local, self._new_session(), now, cookie_of(sock))
            if deadline:
                conn.deadline = now + deadline
            self._next_id += 1
            self._accepted += 1
            self._conns[conn.id] = conn
            self._record((ACCEPTED, now, conn.id, conn.peer, conn.local, conn.cookie))
            # Registered in the same step as the accept: one clock reading stamps both.
            self._update_mask(conn, now)

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
        self._emit(ERROR, 0, "accept",
                   f"out of file descriptors ({errno.errorcode.get(exc.errno or 0, exc.errno)}); "
                   f"refusing connections for {EMFILE_PAUSE:g} s (raise the limit with ulimit -n)")
        self._interest.unregister(self._listener.fileno())
        self._listener_registered = False
        self._listener_resume_at = time.monotonic() + EMFILE_PAUSE

