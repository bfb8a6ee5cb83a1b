"""The graph screen: one connection's tsg, throughput, RTT or window graph, redrawn as packets arrive.

A :class:`~netlens.capture.stats.tracker.StreamFollower` reads the stream's
new packets on a thread of its own (in small batches, asleep most of the
time, skipping ahead under a flood), and the screen redraws twice a second
when something changed. Keys zoom and pan the time axis; a cursor picks a
moment, and Enter (or a click) leaves with the nearest packet's number, which
the caller opens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Click, Resize
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import Footer, Static

from netlens.capture.ring import PacketRing
from netlens.capture.stats import KernelSample
from netlens.capture.stats.series import GRAPHS, Graph, build_graph
from netlens.capture.stats.tracker import StreamFollower
from netlens.capture.streams import Stream
from netlens.ui.widgets.stream_graph import StreamGraph, Thinned, x_extent

#: Packets the follower reads per batch, and the share of time it may work.
BATCH = 200
DUTY = 0.15
#: Unread packets after which it jumps to the newest ones (the status line says how many it skipped).
MAX_BEHIND = 50_000
#: Segments a live view shows at most (older ones are a zoom-out away).
LIVE_POINTS = 20_000
REDRAW_EVERY = 0.5


class GraphScreen(Screen[int | None]):
    """Graphs of one stream; dismisses with a packet number to open (or None)."""

    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("t", "kind('tsg')", "Time-seq"),
        Binding("p", "kind('throughput')", "Throughput"),
        Binding("r", "kind('rtt')", "RTT"),
        Binding("w", "kind('window')", "Window"),
        Binding("tab", "next_kind", "Next graph", show=False),
        Binding("d", "direction", "Direction"),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in"),
        Binding("minus", "zoom(2.0)", "Zoom out"),
        Binding("left", "pan(-0.25)", "Pan", show=False),
        Binding("right", "pan(0.25)", "Pan", show=False),
        Binding("comma", "cursor(-1)", "Cursor", show=False),
        Binding("full_stop", "cursor(1)", "Cursor", show=False),
        Binding("enter", "jump", "Go to packet"),
        Binding("0,home", "reset", "Live view"),
    ]

    def __init__(self, ring: PacketRing, stream: Stream, kind: str = "tsg",
                 kernel: Callable[[], KernelSample | None] | None = None) -> None:
        super().__init__()
        self.ring = ring
        self.follower = StreamFollower(ring, stream)
        self.kind = kind if kind in GRAPHS else "tsg"
        self.kernel = kernel
        self.direction: int | None = None
        #: Visible x range in seconds since the capture's first packet (None: follow the newest data).
        self.view: tuple[float, float] | None = None
        self.cursor: float | None = None
        self.graph: Graph | None = None
        #: Packets of the stream the graph on screen was built from.
        self.drawn_packets = 0
        self._stop = threading.Event()
        #: One drawing at a time (they share plotext's figure); a request newer than a waiting one wins.
        self._draw_lock = threading.Lock()
        self._draw_wanted = 0
        self._drawn_at = (-1, -1)
        #: What the last drawing was built from, and its graph and thinned traces: a cursor move reuses them.
        self._built_from: tuple[object, ...] = ()
        self._built: tuple[Graph, list[Thinned]] | None = None
        self._thread = threading.Thread(target=self._follow, name="netlens-graph", daemon=True)

    def compose(self) -> ComposeResult:
        yield Static(id="graph-status")
        yield StreamGraph(id="graph")
        yield Static(id="graph-note")
        yield Footer()

    def on_mount(self) -> None:
        self._thread.start()
        self.set_interval(REDRAW_EVERY, self._tick)
        self._tick()

    def on_unmount(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    # ------------------------------------------------------------------ data

    def _follow(self) -> None:
        """Read the stream's packets as they are indexed, working at most ``DUTY`` of the time."""
        follower = self.follower
        while not self._stop.is_set():
            if follower.behind > MAX_BEHIND:
                follower.skip_to_newest(BATCH * 10)
            started = time.perf_counter()
            done = follower.update(BATCH)
            spent = time.perf_counter() - started
            self._stop.wait(0.05 if not done else spent * (1 - DUTY) / DUTY)

    def _tick(self) -> None:
        stats = self.follower.stats
        if self.kernel is not None:
            sample = self.kernel()
            if sample is not None and (not stats.kernel or stats.kernel[-1][1:] != sample[1:]):
                with self.follower.lock:
                    stats.kernel.append(sample)
        state = (sum(stats.packets), len(stats.kernel))
        if state != self._drawn_at:
            self._drawn_at = state
            self.redraw()
        else:
            self._show_status()

    def _live_start_ns(self, direction: int) -> int | None:
        segments = self.follower.stats.series[direction].segments
        if len(segments) <= LIVE_POINTS:
            return None
        return segments.flat[(len(segments) - LIVE_POINTS) * segments.width]

    def redraw(self) -> None:
        """Rebuild and redraw the graph off the UI thread; the status line changes at once."""
        self._show_status()
        self._draw_wanted += 1
        self._draw(self._draw_wanted)

    def on_resize(self, event: Resize) -> None:
        """A new size needs a new drawing."""
        self.redraw()

    @work(thread=True, group="graph-draw", exit_on_error=False)
    def _draw(self, request: int) -> None:
        """Build the graph from the statistics and let plotext draw it (a worker: 10-40 ms of work)."""
        with self._draw_lock:
            if request == self._draw_wanted:
                self._draw_now()

    def _draw_now(self) -> None:
        stats = self.follower.stats
        origin = self.ring.first_ts_ns or stats.first_ts
        direction = stats.data_direction() if self.direction is None else self.direction
        plot = self.query_one(StreamGraph)
        view = self.view
        with self.follower.lock:
            packets = sum(stats.packets)
            built_from = (self.kind, direction, view, packets, len(stats.kernel), plot.size)
            if built_from != self._built_from or self._built is None:
                if view is None:
                    start_ns, stop_ns = self._live_start_ns(direction), None
                else:
                    start_ns, stop_ns = origin + int(view[0] * 1e9), origin + int(view[1] * 1e9)
                self._built = (build_graph(self.kind, stats, direction, origin, start_ns, stop_ns), [])
        graph, thinned = self._built
        # Only the cursor moved since the last drawing: same graph, same points, only plotext runs again.
        shown = thinned if built_from == self._built_from else None
        strips, shown = plot.prepare(graph, view or x_extent(graph), self.cursor, shown)
        self._built_from, self._built = built_from, (graph, shown)
        self.app.call_from_thread(self._install, graph, strips, shown, packets)

    def _install(self, graph: Graph, strips: list[Strip], shown: list[Thinned], packets: int) -> None:
        self.graph = graph
        self.drawn_packets = packets
        self.query_one(StreamGraph).install(strips, shown)
        self.query_one("#graph-note", Static).update(Text(graph.note), layout=False)
        self._show_status()

    def _show_status(self) -> None:
        follower = self.follower
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {self.kind} ", style="bold reverse")
        text.append(f" stream {follower.stream.id}: {follower.stream.key} ")
        text.append(f" {sum(follower.stats.packets):,} packets graphed")
        if follower.behind:
            text.append(f", {follower.behind:,} to read", style="yellow")
        if follower.missed:
            text.append(f", {follower.missed:,} skipped", style="yellow")
        text.append("  live" if self.view is None else f"  {self.view[0]:.3f}–{self.view[1]:.3f} s")
        if self.cursor is not None:
            no = self.query_one(StreamGraph).nearest_packet(self.cursor)
            text.append(f"  cursor {self.cursor:.6f} s → packet {no}", style="bold")
        self.query_one("#graph-status", Static).update(text, layout=False)

    # ------------------------------------------------------------------ keys

    def _current_view(self) -> tuple[float, float]:
        if self.view is not None:
            return self.view
        return x_extent(self.graph) if self.graph is not None else (0.0, 1.0)

    def action_kind(self, kind: str) -> None:
        """Show another graph of the same stream."""
        self.kind = kind
        self.redraw()

    def action_next_kind(self) -> None:
        """Cycle tsg → throughput → rtt → window."""
        self.action_kind(GRAPHS[(GRAPHS.index(self.kind) + 1) % len(GRAPHS)])

    def action_direction(self) -> None:
        """Graph the other side's data."""
        stats = self.follower.stats
        current = stats.data_direction() if self.direction is None else self.direction
        self.direction = 1 - current
        self.redraw()

    def action_zoom(self, factor: float) -> None:
        """Narrow (< 1) or widen (> 1) the time axis around the cursor or the middle."""
        lo, hi = self._current_view()
        centre = self.cursor if self.cursor is not None else (lo + hi) / 2
        span = max((hi - lo) * factor, 1e-6)
        self.view = (centre - span / 2, centre + span / 2)
        self.redraw()

    def action_pan(self, share: float) -> None:
        """Move the time axis by a share of its width."""
        lo, hi = self._current_view()
        step = (hi - lo) * share
        self.view = (lo + step, hi + step)
        self.redraw()

    def action_cursor(self, steps: int) -> None:
        """Move the cursor a fortieth of the view; it appears in the middle first."""
        lo, hi = self._current_view()
        self.cursor = (lo + hi) / 2 if self.cursor is None else min(hi, max(lo, self.cursor + steps * (hi - lo) / 40))
        self.redraw()

    def action_reset(self) -> None:
        """Back to the live view: all of the stream (its newest part when long), no cursor."""
        self.view = None
        self.cursor = None
        self.redraw()

    def action_jump(self) -> None:
        """Leave with the packet nearest the cursor."""
        if self.cursor is None:
            self.action_cursor(0)
            return
        self.dismiss(self.query_one(StreamGraph).nearest_packet(self.cursor))

    def on_click(self, event: Click) -> None:
        """A click on the plot moves the cursor there and opens the nearest packet."""
        plot = self.query_one(StreamGraph)
        if event.widget is not plot:
            return
        lo, hi = self._current_view()
        # plotext leaves about 10 cells for the y ticks on the left and 2 on the right.
        inner = max(1, plot.size.width - 12)
        share = min(1.0, max(0.0, (event.x - 10) / inner))
        self.cursor = lo + share * (hi - lo)
        self.dismiss(plot.nearest_packet(self.cursor))

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)


def kernel_sampler(snapshot_of: Callable[[], object], stream: Stream) -> Callable[[], KernelSample | None]:
    """A function giving the kernel's srtt/rttvar/cwnd for the stream's client socket, from the newest probe.

    ``snapshot_of()`` returns the latest :class:`~netlens.probe.Snapshot` (or None). The
    client sends the data in the usual upload direction; its socket is the one whose
    local end is the stream's client end.
    """
    def sample() -> KernelSample | None:
        snapshot = snapshot_of()
        for sock in getattr(snapshot, "sockets", ()):
            if (sock.local_addr, sock.local_port) == stream.key.client and \
                    (sock.remote_addr, sock.remote_port) == stream.key.server:
                info = sock.tcp_info
                if info is None or info.rtt_us is None:
                    return None
                cwnd = (info.snd_cwnd or 0) * (info.snd_mss or 0)
                return KernelSample(time.time_ns(), info.rtt_us, info.rttvar_us or 0, cwnd)
        return None
    return sample
