"""The virtual table renders what changed and nothing else; rows come and go around the cursor's row.

Render work is counted on the real widget in a real (headless) Textual app:
``_render_cells`` is what turns a row's cells into a strip, ``render_line`` is
what Textual asks for each screen line it repaints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.text import Text
from textual.app import App, ComposeResult
from textual.strip import Strip

from netlens.ui.widgets.virtual_table import VirtualTable

KEYS = [f"row-{i}" for i in range(40)]
GONE = ["row-0", "row-7", "row-8", "row-21", "row-39", "row-30"]
COLUMNS = (("name", "Name"), ("value", "Value"))


def cells(key: str, value: str = "1", style: str = "") -> tuple[Text, ...]:
    return (Text(key, style=style), Text(value, style=style, justify="right"))


class Tables(App[None]):
    CSS = "VirtualTable { height: 1fr; }"

    def __init__(self, count: int = 1) -> None:
        super().__init__()
        self.tables = [VirtualTable(COLUMNS, id=f"t{i}") for i in range(count)]
        self.highlighted: list[str] = []

    def compose(self) -> ComposeResult:
        yield from self.tables

    def on_virtual_table_row_highlighted(self, event: VirtualTable.RowHighlighted) -> None:
        self.highlighted.append(event.key)


class Counted:
    """Rows rendered (by their first cell) and screen lines repainted, on one table."""

    def __init__(self) -> None:
        self.rendered: list[str] = []
        self.lines: list[int] = []


@contextmanager
def counting(table: VirtualTable) -> Iterator[Counted]:
    counted = Counted()
    render_cells, render_line = table._render_cells, table.render_line

    def counting_cells(row: tuple[Text, ...], *args: object) -> Strip:
        counted.rendered.append(row[0].plain)
        return render_cells(row, *args)  # type: ignore[arg-type]

    def counting_line(y: int) -> Strip:
        counted.lines.append(y)
        return render_line(y)

    table._render_cells = counting_cells  # type: ignore[method-assign]
    table.render_line = counting_line  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        del table._render_cells, table.render_line


def fill(table: VirtualTable) -> None:
    for key in KEYS:
        table.put_row(key, cells(key))


def shown(table: VirtualTable, row: int) -> str:
    """The text on screen of row ``row`` (below the header)."""
    return table.render_line(row - int(table.scroll_y) + table.header_height).text


async def test_an_update_renders_only_the_row_that_changed() -> None:
    app = Tables()
    async with app.run_test(size=(80, 50)) as pilot:
        table = app.tables[0]
        fill(table)
        await pilot.pause()
        with counting(table) as counted:
            assert not table.put_row("row-5", cells("row-5"))  # the same: nothing to do
            await pilot.pause()
            assert counted.rendered == [] and counted.lines == []
            assert table.put_row("row-5", cells("row-5", "2"))
            await pilot.pause()
            assert counted.rendered == ["row-5"]
            assert counted.lines == [5 + table.header_height]
            # Same text, another style: a change too (Text.__eq__ would say equal).
            assert table.put_row("row-6", cells("row-6", style="red strike"))
            await pilot.pause()
            assert counted.rendered == ["row-5", "row-6"]
        assert "2" in shown(table, 5)
        strip = table.render_line(6 + table.header_height)
        assert any(seg.style is not None and seg.style.strike for seg in strip if "row-6" in seg.text)


async def test_a_cursor_move_repaints_two_rows() -> None:
    app = Tables()
    async with app.run_test(size=(80, 50)) as pilot:
        table = app.tables[0]
        fill(table)
        table.focus()
        await pilot.pause()
        for press in ("down", "down", "up"):
            before = table.cursor_row
            with counting(table) as counted:
                await pilot.press(press)
                await pilot.pause()
            after = table.cursor_row
            assert after == before + (1 if press == "down" else -1)
            assert sorted(counted.lines) == sorted(row + table.header_height for row in (before, after))
            assert len(counted.rendered) <= 2
        assert app.highlighted[-3:] == ["row-1", "row-2", "row-1"]


async def test_scrolling_renders_only_rows_new_to_the_screen() -> None:
    app = Tables()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.tables[0]
        fill(table)
        await pilot.pause()
        on_screen = set(table.visible_keys())
        with counting(table) as counted:
            table.scroll_to(y=3, animate=False, immediate=True)
            await pilot.pause()
        assert counted.rendered and not set(counted.rendered) & (on_screen - {table.cursor_key})
        assert set(counted.rendered) == set(table.visible_keys()) - on_screen


async def test_bulk_removal_matches_one_by_one_and_keeps_the_cursor_row() -> None:
    app = Tables(2)
    async with app.run_test(size=(80, 60)) as pilot:
        bulk, single = app.tables
        for table in (bulk, single):
            fill(table)
            table.move_cursor(25)
        await pilot.pause()
        bulk.remove_rows(GONE)
        for key in GONE:
            single.remove_rows([key])
        await pilot.pause()
        kept = [key for key in KEYS if key not in GONE]
        assert list(bulk.ordered_keys) == list(single.ordered_keys) == kept
        assert [bulk.get_row_index(key) for key in kept] == list(range(bulk.row_count))
        assert bulk.cursor_key == single.cursor_key == "row-25"
        assert bulk.cursor_row == kept.index("row-25")
        assert "row-25" in shown(bulk, bulk.cursor_row)
        # The cursor's own row goes: the cursor stays where it was, on the row that took its place.
        bulk.remove_rows(["row-25"])
        await pilot.pause()
        assert bulk.cursor_key == kept[kept.index("row-25") + 1]
        assert app.highlighted[-1] == bulk.cursor_key


async def test_reordering_keeps_the_cursor_on_its_row_and_repaints_moved_lines() -> None:
    app = Tables()
    async with app.run_test(size=(80, 50)) as pilot:
        table = app.tables[0]
        fill(table)
        table.move_cursor(10)
        await pilot.pause()
        highlighted = len(app.highlighted)
        with counting(table) as counted:
            # row-3 jumps to the top: rows 0-2 shift down a line, the rest stay where they are.
            table.place_rows(["row-3", *(key for key in KEYS if key != "row-3")])
            await pilot.pause()
        assert table.cursor_key == "row-10" and table.cursor_row == 10
        assert sorted(counted.lines) == [row + table.header_height for row in range(4)]
        assert len(app.highlighted) == highlighted  # still the same row: no news for the screen
        assert shown(table, 0).strip().startswith("row-3")


async def test_columns_grow_to_fit_and_the_table_scrolls_sideways() -> None:
    app = Tables()
    async with app.run_test(size=(40, 20)) as pilot:
        table = app.tables[0]
        fill(table)
        wide = "w" * 60
        table.put_row("row-1", cells(wide))
        await pilot.pause()
        # Capped at the widget's width, not cut at the old width.
        assert table.column_width("name") == 60
        assert table.virtual_size.width > table.size.width
        assert shown(table, 1).strip().startswith("w" * 30)
        table.scroll_to(x=table.max_scroll_x, animate=False, immediate=True)
        await pilot.pause()
        assert "Value" in table.render_line(0).text


async def test_markup_in_cells_is_shown_literally() -> None:
    app = Tables()
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.tables[0]
        table.put_row("x", (Text("[bold red]x[/]"), Text("\\x1b[2J")))
        await pilot.pause()
        line = shown(table, 0)
        assert "[bold red]x[/]" in line and "\\x1b[2J" in line


async def test_click_home_end_and_the_focused_cursor_colour() -> None:
    app = Tables(2)
    async with app.run_test(size=(80, 60)) as pilot:
        table, other = app.tables
        fill(table)
        fill(other)
        table.focus()
        await pilot.pause()
        await pilot.press("end")
        assert table.cursor_key == KEYS[-1]
        await pilot.press("home")
        assert table.cursor_key == KEYS[0]
        await pilot.click(table, offset=(3, table.header_height + 4))
        assert table.cursor_key == "row-4"

        def cursor_background() -> object:
            strip = table.render_line(table.cursor_row - int(table.scroll_y) + table.header_height)
            return next(seg.style.bgcolor for seg in strip if "row-4" in seg.text and seg.style is not None)

        focused = cursor_background()
        other.focus()
        await pilot.pause()
        assert focused is not None and cursor_background() != focused


async def test_rows_added_above_in_one_batch_keep_the_cursor_row_in_view() -> None:
    app = Tables()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.tables[0]
        fill(table)
        table.move_cursor(35)
        await pilot.pause()
        scrolled = table.scroll_y
        added = [f"new-{i}" for i in range(20)]
        with table.changes():
            for key in added:
                table.put_row(key, cells(key))
            table.place_rows([*added, *KEYS])
        await pilot.pause()
        assert table.cursor_key == "row-35" and table.cursor_row == 55
        assert "row-35" in table.visible_keys() and table.scroll_y > scrolled
        # Scrolled away by hand, the view stays put while other rows come and go below.
        table.scroll_to(y=0, animate=False, immediate=True)
        with table.changes():
            table.put_row("last", cells("last"))
        await pilot.pause()
        assert table.scroll_y == 0


class LateTable(VirtualTable):
    """A table whose rows are reserved: their cells are built when first drawn or read, and counted."""

    def __init__(self) -> None:
        super().__init__(COLUMNS, id="late")
        self.built: list[str] = []

    def late_cells(self, key: str) -> tuple[Text, ...]:
        self.built.append(key)
        return cells(key, "x" * 30 if key == "row-wide" else "1")


class LateApp(App[None]):
    CSS = "VirtualTable { height: 12; }"

    def compose(self) -> ComposeResult:
        yield LateTable()


async def test_reserved_rows_are_built_only_when_drawn_or_read() -> None:
    app = LateApp()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(LateTable)
        many = [f"row-{i}" for i in range(2000)]
        table.reserve_rows([*many, "row-wide"])
        await pilot.pause()
        # Only the rows on screen (11 below the header) were built, not 2001.
        assert table.row_count == 2001 and set(table.built) == set(many[:11])
        assert shown(table, 3).split() == ["row-3", "1"]
        # Reading an off-screen row builds it; drawing it again later does not.
        assert table.get_cell("row-1500", "name").plain == "row-1500"
        assert table.built.count("row-1500") == 1
        # The order, the cursor and removal work on rows never built.
        table.place_rows(["row-wide", "row-1500"])
        assert table.ordered_keys[:3] == ["row-wide", "row-1500", "row-0"] and table.cursor_key == "row-0"
        await pilot.pause()
        # A wider reserved row widens its column when it is drawn.
        assert table.column_width("value") == 30
        table.remove_rows(["row-wide", "row-1999"])
        assert table.row_count == 1999 and not table.has_row("row-1999") and table.cursor_key == "row-0"
        assert table.ordered_keys[:2] == ["row-1500", "row-0"]
        # put_row on a reserved row gives it cells without adding it twice.
        assert table.put_row("row-1000", cells("row-1000", "7"))
        assert table.row_count == 1999 and table.get_cell("row-1000", "value").plain == "7"
        assert "row-1000" not in table.built
