"""The packets panel: a live, Wireshark-like packet list over the capture ring.

The capture thread only appends raw frames to the ring. This panel analyses
new packets on the UI's timer within a time budget (so a flood never stalls a
key press), and draws only the rows on screen, so its cost does not grow with
the number of packets stored.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from netlens.capture import PacketRing, PacketStore, PacketSummary
from netlens.probe import SocketInfo
from netlens.ui.format import count
from netlens.ui.messages import CaptureFailed, CaptureStarted
from netlens.ui.widgets.virtual_list import VirtualList

if TYPE_CHECKING:
    from netlens.capture import Capture, Stream
    from netlens.ui.feeds import Feeds

#: Packets analysed per hold of the store's lock (about a millisecond of work).
ANALYSIS_BATCH = 200
#: Share of the time the analysis thread may work (it sleeps the rest).
ANALYSIS_DUTY = 0.3
#: Packets the analysis may lag behind the capture before it jumps to the present.
MAX_BACKLOG = 100_000
#: How many of the newest packets it analyses after such a jump.
CATCH_UP = 10_000

HEADER = "    No.       Time  Source → Destination  Flags   Len  Info"


class LockedStore:
    """A :class:`PacketStore` shared by the analysis thread and the UI thread.

    The store is not thread-safe, so every method call holds one lock; plain
    counters (``first``, ``last``, ``pending``...) are read without it. The
    analysis thread holds the lock for one small batch at a time, so a frame
    waits at most about a millisecond to draw its rows.
    """

    def __init__(self, store: PacketStore) -> None:
        self._store = store
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr
        lock = self.lock

        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return attr(*args, **kwargs)

        return locked


def packet_style(summary: PacketSummary) -> str:
    """Colour of a row by its class: handshake, teardown, reset, data, analysis warning."""
    flags = summary.flags
    if summary.analysis and any(name in ("retransmission", "zero-window", "out-of-order", "window-full", "dup-ack",
                    "spurious-retransmission", "fast-retransmission", "lost-segment")
           for name in summary.analysis):
        return "bold black on yellow"
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
    analysis) comes before the sequence numbers, so it shows in a narrow panel.
    """
    text = Text(no_wrap=True, style=packet_style(summary))
    text.append(f"{summary.no:>7} {summary.rel_time:10.6f}  {endpoints(summary):<21} ")
    if summary.proto != "TCP":
        text.append(f"{summary.proto:<11} {summary.info}")
        return text
    text.append(f"{summary.flags or '-':<4} {summary.len:>5}  ")
    for name in summary.analysis:
        text.append(f"[{name}] ", style="bold")
    if summary.info:
        text.append(summary.info + "  ")
    text.append(f"seq={summary.seq} ack={summary.ack} win={summary.win}", style="dim" if summary.info else "")
    return text


class PacketList(VirtualList):
    """Rows are packet numbers (all analysed packets, or one stream's)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store: LockedStore | None = None
        #: Packet numbers shown when filtered to one stream (None: all).
        self.only: list[int] | None = None

    def number_at(self, index: int) -> int | None:
        """Packet number of row ``index``."""
        store = self.store
        if store is None or index < 0:
            return None
        if self.only is not None:
            return self.only[index] if index < len(self.only) else None
        no = store.first + index
        return no if no <= store.last else None

    def index_of(self, no: int) -> int | None:
        """Row of packet ``no`` (None if it is not listed)."""
        if self.store is None:
            return None
        if self.only is not None:
            from bisect import bisect_left

            i = bisect_left(self.only, no)
            return i if i < len(self.only) and self.only[i] == no else None
        index = no - self.store.first
        return index if 0 <= index < self.row_count() else None

    def row_count(self) -> int:
        store = self.store
        if store is None:
            return 0
        if self.only is not None:
            return len(self.only)
        return max(0, int(store.last) - int(store.first) + 1)

    def render_row(self, index: int) -> Text:
        no = self.number_at(index)
        if no is None or self.store is None:
            return Text("")
        try:
            return packet_row(self.store.summary(no))
        except (KeyError, IndexError):  # evicted between count and draw
            return Text(f"{no:>7} (no longer stored)", style="dim")

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
        self.ring: PacketRing | None = None
        self.store: LockedStore | None = None
        self.capture: Capture | None = None
        #: Packets the analysis skipped to keep up with a flood.
        self.jumped = 0
        self._shown_last = 0
        self.state = "off"  # off | starting | running | paused | failed | recorded
        self.filter_stream: int | None = None

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

    def _message(self, text: str, error: bool = False) -> None:
        message = self.query_one("#packets-message", Static)
        message.update(Text(text))
        message.set_class(error, "error")
        message.display = bool(text)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load recorded packets, or start capturing in a worker (scapy loads off the UI's path)."""
        recorded = getattr(self.feeds, "packets", None)
        if recorded is not None:
            self.store = LockedStore(recorded)
            self.ring = recorded.ring
            self.list.store = self.store
            self.state = "recorded"
            self._message("")
            self.list.rows_changed(reset=True)
            return
        if not self.feeds.capture_wanted:
            self.state = "off"
            self._message("Packet capture is off (--no-capture).")
            return
        self.ring = PacketRing()
        self._new_store()
        self.state = "starting"
        self._message(f"Starting capture on {self.feeds.iface}…")
        self._start_capture()
        self._analyse()

    def _new_store(self) -> None:
        assert self.ring is not None
        self.store = LockedStore(PacketStore(self.ring, server_ports=(self.feeds.server.address[1],)))
        self.list.store = self.store
        self._shown_last = 0

    @work(thread=True, exclusive=True, group="analysis", name="packet analysis")
    def _analyse(self) -> None:
        """Analyse packets as they arrive, in small locked batches, off the UI thread.

        Under a flood it can fall behind; past MAX_BACKLOG packets it jumps to
        the newest CATCH_UP ones, so the list stays live (the skipped packets
        still list, unanalysed) instead of showing the past ever later.
        """
        worker = get_current_worker()
        while not worker.is_cancelled:
            store = self.store
            if store is None or self.ring is None or getattr(self.app, "user_active", False):
                # Nothing to do, or a key was just pressed: leave the GIL to the keyboard.
                time.sleep(0.02)
                continue
            if store.pending > MAX_BACKLOG:
                self.jumped += store.skip_to(self.ring.last + 1 - CATCH_UP)
            started = time.perf_counter()
            if not store.update(limit=ANALYSIS_BATCH):
                time.sleep(0.02)
                continue
            # At most ANALYSIS_DUTY of the time: the server and the keyboard share this
            # process's one GIL with us, and a flood must not take it from them.
            busy = time.perf_counter() - started
            time.sleep(busy * (1 / ANALYSIS_DUTY - 1))

    @work(thread=True, exclusive=True, group="capture", name="capture")
    def _start_capture(self) -> None:
        """Open the capture (imports scapy: ~0.5 s, so never on the UI thread)."""
        from netlens.capture import Capture, CaptureError

        assert self.ring is not None
        capture = Capture(self.feeds.iface, port=self.feeds.server.address[1], ring=self.ring)
        try:
            capture.start()
        except CaptureError as exc:
            self.post_message(CaptureFailed(str(exc)))
            return
        self.capture = capture
        self.post_message(CaptureStarted(capture.filter_note))

    def on_capture_started(self, message: CaptureStarted) -> None:
        self.state = "running"
        self._message("")
        self.tooltip = message.note

    def on_capture_failed(self, message: CaptureFailed) -> None:
        self.state = "failed"
        self._message(f"{message.sentence} Everything else keeps working.", error=True)

    def on_unmount(self) -> None:
        if self.capture is not None:
            self.capture.stop(timeout=0.5)

    # ------------------------------------------------------------------ the timer

    def tick(self) -> None:
        """Let the list grow to what the analysis thread has reached."""
        store = self.store
        if store is None or self.state == "recorded":
            return
        last = store.last
        if last != self._shown_last:
            self._shown_last = last
            if self.filter_stream is not None:
                self.list.only = store.stream_packets(self.filter_stream)
            self.list.rows_changed()

    def flooding(self) -> bool:
        """More new packets since the last repaint than anyone can read."""
        store = self.store
        return store is not None and store.last - self._shown_last > 200

    def status_text(self) -> Text:
        """Capture part of the status line."""
        if self.state == "failed":
            return Text("capture: unavailable", style="bold red")
        if self.state == "off":
            return Text("capture: off", style="dim")
        if self.state == "recorded" and self.store is not None:
            return Text(f"packets {count(self.store.last - self.store.first + 1)} (recorded)")
        if self.capture is None:
            return Text(f"capture: starting on {self.feeds.iface}", style="yellow")
        stats = self.capture.stats()
        text = Text(f"{self.feeds.iface}: {count(stats.captured)} pkts")
        if stats.kernel_drops:
            text.append(f" {count(stats.kernel_drops)} dropped", style="bold red")
        if self.store is not None and self.store.pending > ANALYSIS_BATCH * 10:
            text.append(f" ({count(self.store.pending)} to analyse)", style="yellow")
        if self.jumped:
            text.append(f" ({count(self.jumped)} skipped by the analysis)", style="yellow")
        if self.state == "paused":
            text.append(" paused", style="bold yellow")
        return text

    # ------------------------------------------------------------------ commands

    def stream_for(self, sock: SocketInfo | None) -> Stream | None:
        """The newest captured stream between the socket's two ends."""
        if sock is None or self.store is None:
            return None
        local, remote = (sock.local_addr, sock.local_port), (sock.remote_addr, sock.remote_port)
        streams: list[Stream] = self.store.streams()
        for stream in reversed(streams):
            if stream.key.matches(local, remote):
                return stream
        return None

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
        self._set_filter(stream.id)

    def follow_selection(self, sock: SocketInfo | None) -> None:
        """While filtering, switch the filter to a newly selected connection."""
        if self.filter_stream is None:
            return
        stream = self.stream_for(sock)
        if stream is not None and stream.id != self.filter_stream:
            self._set_filter(stream.id)

    def _set_filter(self, stream_id: int | None) -> None:
        assert self.store is not None
        self.filter_stream = stream_id
        self.list.only = None if stream_id is None else self.store.stream_packets(stream_id)
        self.list.follow = True
        self.list.rows_changed(reset=True)
        panel = self.panel
        if panel is not None and stream_id is not None:
            panel.border_subtitle = f"stream {stream_id}: {self.store.stream(stream_id).key} (f: all)"

    def toggle_pause(self) -> None:
        """Stop capturing (the packets stay), or start again into the same ring."""
        if self.state == "running" and self.capture is not None:
            self.capture.stop(timeout=0.5)
            self.state = "paused"
            self._message("Capture paused (c resumes).")
        elif self.state == "paused":
            self.state = "starting"
            self._message(f"Resuming capture on {self.feeds.iface}…")
            self._start_capture()
        else:
            self.app.notify("The capture is not running.", severity="warning", markup=False)

    def clear(self) -> None:
        """Forget every packet captured so far (numbering goes on)."""
        if self.ring is None or self.state == "recorded":
            return
        self.ring.clear()
        self._new_store()
        self.filter_stream = None
        self.list.only = None
        self.list.rows_changed(reset=True)

    def save(self, path: str) -> None:
        """Write every stored packet to ``path`` as pcap."""
        from netlens.capture import write_pcap

        if self.ring is None or len(self.ring) == 0:
            self.app.notify("There are no packets to save yet.", severity="warning", markup=False)
            return
        try:
            written = write_pcap(path, self.ring)
        except OSError as exc:
            self.app.notify(f"Could not save {path}: {exc.strerror or exc}.", severity="error", markup=False)
            return
        self.app.notify(f"Saved {written} packets to {path}.", markup=False)

    def selected_number(self) -> int | None:
        """Packet number under the list's cursor."""
        return self.list.number_at(self.list.cursor)
