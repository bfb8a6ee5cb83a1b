"""The packets panel: a live, Wireshark-like packet list drawn from a :class:`PacketFeed`.

The panel only draws and forwards keys: capture, analysis, pausing, clearing
and saving belong to the feed (:mod:`netlens.capture.feed`). On the UI's
timer the panel takes the feed's newest status (:meth:`PacketFeed.advance`)
and lets the list grow to it; drawing asks the feed for the visible rows in
one batch, so its cost does not grow with the number of packets stored.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from netlens.capture.analysis import Severity
from netlens.capture.feed import FeedState, FeedStatus, PacketFeed, StreamView
from netlens.capture.summary import PacketSummary
from netlens.probe import SocketInfo
from netlens.ui.feeds import Feeds
from netlens.ui.format import count
from netlens.ui.widgets.virtual_list import VirtualList

HEADER = "    No.       Time  Source → Destination  Flags   Len  Info"
#: New packets since the last repaint above which the list counts as flooded.
FLOOD = 200
#: Row style by the worst analysis severity of the packet (before its TCP flags are looked at).
SEVERITY_STYLE = {Severity.WARNING: "bold black on yellow", Severity.ERROR: "bold white on red"}


def packet_style(summary: PacketSummary) -> str:
    """Colour of a row: its worst analysis severity first, then its class (handshake, teardown, reset, data)."""
    style = SEVERITY_STYLE.get(Severity(summary.severity))
    if style is not None:
        return style
    flags = summary.flags
    if "R" in flags:
        return "bold white on red"
    if "S" in flags:
        return "cyan"
    if "F" in flags:
        return "magenta"
    if summary.len:
        return "green"
    return ""


def endpoints(summary: PacketSummary) -> str:
    """``50012 → 65432`` on loopback (both ends the same host), full addresses otherwise."""
    if summary.sport is None:
        return f"{summary.src} → {summary.dst}"
    if summary.src == summary.dst:
        return f"{summary.sport:>5} → {summary.dport:<5}"
    return f"{summary.source} → {summary.destination}"


def packet_row(summary: PacketSummary) -> Text:
    """One row of the packet list (all fields already escaped by the capture layer).

    Like tshark's Info column, the interesting part (the message, the
    analysis) comes before the sequence numbers, so it shows in a narrow
    panel; on a SYN the numbers come first, before its options.
    """
    text = Text(no_wrap=True, style=packet_style(summary))
    text.append(f"{summary.no:>7} {summary.rel_time:10.6f}  {endpoints(summary):<21} ")
    if summary.proto != "TCP":
        text.append(f"{summary.proto:<11} {summary.info}")
        return text
    text.append(f"{summary.flags or '-':<4} {summary.len:>5}  ")
    for name in summary.analysis:
        text.append(f"[{name}] ", style="bold")
    numbers = f"seq={summary.seq} ack={summary.ack} win={summary.win}"
    if "S" in summary.flags:
        text.append(numbers)
        if summary.info:
            text.append("  " + summary.info, style="dim")
        return text
    if summary.info:
        text.append(summary.info + "  ")
    text.append(numbers, style="dim" if summary.info else "")
    return text


class PacketList(VirtualList):
    """Rows are packet numbers (all stored packets, or one stream's)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.feed: PacketFeed | None = None
        #: What the list shows: the feed's status when the list last grew.
        self.status = FeedStatus(FeedState.STOPPED)
        #: Packet numbers shown when filtered to one stream (None: all).
        self.only: tuple[int, ...] | None = None
        self._rows: dict[int, PacketSummary | None] = {}

    def number_at(self, index: int) -> int | None:
        """Packet number of row ``index``."""
        if index < 0:
            return None
        if self.only is not None:
            return self.only[index] if index < len(self.only) else None
        no = self.status.first + index
        return no if no <= self.status.last else None

    def index_of(self, no: int) -> int | None:
        """Row of packet ``no`` (None if it is not listed)."""
        if self.only is not None:
            i = bisect_left(self.only, no)
            return i if i < len(self.only) and self.only[i] == no else None
        index = no - self.status.first
        return index if 0 <= index < self.row_count() else None

    def row_count(self) -> int:
        if self.feed is None:
            return 0
        if self.only is not None:
            return len(self.only)
        return self.status.stored

    def render_lines(self, crop: Region) -> list[Strip]:
        # One batch from the feed for every row on screen, instead of one call per row.
        top = int(self.scroll_y) + crop.y
        self._rows = self._fetch(top, top + crop.height)
        return super().render_lines(crop)

    def _fetch(self, start: int, stop: int) -> dict[int, PacketSummary | None]:
        feed = self.feed
        width = self.size.width + int(self.scroll_x)
        # Rows whose drawing is cached need no data.
        wanted = (i for i in range(max(0, start), stop) if (i, width) not in self._cache)
        numbers = [n for n in (self.number_at(i) for i in wanted) if n is not None]
        if feed is None or not numbers:
            return {}
        if self.only is None:
            return {row.no: row for row in feed.rows(numbers[0], numbers[-1])}
        return dict(zip(numbers, feed.rows_at(numbers), strict=True))

    def render_row(self, index: int) -> Text:
        no = self.number_at(index)
        if no is None or self.feed is None:
            return Text("")
        summary = self._rows.get(no)
        if summary is None and no not in self._rows:
            try:
                summary = self.feed.summary(no)
            except IndexError:
                summary = None
        if summary is None:  # evicted between count and draw
            return Text(f"{no:>7} (no longer stored)", style="dim")
        return packet_row(summary)

    def row_width(self) -> int:
        return max(self.size.width, 160)


class PacketsView(Vertical):
    """Capture status line, column header and the packet list."""

    DEFAULT_CSS = """
    PacketsView { height: 1fr; }
    PacketsView #packets-header { height: 1; color: $text-muted; text-style: bold; }
    """

    def __init__(self, feeds: Feeds, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.feeds = feeds
        self.feed: PacketFeed | None = None
        self.status = FeedStatus(FeedState.STOPPED)
        self.filter_stream: int | None = None
        self._shown_last = 0

    def compose(self) -> ComposeResult:
        yield Static(id="packets-message")
        yield Static(Text(HEADER, no_wrap=True), id="packets-header")
        yield PacketList(id="packet-list")

    @property
    def panel(self) -> Widget | None:
        """The bordered panel around this view (its subtitle says what is filtered)."""
        parent = self.parent
        return parent if isinstance(parent, Widget) else None

    @property
    def list(self) -> PacketList:
        """The packet list widget."""
        return self.query_one(PacketList)

    @property
    def state(self) -> str:
        """``off``, or the feed's state (``starting``, ``running``, ``paused``, ``failed``, ``recorded``...)."""
        return "off" if self.feed is None else self.status.state.value

    def _message(self, text: str, error: bool = False) -> None:
        message = self.query_one("#packets-message", Static)
        message.update(Text(text))
        message.set_class(error, "error")
        message.display = bool(text)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect to the feeds' packets (a recording, or a capture that starts in the background)."""
        self.feed = self.feeds.packet_feed(yield_to=self._user_active)
        if self.feed is None:
            self._message("Packet capture is off (--no-capture).")
            return
        self.list.feed = self.feed
        self.feed.start()
        self.tick()

    def _user_active(self) -> bool:
        # Read by the feed's analysis thread: a plain attribute read, no UI call.
        return bool(getattr(self.app, "user_active", False))

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.close()

    # ------------------------------------------------------------------ the timer

    def tick(self) -> None:
        """Take the feed's newest status: state changes, finished saves, and the rows it analysed."""
        if self.feed is None:
            return
        old, status = self.status, self.feed.advance()
        self.status = status
        if status.state is not old.state or status.sentence != old.sentence:
            self._show_state(status)
        for notice in status.notices:
            self.app.notify(notice.text, severity="error" if notice.error else "information", markup=False)
        if status.generation != old.generation:
            self._restart_list()
        elif status.last != self._shown_last or status.first != old.first:
            self._shown_last = status.last
            self.list.status = status
            if self.filter_stream is not None:
                self.list.only = self.feed.stream_packets(self.filter_stream)
            self.list.rows_changed()

    def _show_state(self, status: FeedStatus) -> None:
        state = status.state
        if state is FeedState.FAILED:
            self._message(f"{status.sentence} Everything else keeps working.", error=True)
        elif state is FeedState.STARTING:
            self._message(f"Starting capture on {status.iface}…")
        elif state is FeedState.PAUSED:
            self._message("Capture paused (c resumes).")
        else:
            self._message("")
        self.tooltip = status.sentence if state is FeedState.RUNNING else None

    def _restart_list(self) -> None:
        self._shown_last = self.status.last
        self.list.status = self.status
        self.filter_stream = None
        self.list.only = None
        panel = self.panel
        if panel is not None:
            panel.border_subtitle = ""
        self.list.rows_changed(reset=True)

    def flooding(self) -> bool:
        """More new packets since the last repaint than anyone can read."""
        return self.feed is not None and self.feed.status().last - self._shown_last > FLOOD

    def status_text(self) -> Text:
        """Capture part of the status line."""
        status = self.status
        if self.feed is None:
            return Text("capture: off", style="dim")
        if status.state is FeedState.FAILED:
            return Text("capture: unavailable", style="bold red")
        if status.state is FeedState.RECORDED:
            return Text(f"packets {count(status.stored)} (recorded)")
        if status.state is FeedState.STARTING and not status.captured:
            return Text(f"capture: starting on {status.iface}", style="yellow")
        text = Text(f"{status.iface}: {count(status.captured)} pkts")
        if status.cleared:
            text.append(f" ({count(status.cleared)} cleared)", style="dim")
        if status.kernel_drops:
            text.append(f" {count(status.kernel_drops)} dropped", style="bold red")
        if status.pending > 2000:
            text.append(f" ({count(status.pending)} to analyse)", style="yellow")
        if status.skipped:
            text.append(f" ({count(status.skipped)} skipped by the analysis)", style="yellow")
        if status.state is FeedState.PAUSED:
            text.append(" paused", style="bold yellow")
        if status.ring_budget:
            # The capture's memory budget (--capture-buffer): beyond it the oldest frames go.
            text.append(f" {status.ring_bytes / 2**20:.1f}/{status.ring_budget / 2**20:.0f}M", style="dim")
        return text

    # ------------------------------------------------------------------ commands

    def stream_for(self, sock: SocketInfo | None) -> StreamView | None:
        """The newest captured stream between the socket's two ends."""
        if sock is None or self.feed is None:
            return None
        return self.feed.find_stream((sock.local_addr, sock.local_port), (sock.remote_addr, sock.remote_port))

    def toggle_filter(self, sock: SocketInfo | None) -> None:
        """Show only the selected connection's packets, or all of them again."""
        panel = self.panel
        if self.filter_stream is not None:
            self._set_filter(None)
            if panel is not None:
                panel.border_subtitle = ""
            return
        stream = self.stream_for(sock)
        if stream is None:
            self.app.notify("No captured packets belong to the selected connection.", severity="warning",
                            markup=False)
            return
        self._set_filter(stream)

    def follow_selection(self, sock: SocketInfo | None) -> None:
        """While filtering, switch the filter to a newly selected connection."""
        if self.filter_stream is None:
            return
        stream = self.stream_for(sock)
        if stream is not None and stream.id != self.filter_stream:
            self._set_filter(stream)

    def _set_filter(self, stream: StreamView | None) -> None:
        assert self.feed is not None
        self.filter_stream = stream.id if stream is not None else None
        self.list.only = None if stream is None else self.feed.stream_packets(stream.id)
        self.list.follow = True
        self.list.rows_changed(reset=True)
        panel = self.panel
        if panel is not None and stream is not None:
            panel.border_subtitle = f"stream {stream.id}: {stream.key} (f: all)"

    def toggle_pause(self) -> None:
        """Stop capturing (the packets and the counters stay), or start again into the same list."""
        if self.feed is None:
            self.app.notify("Packet capture is off (--no-capture).", severity="warning", markup=False)
            return
        paused = self.status.state is FeedState.PAUSED
        sentence = self.feed.resume() if paused else self.feed.pause()
        self.tick()
        if self.status.state not in (FeedState.PAUSED, FeedState.STARTING):
            self.app.notify(sentence, severity="warning", markup=False)

    def clear(self) -> None:
        """Forget every packet captured so far; numbering starts again at 1."""
        if self.feed is None:
            return
        sentence = self.feed.clear()
        self.tick()
        self.app.notify(sentence, markup=False)

    def nothing_to_save(self) -> str | None:
        """Why there is nothing to save (None: there is)."""
        if self.feed is None:
            return "There is nothing to save: packet capture is off (--no-capture)."
        if self.status.state is FeedState.FAILED:
            return "There is nothing to save: the capture could not start."
        if not self.feed.status().stored:
            return "There are no packets to save yet."
        return None

    def request_save(self) -> None:
        """Ask for a file name (if there is anything to save), then save in the background."""
        from netlens.ui.screens.prompts import PromptScreen

        reason = self.nothing_to_save()
        if reason is not None:
            self.app.notify(reason, severity="warning", markup=False)
            return
        default = time.strftime("netlens-%Y%m%d-%H%M%S.pcap")

        def chosen(value: str | None) -> None:
            if value:
                self.save(value)

        self.app.push_screen(PromptScreen("Save capture", "pcap file (readable by Wireshark, tshark, tcpdump):",
                                          default), chosen)

    def save(self, path: str) -> None:
        """Write every stored packet to ``path`` (relative to the working directory) as pcap, in the background.

        A ``.pcapng`` also carries, as packet comments, the analysis and the server's socket events of the
        events log (gathered on the saving thread from a copy of the log's records).
        """
        if self.feed is None:
            return
        from netlens.ui.socket_comments import socket_events
        from netlens.ui.widgets.events import EventLog

        logs = self.screen.query(EventLog)
        records = logs.first().records() if logs else []
        self.app.notify(self.feed.save(os.path.expanduser(path), lambda: socket_events(records)), markup=False)

    def selected_number(self) -> int | None:
        """Packet number under the list's cursor."""
        return self.list.number_at(self.list.cursor)
