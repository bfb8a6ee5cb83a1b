"""The netlens Textual app: lifecycle, background workers, and where their messages land.

The keys' actions live in :mod:`netlens.ui.actions`. Threads never call into
the UI and the UI thread never waits for the server loop: workers read the
kernel and the server and post messages; every worker is stoppable (it
waits on its cancellation event, never in a bare sleep) and reports an
unexpected failure through one handler, as one sentence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import threading
import time
from contextlib import suppress
from functools import partial

from textual import events, work
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.driver import Driver
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from netlens.errors import UserError
from netlens.keygate import TAIL as KEY_TAIL
from netlens.keygate import KeyGate
from netlens.server import PortInUseError
from netlens.textsafe import safe_str
from netlens.threadname import show_thread_name
from netlens.ui.actions import NetlensActions
from netlens.ui.feeds import Feeds
from netlens.ui.kernel_view import KernelUpdate, KernelView
from netlens.ui.messages import ClientDone, ClientOpened, KernelSnapshot, ProbeFailed
from netlens.ui.runtime import ProcessPolicy
from netlens.ui.screens.main import MainScreen
from netlens.ui.screens.prompts import PortInUseScreen, TooSmallScreen

#: Smallest terminal the four panels fit in.
MIN_SIZE = (80, 24)
#: How often the kernel is asked (seconds): every second, like `watch ss`; each table update
#: redraws only the rows whose cells changed (see netlens.ui.widgets.virtual_table).
PROBE_INTERVAL = 1.0
#: How often the status line's server counters are read (seconds).
STATS_INTERVAL = 0.25
#: UI refresh of events/packets/status (seconds): drained in batches, never one message per packet.
TICK = 0.1
#: After a key press, data repaints wait this long (seconds) so the key's own frame is cheap...
INPUT_GRACE = 0.15
#: ...but never longer than this while keys keep coming (held arrow keys).
MAX_DEFER = 5.0
#: A worker that failed unexpectedly and keeps the app's data flowing is restarted after this long
#: (twice as long after each further failure, up to RESTART_MAX).
RESTART_AFTER = 2.0
RESTART_MAX = 60.0
#: Seconds a quit asked for by SIGTERM may take before the process ends without Textual's goodbye.
SHUTDOWN_GRACE = 3.0
#: Longest a failure sentence may be (a huge exception text must not fill the screen).
SENTENCE_LIMIT = 300


class NetlensApp(NetlensActions):
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
        #: Closed from a key's arrival (in the terminal's input thread) until its frame is painted.
        self.key_gate = KeyGate()
        super().__init__()
        self.feeds = feeds
        self.main = None
        self._policy = ProcessPolicy()
        self._last_key = 0.0
        self._kernel_pending: KernelUpdate | None = None
        self._kernel_applied = 0.0
        self._too_small: TooSmallScreen | None = None
        self._failures: dict[str, int] = {}
        if not animate:
            self.animation_level = "none"

    # ----------------------------------------------------------------- lifecycle

    def get_default_screen(self) -> Screen[None]:
        self.main = MainScreen(self.feeds)
        return self.main

    def on_mount(self) -> None:
        # Keys first: the server's loop waits while a key is handled (see netlens.keygate).
        self.feeds.server.key_gate = self.key_gate
        self._quit_on_signals()
        self._policy.pin_switch_interval()  # see netlens.ui.runtime
        self._policy.return_big_blocks_promptly()
        # After the first refresh: the main screen's panels exist and the first frame is up.
        self.call_after_refresh(self._start_server)

    def _quit_on_signals(self) -> None:
        """SIGTERM quits as `q` does and SIGHUP (the terminal closed) stops the engines, then the process.

        Python's default for both ends the process on the spot: the tracefs
        instance, the capture socket and the server's listener would be left to
        the next start's stale cleanup. asyncio's handlers wake the event loop
        at once. Textual's own shutdown needs a live terminal (it writes to it,
        and its input thread never ends on a terminal that hung up), so SIGHUP
        skips it, and a SIGTERM whose quit has not ended the process within
        SHUTDOWN_GRACE seconds is finished the same way.
        """
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread (tests)
                loop.add_signal_handler(signum, self._signalled, signum)

    def _signalled(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self._stop_and_leave(signum)
        with suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signum)
        watchdog = threading.Timer(SHUTDOWN_GRACE, self._stop_and_leave, args=(signum,))
        watchdog.daemon = True  # a quit that ends in time ends the process; this never holds it
        watchdog.start()
        self.exit(return_code=128 + signum)

    def _stop_and_leave(self, signum: int) -> None:
        """Stop every engine (idempotent) and end the process now, whatever the terminal's state."""
        try:
            if self.main is not None:
                self.main.kernel_trace.stop()
            self.feeds.stop()
        finally:
            os._exit(128 + signum)

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
            # As the headless server does when its port is taken.
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
            self.watch_server()
        else:
            # A recording never changes: read it once, synchronously, so its screens are deterministic.
            self.main.stats = self.feeds.server.stats()
            self.main.apply_snapshot(self._with_server(KernelView().fold(self.feeds.probe())))
            self.main.tick()
        self.main.refresh_status()
        self.check_size()
        self._tame_garbage_collector()

    def _tame_garbage_collector(self) -> None:
        """Keep the garbage collector's pauses away from key presses (see netlens.ui.runtime)."""
        self._policy.tame_garbage_collector()
        self.set_interval(1.0, lambda: self._policy.collect_if_idle(self._last_key))

    async def on_event(self, event: events.Event) -> None:
        # Every key, whoever handles it: the data panels defer their repaints to it, counted from the
        # key's frame (a key whose frame takes long under a flood, ctrl+p, would otherwise outlast its grace).
        if isinstance(event, events.Key):
            self.key_gate.close()  # (already, if the terminal's input thread saw it: see get_driver_class)
            self._last_key = time.monotonic()
            self._policy.pin_switch_interval(keys=True)  # see netlens.ui.runtime
            self.call_after_refresh(self._key_painted)
        await super().on_event(event)

    def _key_painted(self) -> None:
        self._last_key = time.monotonic()
        # Open once the frame's bytes are out too, unless another key came meanwhile.
        self.set_timer(KEY_TAIL, partial(self.key_gate.open, self.key_gate.generation))

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver, closing the keys-first gate in its input thread the moment a key is read.

        The app's own handler sees the key only once its event loop gets the
        GIL, which under a flood is one more wait for the server's loop.
        """
        base = super().get_driver_class()
        gate = self.key_gate

        class KeysFirstDriver(base):  # type: ignore[valid-type,misc]
            def process_message(self, message: Message) -> None:
                if isinstance(message, events.Key):
                    gate.close()
                super().process_message(message)

        return KeysFirstDriver

    @property
    def user_active(self) -> bool:
        """True right after a key press: data repaints wait so the key's frame comes first."""
        return time.monotonic() - self._last_key < INPUT_GRACE

    def _tick(self) -> None:
        if not self.user_active:
            self._policy.pin_switch_interval(keys=False)
        if self.main is not None and self.main.is_running:
            try:
                self.main.tick()
            except NoMatches:
                pass  # closing

    def on_unmount(self) -> None:
        # Workers first (they end within a fifth of a second), then the server they read.
        self.workers.cancel_all()
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

    def _with_server(self, view: KernelUpdate) -> KernelUpdate:
        """``view`` with the server's view of the same moment (it waits for the loop: never on the UI thread)."""
        server = self.feeds.server
        wanted = self.main.inspect_conn if self.main is not None else None
        inspected = next(iter(server.snapshot(conn=wanted)), None) if wanted is not None else None
        return dataclasses.replace(view, server=tuple(server.snapshot(buffers=False)), inspected=inspected,
                                   inspected_conn=wanted)

    @work(thread=True, exclusive=True, group="probe", name="kernel probe", exit_on_error=False)
    def probe_loop(self) -> None:
        """Ask the kernel (then the server) about the server's sockets once a second (thread: both block).

        Tracking and folding the rows happens here too, off the UI thread. The
        pace adapts: a snapshot that took long (tens of thousands of sockets)
        waits four times as long before the next, so probing never takes more
        than a fifth of a core from the server that shares this process.
        """
        worker = get_current_worker()
        show_thread_name("kernel-probe")
        view = KernelView()
        stop = worker.cancelled_event
        while not stop.is_set():
            # A probe holds this process's one GIL for milliseconds at a time (decoding the
            # kernel's answer, folding rows): not while a key is being handled, unless keys
            # keep coming for longer than a probe interval.
            deferred = time.monotonic() + PROBE_INTERVAL
            while self.user_active and time.monotonic() < deferred:
                stop.wait(INPUT_GRACE / 3)
            started = time.perf_counter()
            try:
                snapshot = self.feeds.probe()
            except UserError as exc:
                self.post_message(ProbeFailed(str(exc)))
                stop.wait(2.0)
                continue
            folded = view.fold(snapshot, time.perf_counter() - started)
            self.post_message(KernelSnapshot(self._with_server(folded)))
            stop.wait(max(PROBE_INTERVAL, 4 * (time.perf_counter() - started)))

    @work(thread=True, exclusive=True, group="watch", name="server counters", exit_on_error=False)
    def watch_server(self) -> None:
        """Read the server's counters for the status line a few times a second (thread: it waits for the loop)."""
        stop = get_current_worker().cancelled_event
        while not stop.is_set():
            if self.main is not None:
                # A reference swap: the UI thread reads whichever reading is the latest.
                self.main.stats = self.feeds.server.stats()
            stop.wait(STATS_INTERVAL)

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

    def on_client_opened(self, message: ClientOpened) -> None:
        """A connection opened from the UI is up: say so and select its server end once the kernel lists it."""
        self.say(f"Opened {message.what}: {message.local[0]}:{message.local[1]} "
                 f"(select it and press r w x X d b)")
        if self.main is not None:
            self.main.select_when_seen(message.local, message.remote)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures end up: one sentence, never a traceback, and the app keeps running."""
        if event.state is not WorkerState.ERROR:
            return
        worker = event.worker
        self.say(failure_sentence(worker.name, worker.error), error=True)
        if worker.group in ("probe", "watch") and self.feeds.live:
            # The table and the status line live on these: try again in a moment, then less and less often.
            failures = self._failures[worker.group] = self._failures.get(worker.group, 0) + 1
            restart = self.probe_loop if worker.group == "probe" else self.watch_server
            self.set_timer(min(RESTART_MAX, RESTART_AFTER * 2 ** (failures - 1)), restart)


def failure_sentence(name: str, error: BaseException | None) -> str:
    """``The kernel probe stopped: RuntimeError: boom.`` — one line, escaped, bounded."""
    if isinstance(error, UserError):
        detail = str(error)
    else:
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    detail = safe_str(" ".join(detail.split()))
    if len(detail) > SENTENCE_LIMIT:
        detail = detail[: SENTENCE_LIMIT - 1] + "…"
    name = name or "A background task"
    return f"{name[:1].upper()}{name[1:]} stopped: {detail.rstrip('.')}."
