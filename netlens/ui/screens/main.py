"""The main screen: connections, socket inspector, events and packets, side by side.

Nothing here waits for the server loop: the server's view of its
connections comes with each kernel snapshot (read in the probe worker),
the inspected connection's buffers are read by a worker of their own, the
status line's counters by the app's watcher thread. The server's events are
drained ten times a second; those that end or half-close a connection
restyle its rows at once (:class:`~netlens.ui.facts.FactBook`).
"""

from __future__ import annotations

import time
from functools import partial

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from netlens.display import endpoint
from netlens.probe import RowStatus, Snapshot, SocketInfo
from netlens.server import ConnectionSnapshot, ServerStats
from netlens.ui.facts import Ends, FactBook
from netlens.ui.feeds import Feeds
from netlens.ui.fit import fit_line
from netlens.ui.format import count
from netlens.ui.kernel_events import interleave
from netlens.ui.kernel_jump import kernel_to_packet, packet_to_kernel
from netlens.ui.kernel_trace import KernelTraceView, connection_packets
from netlens.ui.kernel_view import KernelUpdate
from netlens.ui.messages import ServerView
from netlens.ui.screens.packet import PacketScreen
from netlens.ui.status_figures import key_wait_text, memory_text, overflow_text, work_text
from netlens.ui.widgets.connections import ConnectionsTable, Selection, peer_key, row_key, server_key
from netlens.ui.widgets.events import EventLog
from netlens.ui.widgets.inspector import Inspected, SocketInspector
from netlens.ui.widgets.packets import PacketList, PacketsView
from netlens.ui.widgets.virtual_list import VirtualList

#: New event rows per tick above which the lists repaint less often...
FLOOD_ROWS = 50
#: ...namely every this many seconds (each part; one part per tick).
FLOOD_PAINT = 0.5
#: Longest a key press may hold back a data repaint (seconds).
MAX_DEFER = 5.0
#: Seconds the server's facts are kept (the kernel has caught up long before).
FACT_MEMORY = 120.0
#: Seconds a connection opened from the UI is looked for, to select it.
SELECT_WAIT = 5.0
#: Seconds the cursor rests on a connection before its buffers are read from the server.
FETCH_DELAY = 0.1
#: While keys keep coming, the panes that follow the cursor (inspector, filters) are brought up to date at
#: the latest this many seconds after the first move they have not shown yet (seconds)...
SELECTION_WAIT = 0.5
#: ...checking this often whether the keys paused.
SELECTION_POLL = 0.05


class Panel(Vertical):
    """A bordered, titled panel that ``m`` can maximize."""

    ALLOW_MAXIMIZE = True


class MainScreen(Screen[None]):
    """All four views of the server's sockets at once."""

    # Quit and Help first: at 80 columns the footer shows the first few keys only.
    BINDINGS = [
        Binding("q", "app.quit", "Quit"),
        Binding("question_mark,f1", "app.help", "Help", key_display="?"),
        Binding("s", "app.send", "Send"),
        Binding("o", "app.open_client", "Open conn"),
        Binding("r", "app.toggle_read", "Pause read"),
        Binding("X", "app.abort_conn", "RST"),
        Binding("m", "app.maximize", "Maximize"),
        Binding("n", "app.clients", "N clients"),
        Binding("f", "app.filter_packets", "Filter pkts"),
        Binding("ctrl+s", "app.save_pcap", "Save pcap"),
        Binding("w", "app.shutdown", "SHUT_WR", show=False),
        Binding("x", "app.close_conn", "Close", show=False),
        Binding("d", "app.nodelay", "NODELAY", show=False),
        Binding("b", "app.rcvbuf", "SO_RCVBUF", show=False),
        Binding("e", "app.filter_events", "Filter events", show=False),
        Binding("c", "app.toggle_capture", "Capture", show=False),
        Binding("C", "app.clear_capture", "Clear capture", show=False),
        Binding("g", "goto_connection", "Packet's connection", show=False),
        Binding("G", "graph", "Graphs", show=False),
        Binding("k", "kernel_jump", "Packet ⇄ kernel events", show=False),
        Binding("v", "conversations", "Conversations", show=False),
    ]

    def __init__(self, feeds: Feeds) -> None:
        super().__init__()
        self.feeds = feeds
        self.server_conns: dict[tuple[str, int, str, int], ConnectionSnapshot] = {}
        #: The server's latest word on each connection end (from its events).
        self.facts = FactBook()
        #: The server's counters, refreshed by the app's watcher (None until the first reading).
        self.stats: ServerStats | None = None
        self.probe_note: str | None = None
        self.last_snapshot: Snapshot | None = None
        #: The full server view (buffers too) of the connection the inspector shows, and which was asked for.
        self.inspected: ConnectionSnapshot | None = None
        self.inspect_conn: int | None = None
        self._kernel_ts = 0.0
        #: Events log rows kept since its last repaint.
        self._unpainted = 0
        #: Kernel tracing of the server's port (started once the server is bound).
        self.kernel_trace = KernelTraceView(None)
        self._select_later: tuple[Ends, float] | None = None
        self._fetch_timer: Timer | None = None
        #: Connection ends the server said something about that the table has not shown yet.
        self._touched: set[Ends] = set()
        #: A cursor move's inspector update is waiting for the move's frame (and for the keys to pause), since when.
        self._selection_due = False
        self._selection_moved = 0.0
        #: When each part of the screen was last repainted by the tick.
        self._painted = {"events": 0.0, "packets": 0.0, "status": 0.0, "facts": 0.0}
        self._flooding = False
        self._trace_polled = 0.0

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

    @property
    def server_port(self) -> int:
        """The port the server listens on."""
        return self.feeds.server.address[1]

    def tick(self) -> None:
        """10 Hz: take the new socket events; repaint the lists and the status line.

        Every tick reads what the server published since the last one: its
        facts (a connection's close or reset) and the events log's records
        are kept at once, a few milliseconds of work for a tick's worth of
        flood; what costs is repainting. The server's news about a
        connection's end reaches its rows on the next repaint ("facts").
        Under a flood (hundreds of new rows a second) the lists, the rows'
        news and the status line repaint twice a second instead, one of them
        per tick: nobody reads rows scrolling that fast, and each repaint
        takes time from key presses and from the server sharing the process.
        While keys are being pressed nothing is repainted (the key's frame
        comes first) for up to MAX_DEFER seconds; overdue repaints then come
        one per tick.
        """
        records = self.feeds.events.drain_records()
        active = getattr(self.app, "user_active", False)
        now = time.monotonic()
        if records:
            self._touched |= self.facts.ingest(records)
        # Under a flood the kernel's events are taken every FLOOD_PAINT seconds (each take keeps the newest and
        # counts the rest): building them is per-event work on the UI thread, and the panel scrolls too fast to
        # read anyway. A key just pressed: its frame first, the kernel's events after it.
        poll = not active and (not self._flooding or now - self._trace_polled >= FLOOD_PAINT)
        if poll:
            self._trace_polled = now
        kernel = self.kernel_trace.drain(records, poll=poll)
        if kernel:
            records = interleave(records, kernel)
        if records:
            # Kept now (appending moves no row on screen), shown when the events part repaints.
            self.events.add(records, paint=False)
            self._unpainted += len(records)
        flooding = self._flooding = self._unpainted > FLOOD_ROWS or self.packets.flooding()
        if active or flooding:
            wait = MAX_DEFER if active else FLOOD_PAINT
            due = sorted((last, part) for part, last in self._painted.items() if now - last >= wait)
            parts = [part for _, part in due[:1]]  # the longest waiting
        else:
            parts = list(self._painted)
        for part in parts:
            self._painted[part] = now
            if part == "facts":
                if self._touched:
                    self._apply_facts()
            elif part == "events":
                self._unpainted = 0
                self.events.paint()
            elif part == "packets":
                self.packets.tick()
            else:
                self.refresh_status()

    def _apply_facts(self) -> None:
        touched, self._touched = self._touched, set()
        redrawn = self.table.apply_facts(touched, self.feeds.now())
        selection = self.table.selection
        if selection is not None and selection.key in redrawn:
            self.refresh_inspector()

    def apply_snapshot(self, view: KernelUpdate) -> None:
        """A kernel snapshot (with the server's view of that moment) arrived: show both, and the facts since."""
        self.probe_note = view.snapshot.note
        #: The newest kernel snapshot, for the graph screen's srtt/cwnd lines.
        self.last_snapshot = view.snapshot
        now = self.feeds.now()
        self._kernel_ts = view.update.ts
        self.server_conns = {(s.local[0], s.local[1], s.peer[0], s.peer[1]): s for s in view.server}
        for snap in view.server:
            self.facts.learn(snap.conn, snap.local, snap.peer)
        if view.inspected_conn is not None and view.inspected_conn == self.inspect_conn:
            self.inspected = view.inspected
        self.facts.forget_before(now - FACT_MEMORY)
        listening_since = self.stats.started if self.stats is not None else None
        self.table.apply(view.update, self.server_conns, now, self.facts, listening_since, self.server_port)
        subtitle = f"+ {view.hidden_time_wait:,} more TIME_WAIT not shown" if view.hidden_time_wait else ""
        panel = self.query_one("#connections-panel")
        if panel.border_subtitle != subtitle:
            panel.border_subtitle = subtitle
        self._select_pending()
        self.kernel_trace.fold(view.snapshot.sockets, view.snapshot.ts)
        self.refresh_inspector()

    # ------------------------------------------------------------------ the inspector

    def refresh_inspector(self) -> None:
        """Show the selected socket in the inspector (the server's view of it read off the UI thread)."""
        selection = self.table.selection
        inspector = self.query_one(SocketInspector)
        now = self.feeds.now()
        if selection is None:
            inspector.show(None, now)
            return
        sock = selection.socket
        gone = selection.status is RowStatus.CLOSED
        snap = None if gone else self.server_snapshot_of(selection)
        if snap is not None and snap.conn != self.inspect_conn:
            self._fetch_server_view(snap.conn)
        full = self.inspected if snap is not None and self.inspected is not None \
            and self.inspected.conn == snap.conn else snap
        row = self.table.row(selection.key)
        fact = self.facts.fact(server_key(sock), row.first_seen if row is not None else 0.0)
        if sock.state == "LISTEN":
            side = ""
        else:
            side = "server" if sock.local_port == self.server_port else \
                "client" if sock.remote_port == self.server_port else ""

        def kernel() -> list[Text]:
            stream = self.packets.stream_for(sock)
            packets = connection_packets(self.packets.feed, stream.id if stream is not None else None)
            return self.kernel_trace.sections(sock, packets, now, inspector.size.width)

        inspector.show(Inspected(sock, full, side, gone, fact, self._kernel_ts, kernel,
                                 self.kernel_trace.signature(sock)), now)

    def _fetch_server_view(self, conn: int) -> None:
        """Read the server's full view of ``conn`` (buffers too): in a worker when live (it waits for the loop).

        While the cursor keeps moving only the connection it rests on is read
        (a moment after the last move), not every one it passes.
        """
        self.inspect_conn = conn
        self.inspected = None
        if not self.feeds.live:
            self.inspected = next(iter(self.feeds.server.snapshot(conn=conn)), None)
            return
        if self._fetch_timer is not None:
            self._fetch_timer.stop()
        self._fetch_timer = self.set_timer(FETCH_DELAY, partial(self._start_fetch, conn))

    def _start_fetch(self, conn: int) -> None:
        self._fetch_timer = None
        if conn == self.inspect_conn:
            self.app.run_worker(partial(self._read_server_view, conn), thread=True, exclusive=True,
                                group="inspect", name="server view", exit_on_error=False)

    def _read_server_view(self, conn: int) -> None:
        snapshot = next(iter(self.feeds.server.snapshot(conn=conn)), None)
        self.post_message(ServerView(conn, snapshot))

    def on_server_view(self, message: ServerView) -> None:
        """The inspected connection's full view arrived."""
        if message.conn == self.inspect_conn:
            self.inspected = message.snapshot
            self.refresh_inspector()

    def server_snapshot_of(self, selection: Selection) -> ConnectionSnapshot | None:
        """The server's view of the selected connection (its own row, or its peer's for a client socket)."""
        sock = selection.socket
        return self.server_conns.get(server_key(sock)) or self.server_conns.get(peer_key(sock))

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

    def on_virtual_table_row_highlighted(self, event: ConnectionsTable.RowHighlighted) -> None:
        """Moving the cursor shows that connection in the inspector (and filters, if on), after its frame.

        The table's cursor row is painted first; the inspector (tens of
        milliseconds under a flood) follows once, for wherever the cursor is
        by then, however many moves came in between: when the keys pause
        (the app's input grace), and while they keep coming at the latest
        SELECTION_WAIT seconds after the first move it has not shown.
        """
        if not self._selection_due:
            self._selection_due = True
            self._selection_moved = time.monotonic()
            self.call_after_refresh(self._settle_selection)

    @property
    def selection_shown(self) -> bool:
        """True once the inspector shows the connection under the cursor (it follows a move after its frame)."""
        return not self._selection_due

    def _settle_selection(self) -> None:
        """Show the selection now, unless keys are still coming and it has not waited SELECTION_WAIT yet."""
        if not self._selection_due:
            return
        keys = getattr(self.app, "user_active", False)
        if keys and time.monotonic() - self._selection_moved < SELECTION_WAIT:
            self.set_timer(SELECTION_POLL, self._settle_selection)
            return
        self._show_selection()

    def _show_selection(self) -> None:
        self._selection_due = False
        self.refresh_inspector()
        if self.events.conn_filter is not None:
            conn = self.selected_conn()
            if conn is not None and conn != self.events.conn_filter:
                self.events.set_filter(conn)
        self.packets.follow_selection(self.selected_socket())

    def select_when_seen(self, client: tuple[str, int], server: tuple[str, int]) -> None:
        """Select the server's end of this new connection as soon as the kernel lists it."""
        self._select_later = ((server[0], server[1], client[0], client[1]), time.monotonic() + SELECT_WAIT)
        self._select_pending()

    def _select_pending(self) -> None:
        if self._select_later is None:
            return
        end, until = self._select_later
        key = self.table.key_of_end(end)
        if key is not None and self.table.select_key(key):
            self.table.focus()
            self._select_later = None
        elif time.monotonic() > until:
            self._select_later = None

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
        """The one-line summary at the top: whole parts are left out when it is too narrow, never cut."""
        stats = self.stats
        mode = stats.mode if stats is not None else self.feeds.config.mode
        address = stats.address if stats is not None else self.feeds.server.address
        parts: list[tuple[Text, int]] = [
            (Text(" netlens ", style="bold reverse"), 10),
            (Text(f" {mode} server ", style="bold"), 9),
            (Text(endpoint(*address), style="bold cyan"), 10),
        ]
        if stats is not None:
            parts += [(Text(f"  conns {stats.active}"), 8), (Text(f"  accepted {count(stats.accepted)}"), 6)]
            # An echo server answers no requests: what it echoed is its figure.
            parts.append((Text(f"  {work_text(stats)}"), 7))
            parts.append((Text(f"  errors {count(stats.protocol_errors)}"), 5))
            parts.append((key_wait_text(self.feeds.server.key_gate), 4))
        events = Text(f"  events {count(self.events.total)}")
        dropped = self.feeds.events.dropped
        if dropped:
            events.append(f" ({count(dropped)} dropped)", style="bold red")
        parts.append((events, 4))
        parts.append((Text("  ").append_text(self.packets.status_text()), 6))
        kernel = self.kernel_trace.status()
        if kernel:
            parts.append((Text("  ").append_text(kernel), 3))  # the first to go on a narrow line
        if stats is not None and self.feeds.live:  # the kernel's counter says nothing about a recording
            overflows = overflow_text(stats)
            if overflows.plain:
                parts.append((overflows, 9))
        if stats is not None:
            # The memory each budget holds goes under the events panel, whose history it mostly is.
            panel = self.query_one("#events-panel")
            subtitle = memory_text(stats, self.events.bytes, self.events.budget)
            if panel.border_subtitle != subtitle:
                panel.border_subtitle = subtitle
        if self.probe_note:
            parts.append((Text("  kernel: " + self.probe_note, style="yellow"), 8))
        line = fit_line(parts, self.size.width or 200, Text("  ? help ", style="dim"))
        # The status line is one fixed row: no layout pass for its updates.
        self.query_one("#status", Static).update(line, layout=False)
