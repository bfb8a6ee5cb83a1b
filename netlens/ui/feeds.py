"""Where the UI's data comes from: the live server, kernel and capture — or a recording.

The app reads everything through a :class:`Feeds` object so that the very
same screens run on live sockets (``LiveFeeds``) and on fixed, recorded data
(``RecordedFeeds``: deterministic snapshot tests and screenshots).
Blocking calls (``probe``, ``start_capture``) are made from worker threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from netlens.capture.feed import PacketFeed
from netlens.keygate import KeyGate
from netlens.probe import Snapshot
from netlens.probe.lookups import Pair
from netlens.probe.portwatch import PortWatch
from netlens.server import (
    ConnectionSnapshot,
    Control,
    ControlError,
    EventBus,
    Server,
    ServerConfig,
    ServerStats,
    Subscription,
)
from netlens.server.bus import EventRecord
from netlens.ui.kernel_view import MAX_TIME_WAIT
from netlens.ui.trace_feed import KernelTraceFeed, LiveTraceFeed

#: Default memory for captured frames (``--capture-buffer``): a workshop's traffic fits many times over,
#: and a 1 GiB transfer does not leave the TUI holding a quarter of a gigabyte after it ended.
CAPTURE_BUDGET = 64 << 20
#: The ring holds at most one packet per this many bytes of the budget. Each packet's analysis (its stream's
#: packet list, marks, summary, message records) costs ~250 bytes besides its frame: measured under an 8-client
#: search flood, 75 MiB of analysis for the ~300k ~100-byte frames a 64 MiB byte bound alone let in. With one
#: packet per KiB (65,536 for 64 MiB) the analysis stays within a quarter of the budget whatever the frames' size.
BUDGET_BYTES_PER_PACKET = 1024

class ServerLike(Protocol):
    """What the UI needs of a server (``netlens.server.Server`` has it all)."""

    config: ServerConfig
    address: tuple[str, int]
    #: The app's keys-first gate (a live server waits at it; a recording has nothing to wait).
    key_gate: KeyGate | None

    def snapshot(self, conn: int | None = None, buffers: bool = True) -> list[ConnectionSnapshot]: ...
    def stats(self) -> ServerStats: ...
    def submit(self, control: Control) -> Future[str]: ...


class Feeds(Protocol):
    """The data sources behind one app."""

    config: ServerConfig
    iface: str
    capture_wanted: bool
    #: False for recordings: nothing changes, so the app reads them once.
    live: bool

    @property
    def server(self) -> ServerLike: ...
    @property
    def events(self) -> Subscription: ...
    def start_server(self) -> None: ...
    def probe(self) -> Snapshot: ...
    def now(self) -> float: ...
    def stop(self) -> None: ...
    def packet_feed(self, yield_to: Callable[[], bool] | None = None) -> PacketFeed | None: ...
    def trace_feed(self) -> KernelTraceFeed | None: ...


class LiveFeeds:
    """The real thing: a server on its thread, sock_diag snapshots, packet capture on ``iface``."""

    live = True

    def __init__(self, config: ServerConfig, iface: str = "lo", capture: bool = True,
                 capture_budget: int = CAPTURE_BUDGET, kernel_trace: bool = True) -> None:
        self.config = config
        self.iface = iface
        self.capture_wanted = capture
        self.kernel_trace = kernel_trace
        #: Bytes of frames the packet ring keeps (the oldest go first): the capture's memory budget.
        self.capture_budget = capture_budget
        self._server = Server(config)
        self._events = self._server.subscribe(from_start=True)
        #: The per-tick snapshots of the port (public for benchmarks and tests: its counters, its clock).
        self.watch = PortWatch(time_wait_limit=MAX_TIME_WAIT)
        self._packets: PacketFeed | None = None

    @property
    def server(self) -> Server:
        """The running server."""
        return self._server

    @property
    def events(self) -> Subscription:
        """The UI's reader of socket events."""
        return self._events

    def start_server(self) -> None:
        """Bind and start (raises PortInUseError / UserError with one sentence)."""
        self._server.start()

    def restart_server(self, port: int) -> None:
        """Try again on another port (after the user picked one)."""
        self.config = ServerConfig(**{**self.config.__dict__, "port": port})
        gate = self._server.key_gate  # the app's, attached to the server that could not start
        self._server = Server(self.config)
        self._server.key_gate = gate
        self._events = self._server.subscribe(from_start=True)
        self._server.start()

    def probe(self) -> Snapshot:
        """The kernel's sockets on the server's port (blocking, from a worker thread).

        The newest TIME_WAIT sockets only (the table shows no more): the rest are counted, never built. Most
        ticks look up the connections the server knows by 4-tuple instead of dumping the port, so the TIME_WAIT
        sockets of other ports cost nothing (see :mod:`netlens.probe.portwatch` for when it dumps).
        """
        return self.watch.snapshot(self._server.address[1], self)

    def open_pairs(self) -> list[Pair]:
        """The server's connections as ``(local, peer)`` (for the probe's lookups; from its thread)."""
        return self._server.open_pairs()

    def closed_pairs(self, within: float, limit: int) -> list[Pair]:
        """The newest ``limit`` connections the server closed in the last ``within`` seconds, as ``(local, peer)``."""
        return self._server.recently_closed(limit=limit, within=within)

    def now(self) -> float:
        """Wall clock."""
        return time.time()

    def packet_feed(self, yield_to: Callable[[], bool] | None = None) -> PacketFeed | None:
        """Capture on the server's port (after the server started), or None with ``--no-capture``."""
        if not self.capture_wanted:
            return None
        if self._packets is None:
            from netlens.capture import PacketRing
            from netlens.capture.live_feed import LivePacketFeed

            budget = self.capture_budget
            ring = PacketRing(max_bytes=budget, max_packets=max(1, budget // BUDGET_BYTES_PER_PACKET))
            self._packets = LivePacketFeed(self.iface, self._server.address[1], yield_to=yield_to, ring=ring)
        return self._packets

    def trace_feed(self) -> KernelTraceFeed | None:
        """The kernel's events of the server's port (call once the server is bound; not started yet)."""
        return LiveTraceFeed(self._server.address[1]) if self.kernel_trace else None

    def stop(self) -> None:
        """Stop the capture and the server (within a second or two)."""
        if self._packets is not None:
            self._packets.close()
        self._server.stop()


@dataclass
class RecordedServer:
    """A server frozen at one moment: fixed snapshots and stats; controls are refused."""

    config: ServerConfig
    address: tuple[str, int]
    connections: list[ConnectionSnapshot] = field(default_factory=list)
    server_stats: ServerStats | None = None
    key_gate: KeyGate | None = None

    def snapshot(self, conn: int | None = None, buffers: bool = True) -> list[ConnectionSnapshot]:
        """The recorded connections (all, or ``conn``)."""
        return [c for c in self.connections if conn is None or c.conn == conn]

    def stats(self) -> ServerStats:
        """The recorded counters."""
        assert self.server_stats is not None
        return self.server_stats

    def submit(self, control: Control) -> Future[str]:
        """Recorded data cannot be changed: every control fails with a sentence."""
        future: Future[str] = Future()
        future.set_exception(ControlError("this is a recording; there is no live connection to act on"))
        return future


class RecordedFeeds:
    """Fixed data for deterministic screens: recorded events, one kernel snapshot, a clock that stands still."""

    capture_wanted = False
    live = False

    def __init__(self, server: RecordedServer, records: list[EventRecord], kernel: Snapshot,
                 now: float, iface: str = "lo", packets: PacketFeed | None = None,
                 trace: KernelTraceFeed | None = None) -> None:
        self.config = server.config
        self.iface = iface
        self._server = server
        bus = EventBus(1 << max(4, (len(records) or 1).bit_length()))
        self._events = bus.subscribe()
        for record in records:
            bus.publish(record)
        self._kernel = kernel
        self._now = now
        #: Recorded packets (None: the packets panel has none).
        self.packets = packets
        self._trace = trace

    @property
    def server(self) -> RecordedServer:
        """The recorded server."""
        return self._server

    @property
    def events(self) -> Subscription:
        """Replays the recorded events once."""
        return self._events

    def start_server(self) -> None:
        """Nothing to start."""

    def probe(self) -> Snapshot:
        """The recorded kernel snapshot."""
        return self._kernel

    def now(self) -> float:
        """The recording's moment."""
        return self._now

    def packet_feed(self, yield_to: Callable[[], bool] | None = None) -> PacketFeed | None:
        """The recorded packets."""
        return self.packets

    def trace_feed(self) -> KernelTraceFeed | None:
        """The recorded kernel events (None: the recording has none)."""
        return self._trace

    def stop(self) -> None:
        """Nothing to stop."""
