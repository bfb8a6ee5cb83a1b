"""The events log keeps what each tick drains and shows it when its part of the screen repaints."""

from __future__ import annotations

from textual.app import App, ComposeResult

from netlens.server.events import EVENT_CODES, CloseCause, Closed
from netlens.ui.widgets.events import EventLog


async def test_events_kept_without_a_repaint_show_on_the_next() -> None:
    class LogApp(App[None]):
        def compose(self) -> ComposeResult:
            yield EventLog(id="events")

    closed = EVENT_CODES[Closed]
    app = LogApp()
    async with app.run_test(size=(100, 12)) as pilot:
        log = app.query_one(EventLog)
        log.add([(closed, 1.0, 1, CloseCause.SERVER.value, "done")])
        await pilot.pause()
        log.add([(closed, 2.0, n, CloseCause.RESET.value, "ECONNRESET") for n in range(2, 40)], paint=False)
        await pilot.pause()
        # Kept (and counted) at once, on screen only after the repaint; the follow cursor stays put meanwhile.
        assert log.total == 39 and log.row_count() == 39 and log.cursor == 0
        assert "#39" not in "".join(log.render_line(y).text for y in range(log.size.height))
        log.paint()
        await pilot.pause()
        assert log.cursor == 38
        assert "#39" in "".join(log.render_line(y).text for y in range(log.size.height))
