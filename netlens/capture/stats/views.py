"""Graphs and the conversation table as plain data, computed where the packets are.

A packet feed keeps one :class:`StatsViews` beside its store: the graph
screen asks for a stream's state (which reads that stream's new packets, a
bounded batch per question) and for a finished :class:`~.series.Graph` of
it; the conversations screen asks for the table (which counts a bounded batch
of new packets first). What comes back is plain, picklable data, small
enough to cross a process boundary twice a second: the followers and the
tracker, with their per-packet columns, stay where the ring is.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netlens.capture.stats.conversations import Conversation, conversations
from netlens.capture.stats.series import Graph, build_graph
from netlens.capture.stats.tracker import KernelSample, StatsTracker, StreamFollower

if TYPE_CHECKING:
    from netlens.capture.ring import PacketRing
    from netlens.capture.store import PacketStore

#: Unread packets of a graphed stream after which it jumps to the newest ones (the status says how many it skipped).
MAX_BEHIND = 50_000
#: Packets read after such a jump.
CATCH_UP = 2_000
#: Segments a live graph shows at most (older ones are a zoom-out away).
LIVE_POINTS = 20_000
#: Streams followed at once (graph screens opened one after the other); the oldest is forgotten beyond.
FOLLOWED = 4


@dataclass(frozen=True)
class GraphState:
    """How far the graph of one stream has got: what its status line shows and when to redraw."""

    stream_id: int
    #: Packets graphed so far, per direction (0: client → server).
    packets: tuple[int, int]
    #: Packets of the stream indexed but not read yet, and those skipped for good (a flood, or evicted).
    behind: int
    missed: int
    #: Kernel samples held for the RTT/window graphs.
    kernel: int
    #: The direction that sent more payload (the one a graph shows by default).
    data_direction: int

    @property
    def graphed(self) -> int:
        """Packets graphed, both directions."""
        return sum(self.packets)


@dataclass(frozen=True)
class GraphPicture:
    """One built graph and the number of the stream's packets it was built from."""

    graph: Graph
    packets: int


@dataclass(frozen=True)
class ConversationTable:
    """The conversation table: one row per stream counted so far, and how many packets are still to count."""

    rows: tuple[Conversation, ...]
    behind: int


class StatsViews:
    """Stream followers and one conversation tracker over a feed's ring and store.

    Locks: :meth:`follower`, :meth:`count_conversations`, :meth:`conversations`
    and :meth:`release` read the store, so the caller holds the feed's lock;
    the graph methods read only a follower's own numbers (and the ring, which
    has its own lock), so they hold :attr:`lock` instead and building a graph
    (milliseconds) never holds up the analysis.
    """

    def __init__(self, ring: PacketRing, store: PacketStore) -> None:
        self.ring = ring
        self.store = store
        #: Guards the followers' numbers.
        self.lock = threading.Lock()
        self._followers: OrderedDict[int, StreamFollower] = OrderedDict()
        self._tracker: StatsTracker | None = None

    def follower(self, stream_id: int) -> StreamFollower:
        """The follower of ``stream_id`` (KeyError if the store does not know it and nobody follows it)."""
        follower = self._followers.get(stream_id)
        if follower is None:
            follower = StreamFollower(self.ring, self.store.stream(stream_id))
            self._followers[stream_id] = follower
            while len(self._followers) > FOLLOWED:
                self._followers.popitem(last=False)
        self._followers.move_to_end(stream_id)
        return follower

    def graph_state(self, follower: StreamFollower, limit: int) -> GraphState:
        """Read up to ``limit`` new packets of the stream (skipping ahead under a flood); where it stands."""
        if follower.behind > MAX_BEHIND:
            follower.skip_to_newest(CATCH_UP)
        follower.update(limit)
        stats = follower.stats
        return GraphState(follower.stream.id, (stats.packets[0], stats.packets[1]), follower.behind, follower.missed,
                          len(stats.kernel), stats.data_direction())

    def add_kernel_sample(self, follower: StreamFollower, sample: KernelSample) -> None:
        """Keep the kernel's newest view of the stream's sending socket, when it changed."""
        kernel = follower.stats.kernel
        if not kernel or kernel[-1][1:] != sample[1:]:
            kernel.append(sample)

    def graph(self, follower: StreamFollower, kind: str, direction: int | None,
              view: tuple[float, float] | None) -> GraphPicture:
        """Graph ``kind`` of the stream's ``direction`` (None: the busier one) over ``view`` (seconds since the
        capture's first packet; None: the newest :data:`LIVE_POINTS` segments)."""
        stats = follower.stats
        origin = self.ring.first_ts_ns or stats.first_ts
        d = stats.data_direction() if direction is None else direction
        if view is None:
            segments = stats.series[d].segments
            start_ns = None
            if len(segments) > LIVE_POINTS:
                start_ns = segments.flat[(len(segments) - LIVE_POINTS) * segments.width]
            stop_ns = None
        else:
            start_ns, stop_ns = origin + int(view[0] * 1e9), origin + int(view[1] * 1e9)
        return GraphPicture(build_graph(kind, stats, d, origin, start_ns, stop_ns), sum(stats.packets))

    def count_conversations(self, limit: int) -> int:
        """Count up to ``limit`` new packets for the conversation table; returns how many."""
        tracker = self._tracker
        if tracker is None:
            tracker = self._tracker = StatsTracker(self.ring, self.store)
        return tracker.update(limit)

    def conversations(self) -> ConversationTable:
        """The table of every stream counted so far."""
        tracker = self._tracker
        if tracker is None:
            return ConversationTable((), max(0, self.store.last - self.ring.first + 1))
        return ConversationTable(tuple(conversations(tracker)), max(0, self.store.last - tracker.last))

    def release(self, stream_id: int | None = None) -> None:
        """A screen closed: forget what it alone used, so its memory goes.

        ``stream_id``: a graph's stream follower; None: the conversation tracker.
        Each screen lets go of its own part only: the conversations screen that
        opens a graph closes under it, and taking the graph's follower with it made
        the graph start over from a fresh reading of its stream.
        """
        if stream_id is None:
            self._tracker = None
        else:
            self._followers.pop(stream_id, None)
