"""The graph screen: one connection's tsg, throughput, RTT or window graph, redrawn as packets arrive.

The packet feed follows the stream where the packets are (in the app for a
recording, in the capture's helper process for a live capture): a thread of
the screen asks it to read the stream's new packets in small batches (asleep
most of the time; the feed skips ahead under a flood) and gets back only
counts (:class:`~netlens.capture.stats.views.GraphState`); the screen
redraws twice a second when something changed, from a graph the feed built.
Keys zoom and pan the time axis; a cursor picks a moment, and Enter (or a
click) leaves with the nearest packet's number, which the caller opens.

Key latency: a graph is built (by the feed), drawn by plotext and turned into screen lines
on a drawing thread (one drawing at a time; requests made meanwhile collapse
into one, for the newest state), which posts the result; the UI thread only
swaps the lines in. The cursor is drawn over the lines on the UI thread (well
under a millisecond), so moving it never waits for a drawing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.events import Click, Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from netlens.capture.feed import PacketFeed, StreamView
from netlens.capture.stats import KernelSample
from netlens.capture.stats.series import GRAPHS, Graph
from netlens.capture.stats.views import GraphState
from netlens.textsafe import safe_str
from netlens.ui.widgets.stream_graph import Drawing, StreamGraph, x_extent

#: Packets the feed reads per question, and the share of time the screen's thread keeps it busy.
BATCH = 500
DUTY = 0.15
REDRAW_EVERY = 0.5


class Drawn(Message):
    """The drawing thread finished a drawing of ``graph`` (from ``packets`` packets of the stream)."""

    def __init__(self, graph: Graph, drawing: Drawing, packets: int) -> None:
        super().__init__()
        self.graph = graph
        self.drawing = drawing
        self.packets = packets


class DrawFailed(Message):
    """A drawing failed; ``sentence`` says why."""

    def __init__(self, sentence: str) -> None:
        super().__init__()
        self.sentence = sentence


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

    def __init__(self, feed: PacketFeed, stream: StreamView, kind: str = "tsg",
                 kernel: Callable[[], KernelSample | None] | None = None) -> None:
        super().__init__()
        self.feed = feed
        self.stream = stream
        #: Where the feed's graph of the stream stands (None before its first answer).
        self.state: GraphState | None = None
        #: Why the stream cannot be graphed any more (cleared, evicted, the capture gone), or "".
        self.gone = ""
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
        #: Set when a new drawing is wanted; the drawing thread draws the newest state once per wake-up.
        self._draw_wanted = threading.Event()
        self._drawn_at = (-1, -1)
        self._thread = threading.Thread(target=self._follow, name="netlens-graph", daemon=True)
        self._drawer = threading.Thread(target=self._draw_loop, name="netlens-graph-draw", daemon=True)

    def compose(self) -> ComposeResult:
        yield Static(id="graph-status")
        yield StreamGraph(id="graph")
        yield Static(id="graph-note")
        yield Footer()

    def on_mount(self) -> None:
        self._thread.start()
        self._drawer.start()
        self.set_interval(REDRAW_EVERY, self._tick)
        self._tick()

    def on_unmount(self) -> None:
        self._stop.set()
        self._draw_wanted.set()
        self._thread.join(timeout=2)
        self._drawer.join(timeout=2)
        self.feed.release_statistics(self.stream.id)

    # ------------------------------------------------------------------ data

    def _follow(self) -> None:
        """Have the feed read the stream's new packets, keeping it busy at most ``DUTY`` of the time."""
        sent: tuple[object, ...] = ()
        while not self._stop.is_set():
            sample = self.kernel() if self.kernel is not None else None
            started = time.perf_counter()
            try:
                if sample is not None and tuple(sample[1:]) != sent:
                    self.feed.add_kernel_sample(self.stream.id, sample)
                    sent = tuple(sample[1:])
                self.state = state = self.feed.graph_state(self.stream.id, BATCH)
            except KeyError:
                self.gone = "no longer stored"
                self._stop.wait(REDRAW_EVERY)
                continue
            except RuntimeError as exc:  # the capture's helper failed on it: said on the status line, no traceback
                self.gone = safe_str(str(exc))
                self._stop.wait(REDRAW_EVERY)
                continue
            spent = time.perf_counter() - started
            self._stop.wait(0.05 if not state.behind else spent * (1 - DUTY) / DUTY)

    def _tick(self) -> None:
        state = self.state
        if state is not None and (state.graphed, state.kernel) != self._drawn_at:
            self._drawn_at = (state.graphed, state.kernel)
            self.redraw()
        else:
            self._show_status()

    def redraw(self) -> None:
        """Have the graph rebuilt and drawn off the UI thread; the status line changes at once."""
        self._show_status()
        self._draw_wanted.set()

    def on_resize(self, event: Resize) -> None:
        """A new size needs a new drawing."""
        self.redraw()

    def _draw_loop(self) -> None:
        """The drawing thread: one drawing per request, of the state at the time it starts (10-40 ms each)."""
        while True:
            self._draw_wanted.wait()
            if self._stop.is_set():
                return
            self._draw_wanted.clear()
            try:
                self._draw_now()
            except NoMatches:
                return  # the screen is closing
            except Exception as exc:
                # One sentence, never a traceback; the next request draws again.
                self.post_message(DrawFailed(f"Could not draw the graph: {type(exc).__name__}: {safe_str(str(exc))}"))

    def _draw_now(self) -> None:
        plot = self.query_one(StreamGraph)
        view, size, base = self.view, (plot.size.width, plot.size.height), plot.rich_style
        try:
            picture = self.feed.graph(self.stream.id, self.kind, self.direction, view)
        except KeyError:
            self.gone = "no longer stored"
            return
        drawing = plot.prepare(picture.graph, view or x_extent(picture.graph), size, base)
        self.post_message(Drawn(picture.graph, drawing, picture.packets))

    def on_draw_failed(self, message: DrawFailed) -> None:
        """Say why a drawing failed."""
        self.notify(message.sentence, severity="error", markup=False)

    def on_drawn(self, message: Drawn) -> None:
        """A drawing is ready: show it (with the cursor where it is now)."""
        self._install(message.graph, message.drawing, message.packets)

    def _install(self, graph: Graph, drawing: Drawing, packets: int) -> None:
        self.graph = graph
        self.drawn_packets = packets
        self.query_one(StreamGraph).install(drawing, self.cursor)
        self.query_one("#graph-note", Static).update(Text(graph.note), layout=False)
        self._show_status()

    def _show_status(self) -> None:
        state = self.state
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {self.kind} ", style="bold reverse")
        text.append(f" stream {self.stream.id}: {self.stream.key} ")
        text.append(f" {state.graphed if state is not None else 0:,} packets graphed")
        if state is not None and state.behind:
            text.append(f", {state.behind:,} to read", style="yellow")
        if state is not None and state.missed:
            text.append(f", {state.missed:,} skipped", style="yellow")
        if self.gone:
            text.append(f", {self.gone}", style="yellow")
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
        state = self.state
        current = (state.data_direction if state is not None else 0) if self.direction is None else self.direction
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
        """Move the cursor a fortieth of the view; it appears in the middle first (drawn at once, no rebuild)."""
        lo, hi = self._current_view()
        self.cursor = (lo + hi) / 2 if self.cursor is None else min(hi, max(lo, self.cursor + steps * (hi - lo) / 40))
        self._show_cursor()

    def _show_cursor(self) -> None:
        self.query_one(StreamGraph).set_cursor(self.cursor)
        self._show_status()

    def action_reset(self) -> None:
        """Back to the live view: all of the stream (its newest part when long), no cursor."""
        self.view = None
        self.cursor = None
        self._show_cursor()
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


def kernel_sampler(snapshot_of: Callable[[], object], stream: StreamView) -> Callable[[], KernelSample | None]:
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
