"""Make the README's Labs screenshot by running a real lab in the Labs screen.

Run as root (each lab builds its own network namespace and captures in it):

    .venv/bin/python screenshots/make_lab_screenshot.py

It opens the Labs screen, runs ``zero-window`` on the real stack step by step
and saves ``lab.svg`` once the checklist is in, with the first check selected.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from textual.app import App  # noqa: E402
from textual.widgets import DataTable, OptionList  # noqa: E402

from netlens.ui.screens.labs import LabsScreen  # noqa: E402

SIZE = (140, 44)
LAB = "zero-window"


class LabsApp(App[None]):
    """The Labs screen on its own."""

    def on_mount(self) -> None:
        self.push_screen(LabsScreen())


async def main() -> None:
    app = LabsApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LabsScreen)
        screen.query_one("#lab-list", OptionList).highlighted = list(screen.labs).index(LAB)
        await pilot.press("r")
        deadline = time.monotonic() + 60
        while screen.result is None and time.monotonic() < deadline:
            if screen.waiting_step is not None:
                await pilot.press("space")
            await pilot.pause(0.1)
        if screen.result is None:
            raise SystemExit(f"the lab {LAB} did not finish within 60 s")
        checks = screen.query_one("#lab-checks", DataTable)
        checks.move_cursor(row=1)
        await pilot.pause(0.3)
        app.save_screenshot("lab.svg", str(HERE))
        print(f"saved {HERE / 'lab.svg'} ({'passed' if screen.result.passed else 'did not pass'})")


if __name__ == "__main__":
    asyncio.run(main())
