"""The Labs screen: pick a lab, step through it with the real stack live, end on the kernel's checklist.

A worker thread owns the :class:`~netlens.labs.runner.LabSession` (it lives in
the lab's network namespace) and waits before each step until the teacher
presses space. The screen polls the session on a timer: new packets from its
capture ring, the newest sock_diag snapshot, the server's events and the
kernel-trace events, highlighting the rows the current step says to watch.
Every string from the wire is already escaped by the engines and is shown as
``Text``, never as markup.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Sparkline, Static
from textual.widgets.option_list import Option

from netlens.capture import PacketStore, PacketSummary
from netlens.labs.catalog import discover
from netlens.labs.model import Lab, LabResult, Step, Watch

#: Rows kept in the live packet and event tables (the lab's pcap keeps them all).
MAX_ROWS = 400
HIGHLIGHT = "bold black on yellow"


class StepReady(Message):
    """The worker waits before step ``index`` (or, with ``index`` -1, the lab could not start)."""

    def __init__(self, index: int, step: Step | None, error: str | None = None) -> None:
        super().__init__()
        self.index, self.step, self.error = index, step, error


class LabFinished(Message):
    """The lab ran to its end (``result``) or stopped with ``error``."""

    def __init__(self, result: LabResult | None, error: str | None = None) -> None:
        super().__init__()
        self.result, self.error = result, error


def _matches(watch: Watch | None, **fields: Any) -> bool:
    """True when a row with ``fields`` is the one the current step says to watch."""
    if watch is None or not watch.match:
        return False
    return any(key in fields and str(fields[key]) == value for key, value in watch.match.items())


class LabsScreen(Screen[None]):
    """List of labs; enter runs one, space steps, v runs it without its key step, escape leaves."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "next_step", "Next step"),
        Binding("r", "run", "Run lab"),
        Binding("v", "run_variant", "Without key step"),
        Binding("escape", "leave", "Back"),
    ]

    DEFAULT_CSS = """
    LabsScreen #lab-list { width: 16; }
    LabsScreen #lab-step { height: auto; max-height: 9; padding: 0 1; border: round $accent; }
    LabsScreen #lab-live { height: 1fr; }
    LabsScreen #lab-packets { width: 3fr; }
    LabsScreen #lab-sockets { width: 2fr; }
    LabsScreen #lab-events { height: 1fr; }
    LabsScreen #lab-cwnd { height: 2; }
    LabsScreen #lab-checks { height: auto; max-height: 12; }
    """

    def __init__(self, labs_dirs: tuple[str, ...] = (), autostep: bool = False) -> None:
        super().__init__()
        self.labs: dict[str, Lab] = discover(labs_dirs)
        #: Run every step without waiting for space (demos, screenshots).
        self.autostep = autostep
        self.session: Any = None
        self.result: LabResult | None = None
        self.waiting_step: int | None = None
        self._go = threading.Event()
        self._stop = threading.Event()
        self._watch: Watch | None = None
        self._store: PacketStore | None = None
        self._subscription: Any = None
        self._events_seen = 0
        self._trace_seen = 0
        self._packet_rows: dict[int, int] = {}
        #: "kernel event #12" / "server event #3" (as checks cite them) -> row of the events table.
        self._event_rows: dict[str, int] = {}
        self._server_port: int | None = None
        #: tcp_probe's cwnd series, per socket (the trace engine's socket number).
        self._cwnd: dict[int, list[float]] = {}

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield OptionList(*(Option(Text(name), id=name) for name in self.labs), id="lab-list")
            with Vertical():
                yield Static(Text("Pick a lab and press r to run it (v: without its key step)."), id="lab-step")
                with Horizontal(id="lab-live"):
                    yield DataTable(id="lab-packets", cursor_type="row", zebra_stripes=True)
                    yield DataTable(id="lab-sockets", cursor_type="row")
                yield Static(Text("cwnd (tcp_probe)", style="dim"), id="lab-cwnd-label")
                yield Sparkline([], id="lab-cwnd")
                yield DataTable(id="lab-events", cursor_type="row")
                yield DataTable(id="lab-checks", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#lab-packets", DataTable).add_columns("No.", "Time", "Source", "Destination", "Flags",
                                                             "Seq", "Ack", "Win", "Len", "Analysis")
        self.query_one("#lab-sockets", DataTable).add_columns("State", "Local", "Remote", "Recv-Q", "Send-Q", "Timer")
        self.query_one("#lab-events", DataTable).add_columns("#", "Source", "Event")
        self.query_one("#lab-checks", DataTable).add_columns("", "Check", "Observed", "Evidence")
        self.set_interval(0.25, self._refresh_live)
        self.query_one("#lab-list", OptionList).focus()

    # ---------------------------------------------------------------- actions

    @property
    def selected(self) -> Lab | None:
        """The lab under the list's cursor."""
        options = self.query_one("#lab-list", OptionList)
        if options.highlighted is None:
            return None
        option_id = options.get_option_at_index(options.highlighted).id
        return self.labs.get(option_id or "")

    def action_run(self, variant: str | None = None) -> None:
        """Run the selected lab (stopping one that runs)."""
        lab = self.selected
        if lab is None:
            return
        self._stop_running()
        self._reset_tables()
        self.result, self.waiting_step = None, None
        self._go.clear()
        self._stop.clear()
        self._say(Text(f"{lab.title}: starting its private network…", style="bold"))
        self.run_worker(lambda: self._drive(lab, variant), thread=True, exit_on_error=False, group="lab")

    def action_run_variant(self) -> None:
        """Run the selected lab without its key step: watch the checks fail."""
        lab = self.selected
        if lab is not None:
            self.action_run(lab.control)

    def action_next_step(self) -> None:
        """Let the worker run the step it waits before."""
        if self.waiting_step is not None:
            self.waiting_step = None
            self._go.set()

    def action_leave(self) -> None:
        """Stop any running lab and go back."""
        self._stop_running()
        self.app.pop_screen()

    def on_unmount(self) -> None:
        self._stop_running()

    # ----------------------------------------------------------------- worker

    def _drive(self, lab: Lab, variant: str | None) -> None:
        """The worker thread: the whole session lives here, inside the lab's namespace."""
        from netlens.labs.runner import LabSession

        session = LabSession(lab, variant)
        try:
            session.start()
            self.session = session
            for index, step in enumerate(lab.steps):
                self.post_message(StepReady(index, step))
                if not self.autostep:
                    while not self._go.wait(0.1):
                        if self._stop.is_set():
                            return
                    self._go.clear()
                if self._stop.is_set() or not session.run_step(index):
                    break
            self.post_message(LabFinished(session.finish()))
        except Exception as exc:  # shown as one sentence, the lab is cleaned up below
            self.post_message(LabFinished(None, f"{type(exc).__name__}: {exc}"))
        finally:
            session.close()

    def _stop_running(self) -> None:
        self._stop.set()
        if self.session is not None:
            self.session.stop()
        self._go.set()

    # ------------------------------------------------------------- messages

    def on_step_ready(self, message: StepReady) -> None:
        lab = self.selected
        assert message.step is not None
        step = message.step
        self._watch = step.watch
        total = len(lab.steps) if lab else "?"
        text = Text()
        text.append(f"Step {message.index + 1}/{total}: {step.title}\n", style="bold")
        text.append(step.narration + "\n")
        text.append("Watch ", style="bold")
        text.append(step.watch.describe(), style=HIGHLIGHT)
        text.append("" if self.autostep else "   (space: run this step)", style="dim")
        self._say(text)
        self.waiting_step = message.index

    def on_lab_finished(self, message: LabFinished) -> None:
        self._refresh_live()
        self.session, self._watch = None, None
        if message.result is None:
            self._say(Text(f"The lab stopped: {message.error}", style="bold red"))
            return
        self.show_result(message.result)

    def show_result(self, result: LabResult) -> None:
        """Fill the checklist with what the kernel actually did."""
        self.result = result
        table = self.query_one("#lab-checks", DataTable)
        table.clear()
        for check in result.checks:
            mark = Text("✓", style="bold green") if check.ok else Text("✗", style="bold red")
            table.add_row(mark, Text(check.name), Text(check.observed), Text(check.evidence or ""))
        verdict = "every expectation observed" if result.passed else "some expectations were not observed"
        self._say(Text(f"{result.lab}: {verdict} ({result.seconds:.1f} s, {result.packets} packets). "
                       "Enter on a check jumps to its evidence.", style="bold"))
        table.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        lab = self.labs.get(event.option.id or "")
        if lab is None or self.session is not None:
            return
        text = Text()
        text.append(f"{lab.title}\n", style="bold")
        text.append(lab.lesson + "\n")
        text.append(f"r: run it, space between steps · v: without its key step ({lab.variants[lab.control]})",
                    style="dim")
        self._say(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "lab-checks" or self.result is None:
            return
        check = self.result.checks[event.cursor_row]
        text = Text()
        text.append(f"{'✓' if check.ok else '✗'} {check.name}\n", style="bold green" if check.ok else "bold red")
        text.append("expected: ", style="bold")
        text.append(check.expected + "\n")
        text.append("observed: ", style="bold")
        text.append(check.observed)
        if check.evidence:
            text.append(f"  ({check.evidence}; enter jumps there)", style="dim")
        self._say(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "lab-checks" or self.result is None:
            return
        evidence = self.result.checks[event.cursor_row].evidence or ""
        if evidence.startswith("packet"):
            number = int(evidence.split("#")[1].split(",")[0].split()[0])
            self.jump_to_packet(number)
        elif evidence in self._event_rows:
            table = self.query_one("#lab-events", DataTable)
            table.move_cursor(row=self._event_rows[evidence])
            table.focus()

    def jump_to_packet(self, number: int) -> bool:
        """Put the packet table's cursor on packet ``number`` (True if it is shown)."""
        table = self.query_one("#lab-packets", DataTable)
        row = self._packet_rows.get(number)
        if row is None:
            return False
        table.move_cursor(row=row)
        table.focus()
        return True

    # ----------------------------------------------------------- live panels

    def _say(self, text: Text) -> None:
        self.query_one("#lab-step", Static).update(text)

    def _reset_tables(self) -> None:
        for name in ("#lab-packets", "#lab-sockets", "#lab-events", "#lab-checks"):
            self.query_one(name, DataTable).clear()
        self._store, self._subscription = None, None
        self._events_seen = self._trace_seen = 0
        self._packet_rows, self._event_rows = {}, {}
        self._server_port, self._cwnd = None, {}
        self.query_one("#lab-cwnd", Sparkline).data = []

    def _refresh_live(self) -> None:
        session = self.session
        if session is None:
            return
        if self._store is None and session.ctx is not None:
            port = session.ctx.port
            self._server_port = port or None
            self._store = PacketStore(session.ring, server_ports=(port,) if port else ())
        if self._subscription is None and session.server is not None:
            self._subscription = session.server.subscribe(from_start=True)
        self._add_packets()
        self._show_sockets(session)
        self._add_events(session)

    def _add_packets(self) -> None:
        store = self._store
        if store is None:
            return
        start = store.last + 1
        store.update()
        if store.last < start:
            return
        table = self.query_one("#lab-packets", DataTable)
        for summary in store.summaries(max(start, store.last - MAX_ROWS), store.last):
            self._packet_rows[summary.no] = table.row_count
            table.add_row(*self._packet_cells(summary))
        table.move_cursor(row=table.row_count - 1)

    def _packet_cells(self, p: PacketSummary) -> list[Text]:
        side = "server" if p.sport == self._server_port else "client"
        style = HIGHLIGHT if _matches(self._watch, flags=p.flags, port=side) else ""
        values = (p.no, f"{p.rel_time:.3f}", p.source, p.destination, p.flags, p.seq, p.ack, p.win, p.len,
                  " ".join(p.analysis))
        return [Text("" if value is None else str(value), style=style) for value in values]

    def _show_sockets(self, session: Any) -> None:
        snapshots = session.evidence.snapshots
        if not snapshots:
            return
        table = self.query_one("#lab-sockets", DataTable)
        table.clear()
        for sock in snapshots[-1].sockets:
            timer = f"{sock.timer.name} {sock.timer.expires_ms} ms" if sock.timer else ""
            side = "server" if sock.local_port == self._server_port else "client"
            style = HIGHLIGHT if _matches(self._watch, state=sock.state, port=side) else ""
            cells = (sock.state, f"{sock.local_addr}:{sock.local_port}", f"{sock.remote_addr}:{sock.remote_port}",
                     sock.recv_q, sock.send_q, timer)
            table.add_row(*(Text(str(cell), style=style) for cell in cells))

    def _add_events(self, session: Any) -> None:
        table = self.query_one("#lab-events", DataTable)
        rows: list[tuple[float, str, str, str]] = []
        if self._subscription is not None:
            for event in self._subscription.drain():
                self._events_seen += 1
                rows.append((event.ts, f"server {self._events_seen}", event.kind, event.describe()))
        if session.tracer is not None:
            session.tracer.drain_live()
            trace = session.evidence.trace
            for number in range(self._trace_seen, len(trace)):
                record = trace[number]
                if record.event == "probe":
                    # One per ACK: the sparkline's business, not this list's.
                    self._cwnd.setdefault(record.sock, []).append(float(record.cwnd))
                    continue
                detail = " ".join(f"{k}={v}" for k, v in record.to_dict().items()
                                  if k in ("old", "new", "reason", "state"))
                rows.append((record.time, f"kernel {number + 1}", record.event,
                             f"{record.event} :{record.sport}→:{record.dport} {detail}"))
            self._trace_seen = len(trace)
        if self._cwnd:
            # The busiest sender: the socket whose ACKs came most often.
            series = max(self._cwnd.values(), key=len)
            self.query_one("#lab-cwnd", Sparkline).data = series[-400:]
        for _ts, source, kind, text in sorted(rows):
            style = HIGHLIGHT if _matches(self._watch, event=kind) else ""
            who, seq = source.split()
            self._event_rows[f"{who} event #{seq}"] = table.row_count
            table.add_row(Text(seq), Text(who), Text(text, style=style))
        if rows:
            table.move_cursor(row=table.row_count - 1)
