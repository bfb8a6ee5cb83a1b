"""The Labs screen: a Pilot steps through ``zero-window`` on the real stack (root), and the checklist
is snapshotted on a fixed result."""

from __future__ import annotations

from textual.app import App
from textual.widgets import DataTable, OptionList

from netlens.labs.model import CheckResult, LabResult
from netlens.ui.screens.labs import LabsScreen
from tests.waiting import until

SIZE = (140, 44)


class LabsApp(App[None]):
    """Just the Labs screen, as the main app pushes it."""

    def on_mount(self) -> None:
        self.push_screen(LabsScreen())


async def choose(pilot, name: str) -> LabsScreen:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    assert isinstance(screen, LabsScreen)
    options = screen.query_one("#lab-list", OptionList)
    options.highlighted = list(screen.labs).index(name)
    await pilot.pause()
    return screen


async def test_stepping_through_zero_window() -> None:
    app = LabsApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await choose(pilot, "zero-window")
        await pilot.press("r")
        for index in range(len(screen.labs["zero-window"].steps)):
            await until(pilot, lambda i=index: screen.waiting_step == i, timeout=15)
            narration = str(screen.query_one("#lab-step").render())
            assert f"Step {index + 1}/4" in narration and "Watch" in narration
            await pilot.press("space")
        await until(pilot, lambda: screen.result is not None, timeout=20)
        assert screen.result is not None and screen.result.passed, screen.result
        checks = screen.query_one("#lab-checks", DataTable)
        assert checks.row_count == 3
        assert [str(checks.get_row_at(i)[0]) for i in range(3)] == ["✓", "✓", "✓"]
        packets = screen.query_one("#lab-packets", DataTable)
        assert packets.row_count >= 10
        # Enter on "window 0" jumps to the zero-window packet.
        checks.move_cursor(row=0)
        await pilot.press("enter")
        number = int((screen.result.checks[0].evidence or "").split("#")[1])
        assert packets.has_focus and str(packets.get_row_at(packets.cursor_row)[0]) == str(number)


async def test_a_check_links_to_its_kernel_event() -> None:
    app = LabsApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await choose(pilot, "refused")
        await pilot.press("r")
        await until(pilot, lambda: screen.waiting_step == 0, timeout=15)
        await pilot.press("space")
        await until(pilot, lambda: screen.result is not None, timeout=20)
        assert screen.result is not None
        reason = [c.name for c in screen.result.checks].index("reset reason")
        evidence = screen.result.checks[reason].evidence or ""
        assert evidence.startswith("kernel event #")  # NO_SOCKET, from the trace
        checks = screen.query_one("#lab-checks", DataTable)
        checks.focus()
        checks.move_cursor(row=reason)
        await pilot.press("enter")
        events = screen.query_one("#lab-events", DataTable)
        row = [str(cell) for cell in events.get_row_at(events.cursor_row)]
        assert events.has_focus and row[:2] == [evidence.split("#")[1], "kernel"]
        assert "reset-sent" in row[2] and "NO_SOCKET" in row[2]


FIXED = LabResult(lab="zero-window", variant=None, seconds=3.7, packets=18, checks=(
    CheckResult("window 0", "the server advertises a zero window", "window 0 from the server at +0.276 s", True,
                "packet #11"),
    CheckResult("probes back off", "≥ 3 zero-window probes with growing gaps",
                "3 probes, gaps [428.0, 864.0] ms", True, "packets #12, #14, #15"),
    CheckResult("queues and timer", "client persist timer while the server's Recv-Q holds the bytes",
                "client persist timer, 3853312 bytes in its Send-Q; server Recv-Q 87040", True,
                "kernel snapshot at 1796136700.123"),
))


def test_checklist_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def finished(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await choose(pilot, "zero-window")
        screen.show_result(FIXED)
        await pilot.pause()

    assert snap_compare(LabsApp(), terminal_size=SIZE, run_before=finished)


async def test_the_app_opens_labs_by_key_and_palette() -> None:
    from recording import recorded_feeds

    from netlens.ui.app import NetlensApp

    app = NetlensApp(recorded_feeds(), animate=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "Labs" in [command.title for command in app.get_system_commands(app.screen)]
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, LabsScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LabsScreen))
