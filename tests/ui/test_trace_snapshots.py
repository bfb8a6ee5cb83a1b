"""The kernel-trace parts as they look, on a recorded exchange (tests/unit/ui_trace_scenario.py).

The state timeline (with the packets that caused each step and TIME_WAIT's
timer), the lit state diagram, the sparklines, and kernel rows interleaved
with server events. Regenerate with ``--snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Static

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
import ui_trace_scenario as rec

from netlens.display import clock
from netlens.server.bus import materialize
from netlens.server.events import EVENT_CODES, Accepted, CloseCause, Closed
from netlens.ui.kernel_events import interleave, is_kernel, kernel_records, kernel_row
from netlens.ui.probe_spark import probe_lines
from netlens.ui.tcp_states import diagram, timeline_text
from netlens.ui.trace_feed import RecordedTraceFeed

SIZE = (100, 30)


def recorded() -> RecordedTraceFeed:
    feed = RecordedTraceFeed(rec.events(), [(rec.SNAPSHOT_AT, rec.snapshot())])
    feed.poll()
    return feed


class Show(App[None]):
    """One piece of Rich text, as the inspector or events panel would show it."""

    def __init__(self, body: Text) -> None:
        super().__init__()
        self.body = body

    def compose(self) -> ComposeResult:
        yield Static(self.body)


def server_timeline_parts() -> Text:
    feed = recorded()
    timeline = feed.timeline_of(rec.snapshot()[1])
    assert timeline is not None
    return Text("\n").join([timeline_text(timeline, rec.packets(), rec.SNAPSHOT_AT + 10),
                            *probe_lines(timeline.probes, 24)])


def test_state_timeline(snap_compare) -> None:
    assert snap_compare(Show(server_timeline_parts()), terminal_size=SIZE)


def test_state_diagram_lit(snap_compare) -> None:
    timeline = recorded().timeline_of(rec.snapshot()[1])
    assert timeline is not None
    assert snap_compare(Show(diagram(timeline.states, timeline.current)), terminal_size=(60, 16))


def test_events_interleaved(snap_compare) -> None:
    feed = RecordedTraceFeed(rec.events())
    shown = feed.poll()
    server = [(EVENT_CODES[Accepted], rec.T0 + 0.000200, 1, rec.CLIENT, rec.SERVER),
              (EVENT_CODES[Closed], rec.T0 + 0.500005, 1, CloseCause.SERVER, "response sent")]
    merged = interleave(server, kernel_records(shown, {(*rec.SERVER, *rec.CLIENT): 1}, feed.tuple_of))
    rows = [kernel_row(r) if is_kernel(r) else Text(f"{clock(r[1])} #{r[2]:<4} {materialize(r).describe()}")
            for r in merged]
    assert snap_compare(Show(Text("\n").join(rows)), terminal_size=(110, 20))


def test_inspector_with_kernel_trace(snap_compare) -> None:
    """The real app's inspector on connection #1's server end (TIME_WAIT): timeline, lit diagram, sparklines."""
    from test_snapshots import ready, shown
    from trace_recording import feeds_with_trace

    from netlens.ui.app import NetlensApp
    from netlens.ui.widgets.connections import ConnectionsTable

    async def inspect_time_wait(pilot) -> None:  # type: ignore[no-untyped-def]
        await ready(pilot)
        table = pilot.app.screen.query_one(ConnectionsTable)
        key = next(k for k, row in table._rows.items() if row.socket.state == "TIME_WAIT")
        assert table.select_key(key)
        await shown(pilot)
        pilot.app.screen.query_one("#inspector").focus()
        await pilot.press("m")
        await pilot.pause()
        pilot.app.screen.query_one("#inspector").scroll_end(animate=False)
        await pilot.pause()

    assert snap_compare(NetlensApp(feeds_with_trace(), animate=False), terminal_size=(120, 50),
                        run_before=inspect_time_wait)
