"""The connection table's bulk row removal leaves the table as one remove_row per row would."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from netlens.ui.widgets.connections import ConnectionsTable

KEYS = [f"row-{i}" for i in range(40)]
GONE = ["row-0", "row-7", "row-8", "row-21", "row-39", "row-30"]


class Tables(App[None]):
    def compose(self) -> ComposeResult:
        yield ConnectionsTable(id="bulk")
        yield DataTable(id="plain")


def _fill(table: DataTable[object]) -> None:
    for key in KEYS:
        table.add_row(*(f"{key}:{column}" for column in range(len(table.columns))), key=key)


async def test_bulk_removal_matches_remove_row_one_by_one() -> None:
    app = Tables()
    async with app.run_test(size=(200, 60)) as pilot:
        bulk = app.query_one("#bulk", ConnectionsTable)
        plain = app.query_one("#plain", DataTable)
        for key, _ in ((c.key.value, c) for c in bulk.columns.values()):
            plain.add_column(str(key), key=key)
        _fill(bulk)
        _fill(plain)
        await pilot.pause()
        for table in (bulk, plain):
            table.move_cursor(row=25, animate=False)
        bulk._remove_rows(GONE)
        for key in GONE:
            plain.remove_row(key)
        await pilot.pause()
        assert bulk.row_count == plain.row_count == len(KEYS) - len(GONE)
        assert [row.key.value for row in bulk.ordered_rows] == [row.key.value for row in plain.ordered_rows]
        assert [bulk.get_row_index(key) for key in KEYS if key not in GONE] == list(range(bulk.row_count))
        assert bulk.cursor_coordinate == plain.cursor_coordinate
        assert bulk.get_row_at(bulk.cursor_row) == plain.get_row_at(plain.cursor_row)
        assert "row-7" not in bulk.rows and "row-9" in bulk.rows
