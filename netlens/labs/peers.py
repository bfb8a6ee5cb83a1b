"""Peers a lab needs that the netlens server is deliberately not.

:class:`KeepAliveSearchPeer` answers search requests like the netlens server
but keeps the connection open for the next one (as HTTP/1.1 does). The Nagle
lesson needs exactly that: a peer that waits for a whole request before it
answers, many times on one connection, so its kernel delays its ACKs.
"""

from __future__ import annotations

import socket

from netlens.labs.context import LabContext
from netlens.proto import Decoder, MessageComplete, ProtocolError, reply


class KeepAliveSearchPeer:
    """A search responder on its own port in the lab's namespace, one connection at a time."""

    def __init__(self, ctx: LabContext) -> None:
        self.listener = ctx.tcp_socket()
        self.listener.bind((ctx.host, 0))
        self.listener.listen(1)
        self.port = int(self.listener.getsockname()[1])
        self._ctx = ctx
        ctx.background("search-peer", self._serve)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:  # the lab ended before anyone connected
            return
        with conn:
            self._answer(conn)

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        decoder = Decoder()
        while True:
            try:
                data = conn.recv(65536)
                if not data:
                    return
                for event in decoder.feed(data):
                    if isinstance(event, MessageComplete):
                        conn.sendall(reply(event.message)[0])
            except (OSError, ProtocolError):
                return


class DiscardPeer:
    """A sink on its own port in the lab's namespace: reads and throws away, one connection at a time.

    A bulk sender needs a receiver that never answers (an echo would double the traffic on the wire).
    """

    def __init__(self, ctx: LabContext) -> None:
        self.listener = ctx.tcp_socket()
        self.listener.bind((ctx.host, 0))
        self.listener.listen(4)
        self.port = int(self.listener.getsockname()[1])
        ctx.background("discard-peer", self._serve)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the lab closed the listener
                return
            with conn:
                try:
                    while conn.recv(1 << 20):
                        pass
                except OSError:
                    continue
