"""The packet feed: capture, ring, analysis and saving behind one small typed API (no UI inside).

A :class:`PacketFeed` is what a view of packets talks to. It owns the ring,
the analysis (:class:`PacketStore`) and its lock; the live one also owns the
capture and the analysis thread. Everything it returns is plain, immutable
data — summaries, stream views, a dissection, a followed stream — copied out
under the lock, never a live object; calls come in batches (``rows(a, b)``);
and it never calls back into its caller: background work (starting a
capture, saving a file) reports through :meth:`PacketFeed.advance`, which a
view polls on its timer. That is the shape a feed keeps if capture and
analysis move into a helper process: the same calls, answered over a pipe.
The graph and conversations screens get plain data the same way
(graph_state, graph, conversations: see :mod:`netlens.capture.stats.views`).

Two feeds provide it: :class:`RecordedPacketFeed` (a pcap, or frames built for
a test, analysed once) and :class:`netlens.capture.live_feed.LivePacketFeed`
(capture on an interface, analysed as it arrives).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from netlens.capture.analysis import Mark
from netlens.capture.annotate import SocketEvent, packet_comments
from netlens.capture.dissect import Layer
from netlens.capture.follow import Follow
from netlens.capture.ladder import Ladder
from netlens.capture.pcap import write_pcap
from netlens.capture.pcapng import write_pcapng
from netlens.capture.ring import PacketRing
from netlens.capture.stats.report import packet_statistics
from netlens.capture.stats.tracker import KernelSample, StreamFollower
from netlens.capture.stats.views import ConversationTable, GraphPicture, GraphState, StatsViews
from netlens.capture.store import PacketStore
from netlens.capture.streams import Stream, StreamKey
from netlens.capture.summary import PacketSummary

#: What a save calls for the server's socket events to attach to the packets (see ``PacketFeed.save``).
SocketEvents = Callable[[], Iterable[SocketEvent]]

#: Slack of find_stream's index over the streams stored before it is rebuilt.
FOUND_CACHE = 4096


def _plain(address: tuple[str, int]) -> tuple[str, int]:
    """``(host, port)`` as a stream's key spells it: an IPv4-mapped IPv6 address as IPv4, extra items dropped."""
    host = str(address[0])
    if host.lower().startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, int(address[1])


class FeedState(str, Enum):
    """Where a feed is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    FAILED = "failed"
    RECORDED = "recorded"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Notice:
    """One sentence about background work that finished (a save), for the user."""

    text: str
    error: bool = False


@dataclass(frozen=True)
class FeedStatus:
    """A consistent picture of a feed at one moment (what :meth:`PacketFeed.advance` returns)."""

    state: FeedState
    #: Interface captured on ("" for a recording).
    iface: str = ""
    #: Oldest stored packet number, and the newest analysed one: rows ``first..last`` can be listed.
    first: int = 1
    last: int = 0
    #: Packets captured since the last clear (pauses included), and dropped by the kernel.
    captured: int = 0
    kernel_drops: int = 0
    #: Captured but not analysed yet; left unanalysed to keep up with a flood.
    pending: int = 0
    skipped: int = 0
    #: Packets forgotten by clears so far; bumps of ``generation`` say numbering restarted at 1.
    cleared: int = 0
    generation: int = 0
    #: Bytes of frames the ring holds, and its budget (the oldest frames go first beyond it).
    ring_bytes: int = 0
    ring_budget: int = 0
    #: One sentence: why the capture failed, or which kernel filter it uses.
    sentence: str = ""
    #: Finished background work since the previous advance().
    notices: tuple[Notice, ...] = ()

    @property
    def stored(self) -> int:
        """Packets listable now."""
        return max(0, self.last - self.first + 1)


@dataclass(frozen=True)
class StreamView:
    """An immutable copy of what is known about one stream."""

    id: int
    key: StreamKey
    client: str
    server: str
    description: str
    completeness: str
    closed: bool

    @classmethod
    def of(cls, stream: Stream) -> StreamView:
        """Copy ``stream``'s facts."""
        return cls(stream.id, stream.key, stream.client, stream.server, stream.describe(), stream.completeness(),
                   stream.closed)


@dataclass(frozen=True)
class PacketDetail:
    """One packet in depth: its row, its layers (Wireshark's words), its hex dump, its analysis flags."""

    summary: PacketSummary
    layers: tuple[Layer, ...]
    hexdump: tuple[str, ...]
    marks: tuple[Mark, ...]
    #: Bytes of the frame as captured.
    length: int
    #: Wireshark's ACK RTT, bytes in flight and calculated window of the packet, as sentences.
    statistics: tuple[str, ...] = ()


class PacketFeed(Protocol):
    """What a packets view needs; every return value is plain data."""

    def advance(self) -> FeedStatus:
        """The newest status, with the notices of background work finished since the last call."""
        ...

    def status(self) -> FeedStatus:
        """The newest status, leaving notices for the next :meth:`advance`."""
        ...

    def rows(self, first: int, last: int) -> list[PacketSummary]:
        """Summaries of stored packets ``first..last`` (inclusive)."""
        ...

    def rows_at(self, numbers: Sequence[int]) -> list[PacketSummary | None]:
        """Summaries of the packets ``numbers`` (None for one no longer stored)."""
        ...

    def summary(self, no: int) -> PacketSummary:
        """One packet's row (IndexError if it is not stored)."""
        ...

    def stream(self, stream_id: int) -> StreamView:
        """One stream (KeyError if unknown or evicted)."""
        ...

    def stream_of(self, no: int) -> StreamView | None:
        """The stream of packet ``no``, if it is TCP and analysed."""
        ...

    def find_stream(self, local: tuple[str, int], remote: tuple[str, int]) -> StreamView | None:
        """The newest stream between a socket's two ends."""
        ...

    def stream_packets(self, stream_id: int) -> tuple[int, ...]:
        """Packet numbers of one stream still stored, oldest first."""
        ...

    def flagged(self, stream_id: int) -> tuple[int, ...]:
        """Packets of one stream that carry analysis flags."""
        ...

    def detail(self, no: int) -> PacketDetail:
        """One packet in depth (imports scapy the first time)."""
        ...

    def follow(self, stream_id: int) -> Follow:
        """Both directions of a stream, reassembled."""
        ...

    def ladder(self, stream_id: int) -> Ladder:
        """A stream's ladder diagram."""
        ...

    def graph_state(self, stream_id: int, limit: int) -> GraphState:
        """Read up to ``limit`` new packets of a graphed stream; where its graph stands (KeyError if unknown)."""
        ...

    def add_kernel_sample(self, stream_id: int, sample: KernelSample) -> None:
        """The kernel's newest srtt/cwnd for a graphed stream's sending socket."""
        ...

    def graph(self, stream_id: int, kind: str, direction: int | None,
              view: tuple[float, float] | None) -> GraphPicture:
        """One graph of a stream, built where the packets are (see :class:`StatsViews`)."""
        ...

    def count_conversations(self, limit: int) -> int:
        """Count up to ``limit`` new packets for the conversation table; how many."""
        ...

    def conversations(self) -> ConversationTable:
        """The conversation table so far."""
        ...

    def release_statistics(self, stream_id: int | None = None) -> None:
        """A graph screen (``stream_id``) or the conversations screen (None) closed: forget what it needed."""
        ...

    def start(self) -> None:
        """Start capturing (or loading); returns at once."""
        ...

    def pause(self) -> str:
        """Stop capturing, keep the packets; one sentence saying what happened."""
        ...

    def resume(self) -> str:
        """Capture again into the same list; one sentence."""
        ...

    def clear(self) -> str:
        """Forget every packet; numbering restarts at 1; one sentence saying how many went."""
        ...

    def save(self, path: str, events: SocketEvents | None = None) -> str:
        """Write every stored packet to ``path`` in the background (pcapng with analysis comments when it ends
        in ``.pcapng``, pcap otherwise); one sentence (the absolute path).

        ``events()``, called on the saving thread, gives the server's socket events to attach as comments too.
        """
        ...

    def close(self) -> None:
        """Stop every thread and the capture (bounded)."""
        ...


class StoreFeed:
    """The part of every feed that answers from a :class:`PacketStore` under one lock."""

    def __init__(self, ring: PacketRing, store: PacketStore, state: FeedState, iface: str = "") -> None:
        self.ring = ring
        self.store = store
        #: Held for every store access: one analysis batch at most (about a millisecond).
        self.lock = threading.Lock()
        self._status = FeedStatus(state, iface)
        self._notices: list[Notice] = []
        self._cleared = 0
        self._generation = 0
        #: find_stream's index: (one end, the other end) -> the newest stream between them, and the newest
        #: stream id indexed.
        self._ends: dict[tuple[tuple[str, int], tuple[str, int]], int] = {}
        self._indexed = 0
        self._views: StatsViews | None = None

    # ------------------------------------------------------------------ status

    def _counters(self) -> FeedStatus:
        """Counters of the store and ring (caller holds the lock); live feeds add the capture's."""
        store = self.store
        return replace(self._status, first=store.first, last=store.last, pending=store.pending,
                       skipped=store.skipped, captured=self.ring.last, cleared=self._cleared,
                       generation=self._generation, ring_bytes=self.ring.bytes_stored,
                       ring_budget=self.ring.max_bytes)

    def status(self) -> FeedStatus:
        """The newest status (notices stay for advance())."""
        with self.lock:
            return self._counters()

    def advance(self) -> FeedStatus:
        """The newest status and the notices since the last call."""
        with self.lock:
            notices, self._notices = tuple(self._notices), []
            return replace(self._counters(), notices=notices)

    def _notify(self, text: str, error: bool = False) -> None:
        with self.lock:
            self._notices.append(Notice(text, error))

    # ------------------------------------------------------------------ rows and streams

    def rows(self, first: int, last: int) -> list[PacketSummary]:
        """Summaries of stored, analysed packets ``first..last``."""
        with self.lock:
            return self.store.summaries(first, min(last, self.store.last))

    def rows_at(self, numbers: Sequence[int]) -> list[PacketSummary | None]:
        """Summaries of the given packets (None for those gone)."""
        out: list[PacketSummary | None] = []
        with self.lock:
            for no in numbers:
                try:
                    out.append(self.store.summary(no))
                except IndexError:
                    out.append(None)
        return out

    def summary(self, no: int) -> PacketSummary:
        """One packet's row."""
        with self.lock:
            return self.store.summary(no)

    def stream(self, stream_id: int) -> StreamView:
        """One stream's facts."""
        with self.lock:
            return StreamView.of(self.store.stream(stream_id))

    def stream_of(self, no: int) -> StreamView | None:
        """The stream of packet ``no``."""
        with self.lock:
            stream = self.store.stream_of(no)
            return StreamView.of(stream) if stream is not None else None

    def find_stream(self, local: tuple[str, int], remote: tuple[str, int]) -> StreamView | None:
        """The newest stream whose two ends are ``local`` and ``remote``.

        Asked on every move of the connections cursor, and under a flood the
        store knows a hundred thousand streams: an index of their ends, kept
        up to date with the streams added since the last question, answers
        without a walk over all of them.
        """
        with self.lock:
            store = self.store
            streams = store.streams()
            if len(self._ends) > 4 * len(streams) + FOUND_CACHE:
                # Evicted streams' ends pile up under a flood: start over from those still stored.
                self._ends, self._indexed = {}, 0
            fresh = []
            for stream in reversed(streams):
                if stream.id <= self._indexed:
                    break
                fresh.append(stream)
            for stream in reversed(fresh):  # oldest first: the newest stream with the same ends wins
                self._ends[(stream.key.client, stream.key.server)] = stream.id
                self._ends[(stream.key.server, stream.key.client)] = stream.id
            if fresh:
                self._indexed = fresh[0].id
            stream_id = self._ends.get((_plain(local), _plain(remote)))
            if stream_id is None:
                return None
            try:
                return StreamView.of(store.stream(stream_id))
            except KeyError:  # evicted since
                return None

    def stream_packets(self, stream_id: int) -> tuple[int, ...]:
        """Packet numbers of one stream."""
        with self.lock:
            return tuple(self.store.stream_packets(stream_id))

    def flagged(self, stream_id: int) -> tuple[int, ...]:
        """Flagged packets of one stream."""
        with self.lock:
            store = self.store
            return tuple(no for no in store.stream_packets(stream_id) if store.analysis(no))

    def detail(self, no: int) -> PacketDetail:
        """One packet in depth."""
        with self.lock:
            store = self.store
            summary = store.summary(no)
            stream = store.stream_of(no)
            return PacketDetail(summary, tuple(store.dissect(no)), tuple(store.hexdump(no)),
                                tuple(store.analysis(no)), summary.length,
                                packet_statistics(self.ring, stream, no) if stream is not None else ())

    def follow(self, stream_id: int) -> Follow:
        """A stream's bytes, both directions, in order."""
        with self.lock:
            return self.store.follow(stream_id)

    def ladder(self, stream_id: int) -> Ladder:
        """A stream's ladder diagram."""
        with self.lock:
            return self.store.ladder(stream_id)

    # ------------------------------------------------------------------ graphs and conversations

    def _stats_views(self) -> StatsViews:
        """The graphs' and conversations' state (caller holds the lock); a clear (a new store) starts it over."""
        views = self._views
        if views is None or views.store is not self.store:
            views = self._views = StatsViews(self.ring, self.store)
        return views

    def _followed(self, stream_id: int) -> tuple[StatsViews, StreamFollower]:
        with self.lock:
            views = self._stats_views()
            return views, views.follower(stream_id)

    def graph_state(self, stream_id: int, limit: int) -> GraphState:
        """Read a graphed stream's new packets (``limit`` at most); where its graph stands."""
        views, follower = self._followed(stream_id)
        with views.lock:
            return views.graph_state(follower, limit)

    def add_kernel_sample(self, stream_id: int, sample: KernelSample) -> None:
        """Keep the kernel's view of a graphed stream."""
        views, follower = self._followed(stream_id)
        with views.lock:
            views.add_kernel_sample(follower, sample)

    def graph(self, stream_id: int, kind: str, direction: int | None,
              view: tuple[float, float] | None) -> GraphPicture:
        """One graph of a stream (built outside the feed's lock)."""
        views, follower = self._followed(stream_id)
        with views.lock:
            return views.graph(follower, kind, direction, view)

    def count_conversations(self, limit: int) -> int:
        """Count new packets for the conversation table."""
        with self.lock:
            return self._stats_views().count_conversations(limit)

    def conversations(self) -> ConversationTable:
        """The conversation table so far."""
        with self.lock:
            return self._stats_views().conversations()

    def release_statistics(self, stream_id: int | None = None) -> None:
        """Forget a graph's stream follower (``stream_id``) or the conversation tracker (None)."""
        with self.lock:
            if self._views is not None:
                self._views.release(stream_id)

    # ------------------------------------------------------------------ saving

    def save(self, path: str, events: SocketEvents | None = None) -> str:
        """Write the stored packets to ``path`` (made absolute) on a background thread (``events``: see PacketFeed)."""
        target = os.path.abspath(os.path.expanduser(path))
        count = len(self.ring)
        thread = threading.Thread(target=self._save, args=(target, events), name="netlens-save-pcap", daemon=True)
        thread.start()
        return f"Saving {count:,} packets to {target}…"

    def _save(self, target: str, events: SocketEvents | None) -> None:
        from netlens.capture.errors import PcapError

        try:
            if target.endswith(".pcapng"):
                # Wireshark's format, with each flagged packet's analysis and the server's socket
                # events as its comments (frame.comment); the events are gathered outside the lock.
                socket_events = list(events()) if events is not None else []
                with self.lock:
                    comments = packet_comments(self.store, socket_events)
                written = write_pcapng(target, self.ring, comments)
            else:
                written = write_pcap(target, self.ring)
        except (OSError, PcapError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).rstrip(".")
            self._notify(f"Could not save {target}: {reason}.", error=True)
            return
        self._notify(f"Saved {written:,} packets to {target}.")


class RecordedPacketFeed(StoreFeed):
    """Packets that do not change: a ring loaded from a pcap (or built for a test), analysed at once."""

    def __init__(self, ring: PacketRing, server_ports: Sequence[int] = ()) -> None:
        store = PacketStore(ring, server_ports=server_ports) if server_ports else PacketStore(ring)
        store.update(limit=None)
        super().__init__(ring, store, FeedState.RECORDED)

    def start(self) -> None:
        """Nothing to start."""

    def pause(self) -> str:
        """A recording does not capture."""
        return "This is a recording: there is no capture to pause."

    def resume(self) -> str:
        """A recording does not capture."""
        return self.pause()

    def clear(self) -> str:
        """A recording stays as it was recorded."""
        return "This is a recording: its packets stay."

    def close(self) -> None:
        """Nothing runs."""
