"""The virtual list repaints what a cursor move changed: the row it left and the row it reached.

Counted on the real widget in a headless Textual app: ``render_line`` is what
Textual asks for each screen line it repaints. A key's frame is the one the
user waits for, and under a packet flood every line costs.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from netlens.ui.widgets.virtual_list import VirtualList

ROWS = 200


class Numbers(VirtualList):
    def row_count(self) -> int:
        return ROWS

    def render_row(self, index: int) -> Text:
        return Text(f"row {index}")


class OneList(App[None]):
    CSS = "Numbers { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield Numbers()


async def test_a_cursor_move_repaints_two_lines_not_the_whole_list() -> None:
    app = OneList()
    async with app.run_test(size=(60, 30)) as pilot:
        numbers = app.query_one(Numbers)
        numbers.follow = False
        numbers.rows_changed()
        numbers.focus()
        await pilot.press("home")
        await pilot.pause()
        painted: list[int] = []
        render_line = numbers.render_line

        def counting_line(y: int):  # type: ignore[no-untyped-def]
            painted.append(y)
            return render_line(y)

        numbers.render_line = counting_line  # type: ignore[method-assign]
        for key, expected in (("down", [0, 1]), ("down", [1, 2]), ("up", [1, 2])):
            painted.clear()
            await pilot.press(key)
            await pilot.pause()
            assert sorted(set(painted)) == expected, (key, painted)
        assert numbers.cursor == 1
        # Following, then a move: the same two lines (follow is not drawn).
        painted.clear()
        numbers.follow = True
        await pilot.press("down")
        await pilot.pause()
        assert sorted(set(painted)) == [1, 2] and numbers.cursor == 2
