"""The echo protocol (PROTOCOL.md §1) in captured streams: which client bytes came back, and when.

A stream is echo when every byte the server sends repeats, in order, the
next byte the client sent. The session checks that as the bytes arrive
(a mismatch drops it) and remembers, per client segment, where its bytes end
and when it was captured: a server packet's summary then names the client
packets whose bytes it carries back and how long after them it came
(``echo of 16 bytes from #4, 0.213 ms later``). Nothing is stored per server
packet; the summary is worked out when the row is shown.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from typing import Any

from netlens.capture.protocols import MessageEvent

_MASK = 0xFFFFFFFF
#: Client bytes held unechoed before deciding this is not echo (a one-way upload).
MAX_UNECHOED = 1 << 20


class EchoSession:
    """One stream checked for echo."""

    __slots__ = ("alive", "recognised", "unechoed", "client_ends", "client_nos", "client_ts", "client_bytes",
                 "server_start")

    def __init__(self) -> None:
        self.alive = True
        self.recognised = False
        #: Client bytes the server has not sent back yet.
        self.unechoed = bytearray()
        #: Per client segment: client byte offset just past it, its packet, its capture time.
        self.client_ends = array("q")
        self.client_nos = array("q")
        self.client_ts = array("q")
        self.client_bytes = 0
        #: Sequence number of the first server byte seen (server offsets count from it).
        self.server_start: int | None = None

    def feed(self, direction: int, seq: int, data: bytes, no: int, ts_ns: int) -> list[MessageEvent]:
        """Client bytes wait to come back; server bytes must be exactly the next ones waiting."""
        if direction == 0:
            self.unechoed += data
            self.client_bytes += len(data)
            self.client_ends.append(self.client_bytes)
            self.client_nos.append(no)
            self.client_ts.append(ts_ns)
            if len(self.unechoed) > MAX_UNECHOED:
                self._drop()
            return []
        if self.server_start is None:
            self.server_start = seq
        if not self.unechoed.startswith(data):  # (no copy of the waiting bytes, unlike a slice)
            self._drop()
            return []
        del self.unechoed[:len(data)]
        self.recognised = True
        return []

    def _drop(self) -> None:
        self.alive = False
        self.unechoed = bytearray()

    def in_message(self, direction: int) -> bool:
        """Echo has no messages to wait for."""
        return False

    def abandon(self, direction: int) -> list[int]:
        """Nothing was held for a message."""
        self._drop()
        return []

    def describes(self, direction: int) -> bool:
        """Only server packets are described (echoes); a client packet's row shows its bytes."""
        return direction == 1

    def describe(self, direction: int, seq: int, length: int, ts_ns: int) -> str | None:
        """For a server packet: the client packets whose bytes it sends back, and how long after."""
        start = self.server_start
        if direction != 1 or start is None or not length or not self.recognised:
            return None
        first = (seq - start) & _MASK
        total = self.client_bytes  # where the last client segment ends (0: none yet)
        if first >= total:
            return None  # beyond what the client was seen sending
        # The client segment holding byte ``first``: a client that sends requests of one size makes its
        # segments' ends evenly spaced, so guess by proportion and bisect only when the guess is wrong
        # (a bisect of a long capture's index touches twenty places of a large array, mostly not cached).
        ends = self.client_ends
        i = first * len(ends) // total
        end = ends[i]
        if end <= first or (i and ends[i - 1] > first):
            i = bisect_right(ends, first)
            end = ends[i]
        if end >= first + length:  # the usual case: the bytes of one client segment (one search, not two)
            return f"echo of {length} bytes from #{self.client_nos[i]}, " \
                   f"{(ts_ns - self.client_ts[i]) / 1e6:.3f} ms later"
        j = bisect_right(ends, first + length - 1, i)
        if j >= len(ends):
            return None
        nos = self.client_nos
        return f"echo of {length} bytes from #{nos[i]}–#{nos[j]}, {(ts_ns - self.client_ts[j]) / 1e6:.3f} ms later"

    def close(self, direction: int) -> None:
        """Nothing to free: the per-segment index stays for the summaries."""


class Echo:
    """The echo protocol: claims every stream, recognised by the bytes coming back."""

    name = "echo"

    def claims(self, client_port: int, server_port: int) -> bool:
        """Any stream may be echo."""
        return True

    def session(self) -> EchoSession:
        """Fresh per-stream state."""
        return EchoSession()

    def scapy_layer(self) -> Any:
        """Echo bytes are just bytes: scapy's Raw layer shows them."""
        return None


PROTOCOL = Echo()
