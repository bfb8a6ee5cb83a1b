"""The netlens Textual app: keys and actions, background workers, and where their messages land."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from netlens.errors import UserError
from netlens.server import (
    AbortConnection,
    CloseConnection,
    Control,
    ControlError,
    PauseReading,
    PortInUseError,
    ResumeReading,
    SetOption,
    ShutdownWrite,
    SocketOption,
)
from netlens.textsafe import safe_str
from netlens.ui.feeds import Feeds
from netlens.ui.kernel_view import KernelUpdate, KernelView
from netlens.ui.messages import ClientDone, KernelSnapshot, ProbeFailed
from netlens.ui.runtime import ProcessPolicy
from netlens.ui.screens.help import HelpScreen
from netlens.ui.screens.main import MainScreen, Panel
from netlens.ui.screens.prompts import PortInUseScreen, PromptScreen, SendScreen, TooSmallScreen

#: Smallest terminal the four panels fit in.
MIN_SIZE = (80, 24)
#: How often the kernel is asked (seconds): every second, like `watch ss`; each table update
#: redraws the visible rows (DataTable re-renders them all after any cell update).
PROBE_INTERVAL = 1.0
#: UI refresh of events/packets/status (seconds): drained in batches, never one message per packet.
TICK = 0.1
#: After a key press, data repaints wait this long (seconds) so the key's own frame is cheap...
INPUT_GRACE = 0.15
#: ...but never longer than this while keys keep coming (held arrow keys).
MAX_DEFER = 5.0


class NetlensApp(App[int]):
    """Server, sockets, events and packets of the teaching server, live."""

    CSS_PATH = "app.tcss"
    TITLE = "netlens"
    ENABLE_COMMAND_PALETTE = True

    # Keys that work everywhere; the ones that act on the main screen's panels live there.
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("f12", "take_screenshot", "Screenshot", show=False),
        Binding("L", "labs", "Labs", show=False),
    ]

    def __init__(self, feeds: Feeds, *, animate: bool = True) -> None:
        super().__init__()
        self.feeds = feeds
        self.main: MainScreen | None = None
        self._policy = ProcessPolicy()
        self._last_key = 0.0
        self._kernel_pending: KernelUpdate | None = None
        self._kernel_applied = 0.0
        self._too_small: TooSmallScreen | None = None
        if not animate:
            self.animation_level = "none"

    # ----------------------------------------------------------------- lifecycle

    def get_default_screen(self) -> Screen[None]:
        self.main = MainScreen(self.feeds)
        return self.main

    def on_mount(self) -> None:
        self._policy.fast_thread_switches()  # see netlens.ui.runtime
        # After the first refresh: the main screen's panels exist and the first frame is up.
        self.call_after_refresh(self._start_server)

    def _start_server(self) -> None:
        try:
            self.feeds.start_server()
        except PortInUseError as exc:
            port = self.feeds.config.port
            self.push_screen(PortInUseScreen(str(exc), port + 1 if port < 65535 else 0), self._port_chosen)
            return
        except UserError as exc:
            self.exit(return_code=exc.exit_code, message=str(exc))
            return
        self._server_started()

    def _port_chosen(self, port: int | None) -> None:
        if port is None:
            self.exit(return_code=2)
            return
        try:
            self.feeds.restart_server(port)  # type: ignore[attr-defined]
        except PortInUseError as exc:
            self.push_screen(PortInUseScreen(str(exc), port + 1 if 0 < port < 65535 else 0), self._port_chosen)
            return
        self._server_started()

    def _server_started(self) -> None:
        assert self.main is not None
        self.main.packets.start()
        self.main.start_kernel_trace()
        if self.feeds.live:
            self.set_interval(TICK, self._tick)
            self.probe_loop()
        else:
            # A recording never changes: read it once, synchronously, so its screens are deterministic.
            self.main.apply_snapshot(KernelView().fold(self.feeds.probe()))
            self.main.tick()
        self.main.refresh_status()
        self.check_size()
        self._tame_garbage_collector()

    def _tame_garbage_collector(self) -> None:
        """Keep the garbage collector's pauses away from key presses (see netlens.ui.runtime)."""
        self._policy.tame_garbage_collector()
        self.set_interval(1.0, lambda: self._policy.collect_if_idle(self._last_key))

    async def on_event(self, event: events.Event) -> None:
        # Every key, whoever handles it: the data panels defer their repaints to it.
        if isinstance(event, events.Key):
            self._last_key = time.monotonic()
        await super().on_event(event)

    @property
    def user_active(self) -> bool:
        """True right after a key press: data repaints wait so the key's frame comes first."""
        return time.monotonic() - self._last_key < INPUT_GRACE

    def _tick(self) -> None:
        if self.main is not None and self.main.is_running:
            try:
                self.main.tick()
            except NoMatches:
                pass  # closing

    def on_unmount(self) -> None:
        if self.main is not None:
            self.main.kernel_trace.stop()
        self.feeds.stop()
        self._policy.restore()

    def on_resize(self) -> None:
        # After the refresh: by then the app's size is the new one.
        self.call_after_refresh(self.check_size)

    def check_size(self) -> None:
        """Show a clear message instead of a mangled layout when the terminal is too small."""
        width, height = self.size
        too_small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        if too_small and self._too_small is None:
            self._too_small = TooSmallScreen(MIN_SIZE)
            self.push_screen(self._too_small)
        elif too_small and self._too_small is not None and self._too_small.is_mounted:
            self._too_small.show_size(width, height)
        elif not too_small and self._too_small is not None:
            if self.screen is self._too_small:
                self.pop_screen()
            self._too_small = None

    # ------------------------------------------------------------------- workers

    @work(thread=True, exclusive=True, group="probe", name="kernel probe")
    def probe_loop(self) -> None:
        """Ask the kernel about the server's sockets about twice a second (thread: it blocks on netlink).

        Tracking and folding the rows happens here too, off the UI thread. The
        pace adapts: a snapshot that took long (tens of thousands of sockets)
        waits four times as long before the next, so probing never takes more
        than a fifth of a core from the server that shares this process.
        """
        worker = get_current_worker()
        view = KernelView()
        while not worker.is_cancelled:
            started = time.perf_counter()
            try:
                snapshot = self.feeds.probe()
            except UserError as exc:
                self.post_message(ProbeFailed(str(exc)))
                time.sleep(2.0)
                continue
            folded = view.fold(snapshot, time.perf_counter() - started)
            self.post_message(KernelSnapshot(folded))
            time.sleep(max(PROBE_INTERVAL, 4 * (time.perf_counter() - started)))

    def on_kernel_snapshot(self, message: KernelSnapshot) -> None:
        self._kernel_pending = message.view
        if self.user_active:
            # The table redraw costs tens of milliseconds: not in the middle of key presses.
            self.set_timer(INPUT_GRACE, self._apply_kernel)
        else:
            self._apply_kernel()

    def _apply_kernel(self) -> None:
        view, self._kernel_pending = self._kernel_pending, None
        if view is None or self.main is None or not self.main.is_running:
            return
        if self.user_active and time.monotonic() - self._kernel_applied < MAX_DEFER:
            self._kernel_pending = view
            self.set_timer(INPUT_GRACE, self._apply_kernel)
            return
        self._kernel_applied = time.monotonic()
        try:
            self.main.apply_snapshot(view)
        except NoMatches:
            pass  # the app is closing and its panels are already gone

    def on_probe_failed(self, message: ProbeFailed) -> None:
        if self.main is not None:
            self.main.probe_note = message.sentence

    def on_client_done(self, message: ClientDone) -> None:
        self.say("\n".join(message.lines), error=message.error)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures end up: a sentence, never a traceback."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            sentence = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
            self.say(f"{event.worker.name} stopped: {sentence}", error=True)

    # ------------------------------------------------------------------- helpers

    def say(self, text: str, error: bool = False) -> None:
        """A notification that never interprets markup (it may quote wire bytes)."""
        self.notify(safe_str(text).replace("\\n", "\n"), severity="error" if error else "information",
                    markup=False, timeout=6 if error else 4)

    def _control(self, make: Callable[..., Control], **kwargs: Any) -> None:
        assert self.main is not None
        conn = self.main.selected_conn()
        if conn is None:
            self.say("Select a live server connection first (a row whose Server view shows #N, "
                     "or the client end of one).", error=True)
            return
        control = make(conn=conn, **kwargs)
        future = self.feeds.server.submit(control)

        def done(_: object) -> None:
            try:
                result = future.result()
            except ControlError as exc:
                self.call_from_thread(self.say, str(exc), True)
            else:
                self.call_from_thread(self.say, result)

        future.add_done_callback(done)

    # ------------------------------------------------------------------- actions

    def action_help(self) -> None:
        """Keys and the TCP primer."""
        self.push_screen(HelpScreen())

    def action_maximize(self) -> None:
        """Maximize the focused panel, or restore it."""
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        # The panel around the focused widget, whatever that widget allows by itself.
        node = screen.focused
        while node is not None and not isinstance(node, Panel):
            node = node.parent  # type: ignore[assignment]
        if node is not None:
            screen.maximize(node, container=False)

    def action_toggle_read(self) -> None:
        """Pause or resume reading the selected connection."""
        assert self.main is not None
        conn = self.main.selected_conn()
        paused = any(s.conn == conn and s.paused for s in self.main.server_conns.values())
        self._control(ResumeReading if paused else PauseReading)

    def action_shutdown(self) -> None:
        """shutdown(SHUT_WR) the selected connection."""
        self._control(ShutdownWrite)

    def action_close_conn(self) -> None:
        """Close the selected connection."""
        self._control(CloseConnection)

    def action_abort_conn(self) -> None:
        """Abort the selected connection with RST."""
        self._control(AbortConnection)

    def action_nodelay(self) -> None:
        """Toggle TCP_NODELAY on the selected connection."""
        assert self.main is not None
        conn = self.main.selected_conn()
        on = any(s.conn == conn and s.options.get("TCP_NODELAY") for s in self.main.server_conns.values())
        self._control(SetOption, option=SocketOption.TCP_NODELAY, value=0 if on else 1)

    def action_rcvbuf(self) -> None:
        """Ask for an SO_RCVBUF size and set it on the selected connection."""

        def validate(text: str) -> str | None:
            return None if text.strip().isdigit() and int(text) > 0 else "Give a positive number of bytes."

        def chosen(value: str | None) -> None:
            if value:
                self._control(SetOption, option=SocketOption.SO_RCVBUF, value=int(value))

        self.push_screen(PromptScreen("Set SO_RCVBUF", "Receive buffer size in bytes (the kernel doubles it). "
                                      "Small values make the window fill quickly.", "4096",
                                      validate=validate), chosen)

    def action_send(self) -> None:
        """Compose and send a request from a client in a background thread."""
        self.push_screen(SendScreen(self.feeds.config.mode), self._send)

    def _send(self, choice: tuple[str, str, bool] | None) -> None:
        if choice is not None:
            self.send_request(*choice)

    @work(thread=True, group="clients", name="client")
    def send_request(self, kind: str, text: str, slow: bool) -> None:
        """Run one client request (thread: it blocks on its socket)."""
        from netlens.server import clients

        host, port = self.feeds.server.address
        try:
            if kind == "echo":
                echoed = clients.echo(host, port, [text.encode("utf-8")])
                lines = [f"echo: {echoed!r}"]
            else:
                reply = clients.request(host, port, "search" if kind == "search" else "binary", text,
                                        chunk_size=1 if slow else None, chunk_delay=0.01 if slow else 0.0)
                lines = [f"{reply.request.describe()} -> {reply.response.describe()}",
                         f"{reply.sent_bytes} bytes out, {reply.received_bytes} back in "
                         f"{reply.elapsed * 1000:.1f} ms"]
        except UserError as exc:
            self.post_message(ClientDone([str(exc)], error=True))
            return
        self.post_message(ClientDone(lines))

    def action_clients(self) -> None:
        """Ask how many clients to start, then run them in the background."""

        def validate(text: str) -> str | None:
            ok = text.strip().isdigit() and 1 <= int(text) <= 1000
            return None if ok else "Give a number from 1 to 1000."

        def chosen(value: str | None) -> None:
            if value:
                self.run_clients(int(value))

        self.push_screen(PromptScreen("Start clients", "How many concurrent clients (one request each)?",
                                      "10", validate=validate), chosen)

    @work(thread=True, group="clients", name="clients")
    def run_clients(self, n: int) -> None:
        """N concurrent clients, one request each (thread)."""
        from netlens.server.load import LoadRunner

        host, port = self.feeds.server.address
        try:
            result = LoadRunner(host, port, self.feeds.config.mode, clients=n, requests=1).run()
        except UserError as exc:
            self.post_message(ClientDone([str(exc)], error=True))
            return
        self.post_message(ClientDone([f"{n} clients: {result.completed} answered, {result.errors} errors, "
                                      f"p50 {result.percentile(50) * 1000:.1f} ms"], error=bool(result.errors)))

    def action_filter_events(self) -> None:
        """Events of the selected connection only (again: all)."""
        assert self.main is not None
        log = self.main.events
        if log.conn_filter is not None:
            log.set_filter(None)
            self.main.query_one("#events-panel").border_subtitle = ""
            return
        conn = self.main.selected_conn()
        if conn is None:
            self.say("Select a server connection to filter its events.", error=True)
            return
        log.set_filter(conn)
        self.main.query_one("#events-panel").border_subtitle = f"only #{conn} (e: all)"

    def action_filter_packets(self) -> None:
        """Packets of the selected connection only (again: all)."""
        assert self.main is not None
        self.main.packets.toggle_filter(self.main.selected_socket())

    def action_toggle_capture(self) -> None:
        """Pause or resume capturing."""
        assert self.main is not None
        self.main.packets.toggle_pause()

    def action_clear_capture(self) -> None:
        """Forget captured packets."""
        assert self.main is not None
        self.main.packets.clear()

    def action_save_pcap(self) -> None:
        """Save the capture as pcap (asks for a file name if there is anything to save)."""
        assert self.main is not None
        self.main.packets.request_save()

    def action_graphs(self) -> None:
        """The graph screen of the selected connection."""
        if self.main is not None:
            self.main.action_graph()

    def action_conversations(self) -> None:
        """The conversation table."""
        if self.main is not None:
            self.main.action_conversations()

    def action_take_screenshot(self) -> None:
        """Save an SVG screenshot of the screen in the current directory."""
        path = self.save_screenshot()
        self.say(f"Screenshot saved to {path}")

    def action_labs(self) -> None:
        """Open the Labs screen: staged lessons on the real stack, checked against the kernel."""
        from netlens.ui.screens.labs import LabsScreen  # only when asked: labs load the engines

        self.push_screen(LabsScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action in the command palette, by name."""
        yield from super().get_system_commands(screen)
        for title, help_text, action in [
            ("Send a request", "search, binary or echo; optionally byte by byte", self.action_send),
            ("Start N clients", "concurrent clients, one request each", self.action_clients),
            ("Pause/resume reading", "the selected connection: watch Recv-Q and the window", self.action_toggle_read),
            ("Shutdown write (SHUT_WR)", "the server sends FIN and keeps reading", self.action_shutdown),
            ("Close connection", "FIN, or RST if unread bytes wait", self.action_close_conn),
            ("Abort connection (RST)", "SO_LINGER 0 then close", self.action_abort_conn),
            ("Toggle TCP_NODELAY", "on the selected connection", self.action_nodelay),
            ("Set SO_RCVBUF", "on the selected connection", self.action_rcvbuf),
            ("Filter packets to connection", "or show all again", self.action_filter_packets),
            ("Filter events to connection", "or show all again", self.action_filter_events),
            ("Pause/resume capture", "stop or restart collecting packets", self.action_toggle_capture),
            ("Clear capture", "forget every captured packet", self.action_clear_capture),
            ("Save capture as pcap", "for Wireshark/tshark/tcpdump", self.action_save_pcap),
            ("Stream graphs", "time-sequence, throughput, RTT and window of the selected connection (G)",
             self.action_graphs),
            ("Conversations", "packets and bytes each way, duration, completeness, per connection (v)",
             self.action_conversations),
            ("Save screenshot", "SVG of the screen", self.action_take_screenshot),
            ("TCP primer and keys", "help", self.action_help),
            ("Labs", "staged TCP lessons on the real stack, checked against the kernel", self.action_labs),
        ]:
            yield SystemCommand(title, help_text, action)

