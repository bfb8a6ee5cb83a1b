"""What the keys do: act on the selected connection, run clients, filter, capture — and confirm each.

Every control travels to the server loop on its queue; its result comes
back as a :class:`~netlens.ui.messages.ControlDone` message (posting is
thread-safe and never waits), so the UI never blocks on the loop and no
confirmation is lost. Clients run in thread workers that end promptly when
cancelled, so none can hold the app's shutdown.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.notifications import Notification
from textual.screen import Screen
from textual.worker import get_current_worker

from netlens.errors import UserError
from netlens.server import (
    AbortConnection,
    CloseConnection,
    Control,
    ControlError,
    PauseReading,
    ResumeReading,
    SetOption,
    ShutdownWrite,
    SocketOption,
)
from netlens.textsafe import safe_str
from netlens.ui.feeds import Feeds
from netlens.ui.messages import ClientDone, ClientOpened, ControlDone
from netlens.ui.screens.help import HelpScreen
from netlens.ui.screens.main import MainScreen, Panel
from netlens.ui.screens.prompts import OpenChoice, OpenClientScreen, PromptScreen, SendScreen

#: Confirmation toasts on screen at most: 200 quick presses must not stack 200 toasts.
MAX_TOASTS = 3
#: Results waiting for an earlier one at most, before they are shown anyway.
MAX_OUT_OF_ORDER = 100


class NetlensActions(App[int]):
    """The app's actions (key bindings and palette commands) and their confirmations."""

    feeds: Feeds
    main: MainScreen | None

    def __init__(self) -> None:
        super().__init__()
        #: What the user last asked for, per (connection, setting): toggles flip this, not a stale view.
        self._wanted: dict[tuple[int, str], bool] = {}
        self._toasts: deque[Notification] = deque()
        #: Every control confirmation (and failure) received, in order.
        self.confirmations: list[str] = []
        self._seq = 0
        self._shown_seq = 0
        self._arrived: dict[int, ControlDone] = {}

    # ------------------------------------------------------------------ helpers

    def say(self, text: str, error: bool = False) -> None:
        """A notification that never interprets markup (it may quote wire bytes)."""
        self.notify(safe_str(text).replace("\\n", "\n"), severity="error" if error else "information",
                    markup=False, timeout=6 if error else 4)

    def _toast(self, text: str, error: bool) -> None:
        """Show a confirmation as a toast; beyond MAX_TOASTS the oldest one goes.

        Textual has no public call to take a toast back, so this keeps its
        notification collection the way ``App.notify`` and a toast's own
        dismissal do: 200 quick presses give 200 confirmations, not 200
        toasts stacked over the screen (each one a widget to mount).
        """
        note = Notification(safe_str(text), "", "error" if error else "information", 6 if error else 3,
                            markup=False)
        self._notifications.add(note)
        self._toasts.append(note)
        while len(self._toasts) > MAX_TOASTS:
            old = self._toasts.popleft()
            if old in self._notifications:
                self._unnotify(old, refresh=False)
        self._refresh_notifications()

    def on_control_done(self, message: ControlDone) -> None:
        """A control's result arrived: show it, in the order the controls were given.

        A result can overtake an earlier one on its way here (a control the
        loop finished before its callback was attached reports from this
        thread at once, the others through the event loop), so each carries
        its control's number and waits for those before it.
        """
        self._arrived[message.seq] = message
        if len(self._arrived) > MAX_OUT_OF_ORDER:
            self._shown_seq = min(self._arrived) - 1  # one never came: do not hold the rest back
        while self._shown_seq + 1 in self._arrived:
            self._shown_seq += 1
            done = self._arrived.pop(self._shown_seq)
            self.confirmations.append(done.text)
            if done.error and done.wanted is not None:
                self._wanted.pop(done.wanted, None)
            self._toast(done.text, done.error)

    def _control(self, make: Callable[..., Control], wanted: tuple[int, str] | None = None,
                 **kwargs: Any) -> None:
        assert self.main is not None
        conn = self.main.selected_conn()
        if conn is None:
            self.say("Select a live server connection first (a row whose Server view shows #N, "
                     "or the client end of one).", error=True)
            return
        self._seq += 1
        seq = self._seq
        future = self.feeds.server.submit(make(conn=conn, **kwargs))

        def done(finished: Future[str]) -> None:
            # Runs on the server's thread, after the loop released its lock: post and return.
            try:
                self.post_message(ControlDone(seq, finished.result(), wanted=wanted))
            except ControlError as exc:
                self.post_message(ControlDone(seq, str(exc), error=True, wanted=wanted))

        future.add_done_callback(done)

    def _flip(self, setting: str, current: Callable[[int], bool]) -> tuple[int, bool] | None:
        """The selected connection and the new value of a toggle: the opposite of what was last asked."""
        assert self.main is not None
        conn = self.main.selected_conn()
        if conn is None:
            return None
        now_on = self._wanted.get((conn, setting))
        if now_on is None:
            now_on = current(conn)
        self._wanted[(conn, setting)] = not now_on
        return conn, not now_on

    # ------------------------------------------------------------------ actions on a connection

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

    def _server_says(self, conn: int, test: Callable[[Any], bool]) -> bool:
        assert self.main is not None
        return any(s.conn == conn and test(s) for s in self.main.server_conns.values())

    def action_toggle_read(self) -> None:
        """Pause or resume reading the selected connection."""
        flip = self._flip("paused", lambda conn: self._server_says(conn, lambda s: s.paused))
        if flip is None:
            self._control(PauseReading)  # says what to select
            return
        conn, pause = flip
        self._control(PauseReading if pause else ResumeReading, wanted=(conn, "paused"))

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
        flip = self._flip("nodelay", lambda conn: self._server_says(
            conn, lambda s: bool(s.options.get("TCP_NODELAY"))))
        if flip is None:
            self._control(SetOption)
            return
        conn, on = flip
        self._control(SetOption, wanted=(conn, "nodelay"), option=SocketOption.TCP_NODELAY, value=int(on))

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

    # ------------------------------------------------------------------ clients

    def action_send(self) -> None:
        """Compose and send a request from a client in a background thread."""
        self.push_screen(SendScreen(self.feeds.config.mode), self._send)

    def _send(self, choice: tuple[str, str, bool] | None) -> None:
        if choice is not None:
            self.send_request(*choice)

    @work(thread=True, group="clients", name="client", exit_on_error=False)
    def send_request(self, kind: str, text: str, slow: bool) -> None:
        """Run one client request (thread: it blocks on its socket, 5 s at most)."""
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

    @work(thread=True, group="clients", name="clients", exit_on_error=False)
    def run_clients(self, n: int) -> None:
        """N concurrent clients, one request each (thread; stops when the app does)."""
        from netlens.server.load import LoadRunner

        worker = get_current_worker()
        host, port = self.feeds.server.address
        try:
            result = LoadRunner(host, port, self.feeds.config.mode, clients=n, requests=1).run(
                should_stop=worker.cancelled_event.is_set)
        except UserError as exc:
            self.post_message(ClientDone([str(exc)], error=True))
            return
        self.post_message(ClientDone([f"{n} clients: {result.completed} answered, {result.errors} errors, "
                                      f"p50 {result.percentile(50) * 1000:.1f} ms"], error=bool(result.errors)))

    def action_open_client(self) -> None:
        """Open a connection that stays: idle, half a request, or a stream (the demos of r w x X d b)."""
        self.push_screen(OpenClientScreen(self.feeds.config.mode), self._opened)

    def _opened(self, choice: OpenChoice | None) -> None:
        if choice is not None:
            self.open_client(choice)

    @work(thread=True, group="held", name="held connection", exit_on_error=False)
    def open_client(self, choice: OpenChoice) -> None:
        """Hold or stream one connection until its time is up, the server ends it, or the app quits."""
        from netlens.server import holding

        worker = get_current_worker()
        host, port = self.feeds.server.address

        def connected(local: tuple[str, int], remote: tuple[str, int]) -> None:
            self.post_message(ClientOpened(local, remote, choice.describe()))

        def note(line: str) -> None:
            # The connect and the first send are already said by ClientOpened; the rest is news.
            if not line.startswith(("connected to", "sent ")):
                self.post_message(ClientDone([line]))

        try:
            if choice.kind == "stream":
                outcome = holding.stream(host, port, rate=choice.rate, read=choice.read, seconds=choice.seconds,
                                         stop=worker.cancelled_event, on_event=note, on_connect=connected)
            else:
                outcome = holding.hold(host, port, send=choice.payload(), seconds=choice.seconds,
                                       stop=worker.cancelled_event, on_event=note, on_connect=connected)
        except UserError as exc:
            self.post_message(ClientDone([str(exc)], error=True))
            return
        if not worker.is_cancelled:
            self.post_message(ClientDone([outcome.summary()]))

    # ------------------------------------------------------------------ views and capture

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

    def action_labs(self) -> None:
        """Open the Labs screen: staged lessons on the real stack, checked against the kernel."""
        from netlens.ui.screens.labs import LabsScreen  # only when asked: labs load the engines

        self.push_screen(LabsScreen())

    def action_take_screenshot(self) -> None:
        """Save an SVG screenshot of the screen in the current directory."""
        path = self.save_screenshot()
        self.say(f"Screenshot saved to {os.path.abspath(path)}")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action in the command palette, by name (Textual's own screenshot command left out: ours says where)."""
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":
                yield command
        for title, help_text, action in [
            ("Send a request", "search, binary or echo; optionally byte by byte", self.action_send),
            ("Start N clients", "concurrent clients, one request each", self.action_clients),
            ("Open a connection that stays", "hold it idle, half a request, or stream bytes (slow reader)",
             self.action_open_client),
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
            ("Save screenshot", "SVG of the screen, in the current directory", self.action_take_screenshot),
            ("TCP primer and keys", "help", self.action_help),
            ("Labs", "staged TCP lessons on the real stack, checked against the kernel (L)", self.action_labs),
        ]:
            yield SystemCommand(title, help_text, action)
