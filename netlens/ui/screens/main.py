"""The main screen: connections, socket inspector, packets and events, side by side."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from netlens.display import endpoint
from netlens.probe import Snapshot, SocketInfo
from netlens.server import ConnectionSnapshot
from netlens.server.bus import EventRecord
from netlens.ui.feeds import Feeds
from netlens.ui.format import count
from netlens.ui.kernel_events import interleave
from netlens.ui.kernel_jump import kernel_to_packet, packet_to_kernel
from netlens.ui.kernel_trace import KernelTraceView, connection_packets
from netlens.ui.kernel_view import KernelUpdate
from netlens.ui.screens.packet import PacketScreen
from netlens.ui.status_figures import memory_text, overflow_text, work_text
from netlens.ui.widgets.connections import ConnectionsTable, Selection, row_key, server_key
from netlens.ui.widgets.events import EventLog
from netlens.ui.widgets.inspector import SocketInspector
from netlens.ui.widgets.packets import PacketList, PacketsView
from netlens.ui.widgets.virtual_list import VirtualList

#: New event rows per tick above which the lists repaint less often...
FLOOD_ROWS = 50
#: ...namely every this many seconds.
FLOOD_PAINT = 0.25
#: Longest a key press may hold back a data repaint (seconds).
MAX_DEFER = 5.0


class Panel(Vertical):
    """A bordered, titled panel that ``m`` can maximize."""

    ALLOW_MAXIMIZE = True


class MainScreen(Screen[None]):
    """All four views of the server's sockets at once."""

    BINDINGS = [
        Binding("s", "app.send", "Send"),
        Binding("n", "app.clients", "N clients"),
        Binding("r", "app.toggle_read", "Pause read"),
        Binding("w", "app.shutdown", "SHUT_WR", show=False),
        Binding("x", "app.close_conn", "Close", show=False),
        Binding("X", "app.abort_conn", "RST"),
        Binding("d", "app.nodelay", "NODELAY", show=False),
        Binding("b", "app.rcvbuf", "SO_RCVBUF", show=False),
        Binding("f", "app.filter_packets", "Filter pkts"),
        Binding("e", "app.filter_events", "Filter events", show=False),
        Binding("m", "app.maximize", "Maximize"),
        Binding("c", "app.toggle_capture", "Capture", show=False),
        Binding("C", "app.clear_capture", "Clear capture", show=False),
        Binding("ctrl+s", "app.save_pcap", "Save pcap"),
        Binding("g", "goto_connection", "Packet's connection", show=False),
        Binding("k", "kernel_jump", "Packet ⇄ kernel events", show=False),
        Binding("G", "graph", "Graphs", show=False),
        Binding("v", "conversations", "Conversations", show=False),
    ]

    def __init__(self, feeds: Feeds) -> None:
        super().__init__()
        self.feeds = feeds
        self.server_conns: dict[tuple[str, int, str, int], ConnectionSnapshot] = {}
        self.probe_note: str | None = None
        self.last_snapshot: Snapshot | None = None
        self._pending: list[EventRecord] = []
        #: Kernel tracing of the server's port (started once the server is bound).
        self.kernel_trace = KernelTraceView(None)
        #: When each part of the screen was last repainted by the tick.
        self._painted = {"events": 0.0, "packets": 0.0, "status": 0.0}

    def compose(self) -> ComposeResult:
        # Full width for the two tables (connections, packets), the per-connection
        # views (socket inspector, events) side by side between them.
        yield Static(id="status")
        with Panel(id="connections-panel", classes="panel"):
            yield ConnectionsTable(id="connections")
        with Horizontal(id="middle"):
            with Panel(id="inspector-panel", classes="panel"):
                yield SocketInspector(id="inspector")
            with Panel(id="events-panel", classes="panel"):
                yield EventLog(id="events")
        with Panel(id="packets-panel", classes="panel"):
            yield PacketsView(self.feeds, id="packets")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#connections-panel").border_title = "Connections"
        self.query_one("#inspector-panel").border_title = "Socket"
        self.query_one("#packets-panel").border_title = "Packets"
        self.query_one("#events-panel").border_title = "Events"
        self.query_one(ConnectionsTable).focus()

    # ------------------------------------------------------------------ data in

    @property
    def table(self) -> ConnectionsTable:
        """The connections table."""
        return self.query_one(ConnectionsTable)

    @property
    def events(self) -> EventLog:
        """The events log."""
        return self.query_one(EventLog)

    @property
    def packets(self) -> PacketsView:
        """The packets panel."""
        return self.query_one(PacketsView)

    def tick(self) -> None:
        """10 Hz: take the new socket events; repaint the lists and the status line.

        Under a flood (hundreds of new rows a second) the repaint runs at 4 Hz
        instead: nobody reads rows scrolling that fast, and each repaint takes
        time from key presses and from the server sharing the process. While
        keys are being pressed the repaints wait (the key's frame comes
        first), and when they are overdue they come one panel per tick, so no
        single frame carries them all.
        """
        records = self.feeds.events.drain_records()
        self._pending.extend(records)
        kernel = self.kernel_trace.drain(records)
        if kernel:
            self._pending = interleave(self._pending, kernel)
        now = time.monotonic()
        flooding = len(self._pending) > FLOOD_ROWS or self.packets.flooding()
        interval = FLOOD_PAINT if flooding else 0.0
        if getattr(self.app, "user_active", False):
            due = [part for part, last in self._painted.items() if now - last >= MAX_DEFER]
            parts = due[:1]
        else:
            parts = [part for part, last in self._painted.items() if now - last >= interval]
        for part in parts:
            self._painted[part] = now
            if part == "events":
                if self._pending:
                    self.events.add(self._pending)
                    self._pending = []
            elif part == "packets":
                self.packets.tick()
            else:
                self.refresh_status()

    def apply_snapshot(self, view: KernelUpdate) -> None:
        """A kernel snapshot arrived (rows already tracked): merge it with the server's view."""
        self.probe_note = view.snapshot.note
        #: The newest kernel snapshot, for the graph screen's srtt/cwnd lines.
        self.last_snapshot = view.snapshot
        now = self.feeds.now()
        self.server_conns = {(s.local[0], s.local[1], s.peer[0], s.peer[1]): s
                             for s in self.feeds.server.snapshot(buffers=False)}
        self.table.apply(view.update, self.server_conns, now)
        subtitle = f"+ {view.hidden_time_wait:,} older TIME_WAIT not shown" if view.hidden_time_wait else ""
        panel = self.query_one("#connections-panel")
        if panel.border_subtitle != subtitle:
            panel.border_subtitle = subtitle
        self.kernel_trace.fold(view.snapshot.sockets, view.snapshot.ts)
        self.refresh_inspector()

    def refresh_inspector(self) -> None:
        """Show the selected connection in the inspector."""
        selection = self.table.selection
        inspector = self.query_one(SocketInspector)
        if selection is None:
            inspector.show(None, None, self.feeds.now())
            return
        snap = self.server_snapshot_of(selection)
        if snap is not None:
            # The table's copy has no buffers; the inspector shows this one connection's.
            snap = next(iter(self.feeds.server.snapshot(conn=snap.conn)), snap)
        sock, now = selection.socket, self.feeds.now()

        def kernel() -> list[Text]:
            stream = self.packets.stream_for(sock)
            packets = connection_packets(self.packets.feed, stream.id if stream is not None else None)
            return self.kernel_trace.sections(sock, packets, now, inspector.size.width)

        inspector.show(sock, snap, now, closed=selection.status.value == "closed", kernel=kernel,
                       kernel_sig=self.kernel_trace.signature(sock))

    def server_snapshot_of(self, selection: Selection) -> ConnectionSnapshot | None:
        """The server's view of the selected connection (its own row, or its peer's for a client socket)."""
        sock = selection.socket
        snap = self.server_conns.get(server_key(sock))
        if snap is None:
            # A client-side socket: the server's connection is the one whose peer it is.
            snap = self.server_conns.get((sock.remote_addr, sock.remote_port, sock.local_addr, sock.local_port))
        return snap

    def selected_conn(self) -> int | None:
        """The server connection id the selection stands for, if any."""
        selection = self.table.selection
        if selection is None:
            return None
        snap = self.server_snapshot_of(selection)
        return snap.conn if snap is not None else None

    def selected_socket(self) -> SocketInfo | None:
        """The kernel record under the cursor."""
        selection = self.table.selection
        return selection.socket if selection is not None else None

    def on_data_table_row_highlighted(self, event: ConnectionsTable.RowHighlighted) -> None:
        """Moving the cursor shows that connection in the inspector (and filters, if on)."""
        self.refresh_inspector()
        if self.events.conn_filter is not None:
            conn = self.selected_conn()
            if conn is not None and conn != self.events.conn_filter:
                self.events.set_filter(conn)
        self.packets.follow_selection(self.selected_socket())

    # ------------------------------------------------------------------ packets

    def on_virtual_list_selected(self, event: VirtualList.Selected) -> None:
        """Enter on a packet opens its detail screen."""
        if not isinstance(event.list, PacketList):
            return
        feed = self.packets.feed
        no = event.list.number_at(event.index)
        if feed is None or no is None:
            return

        def back(result: int | None) -> None:
            if result is not None:
                self.goto_connection_of(result)

        self.app.push_screen(PacketScreen(feed, no), back)

    def start_kernel_trace(self) -> None:
        """Trace the server's port from now on (once it is bound)."""
        self.kernel_trace = KernelTraceView(self.feeds.trace_feed())
        self.kernel_trace.start(self.app, self.feeds.live)

    def action_kernel_jump(self) -> None:
        """k: from a packet to the kernel's events at its time; from an event back to the packet."""
        jump = kernel_to_packet if self.focused is self.events else packet_to_kernel
        sentence = jump(self.events, self.packets)
        if sentence:
            self.app.notify(sentence, severity="warning", markup=False)

    def action_graph(self) -> None:
        """Graphs of the selected connection (or of the packet under the cursor's connection)."""
        from netlens.ui.screens.graph_hook import open_graph

        open_graph(self)

    def action_conversations(self) -> None:
        """The conversation table of everything captured."""
        from netlens.ui.screens.graph_hook import open_conversations

        open_conversations(self)

    def action_goto_connection(self) -> None:
        """Select the connection of the packet under the cursor."""
        no = self.packets.selected_number()
        if no is not None:
            self.goto_connection_of(no)

    def goto_connection_of(self, no: int) -> None:
        """Move the connections cursor to the socket packet ``no`` belongs to (server side first)."""
        feed = self.packets.feed
        stream = feed.stream_of(no) if feed is not None else None
        if stream is None:
            self.app.notify("That packet is not part of a TCP connection.", severity="warning", markup=False)
            return
        key = stream.key
        family = "IPv6" if ":" in key.server[0] else "IPv4"
        for local, remote in ((key.server, key.client), (key.client, key.server)):
            if self.table.select_key(row_key((family, local[0], local[1], remote[0], remote[1]))):
                self.table.focus()
                return
        self.app.notify(f"Connection {key} is no longer in the table (it closed a while ago).",
                        severity="warning", markup=False)

    # ---------------------------------------------------------------- status line

    def refresh_status(self) -> None:
        """The one-line summary at the top."""
        server = self.feeds.server
        stats = server.stats()
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" netlens ", style="bold reverse")
        text.append(f" {stats.mode} server ", style="bold")
        text.append(endpoint(*stats.address), style="bold cyan")
        text.append(f"  conns {stats.active}  accepted {count(stats.accepted)}  "
                    f"{work_text(stats)}  errors {count(stats.protocol_errors)}  ")
        dropped = self.feeds.events.dropped
        text.append(f"events {count(self.events.total)}")
        if dropped:
            text.append(f" ({count(dropped)} dropped)", style="bold red")
        text.append("  ")
        text.append_text(self.packets.status_text())
        if self.feeds.live:  # the kernel's counter says nothing about a recording
            text.append_text(overflow_text(stats))
        # The memory each budget holds goes under the events panel, whose history it mostly is.
        panel = self.query_one("#events-panel")
        panel.border_subtitle = memory_text(stats, self.events.bytes, self.events.budget)
        kernel = self.kernel_trace.status()
        if kernel:
            text.append("  ")
            text.append_text(kernel)
        if self.probe_note:
            text.append("  kernel: " + self.probe_note, style="yellow")
        text.append("   ? help", style="dim")
        # The status line is one fixed row: no layout pass for its updates.
        self.query_one("#status", Static).update(text, layout=False)
