"""A table that renders only what changed: keyed rows, a header, a row cursor (Textual's Line API).

Textual's ``DataTable`` keys every render cache by a table-wide update count
and by the cursor, so one changed cell, one added row or one cursor move
re-renders every visible row, cell by cell, through Rich. Here each row's
strip is cached by its key and dropped only when one of its cells changes
(text or style), so:

* an update re-renders only the rows whose cells changed, and repaints only
  the screen lines that show them (or show another row than before);
* a cursor move repaints two lines: the row it left and the row it reached;
* scrolling renders only rows new to the screen (the others come from the cache).

Columns are as wide as their widest content so far (they grow, like
``DataTable``'s, never shrink), each at most the widget's width; the table
scrolls sideways when they do not fit. Cells are Rich ``Text`` only: never
markup, so whatever the data says is shown literally.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from netlens.ui.widgets.table_cells import CELL_PADDING, cell_segments, same_cell
from netlens.ui.widgets.virtual_list import resize_virtual


class VirtualTable(ScrollView, can_focus=True):
    """Rows of Rich ``Text`` cells keyed by strings, shown in the order :meth:`place_rows` gives."""

    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .virtual-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .virtual-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .virtual-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .virtual-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    COMPONENT_CLASSES = {"virtual-table--header", "virtual-table--cursor"}

    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first_row", "First row", show=False),
        Binding("end", "last_row", "Last row", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]

    #: Lines the header takes (it stays on top while the rows scroll).
    header_height = 1
    show_header = True

    class RowHighlighted(Message):
        """The cursor is on another row: ``key`` at ``index``."""

        def __init__(self, table: VirtualTable, key: str, index: int) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.index = index

        @property
        def control(self) -> VirtualTable:
            """The table that sent the message."""
            return self.table

    def __init__(self, columns: Sequence[tuple[str, str]], *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        """``columns``: (key, label) pairs, left to right."""
        super().__init__(name=name, id=id, classes=classes)
        self._column_keys = [key for key, _ in columns]
        self._column_index = {key: index for index, key in enumerate(self._column_keys)}
        self._labels = tuple(Text(label) for _, label in columns)
        #: Widest content of each column so far (cells, without padding).
        self._widths = [label.cell_len for label in self._labels]
        self._cells: dict[str, tuple[Text, ...]] = {}
        #: Row keys in display order, and each key's index in it.
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        #: Each row rendered as the table's full width (no cursor): dropped when a cell of it changes.
        self._strips: dict[str, Strip] = {}
        self._header: Strip | None = None
        self._cursor = 0
        self._cursor_key: str | None = None
        #: Inside :meth:`changes`: the virtual size is set once, at the end.
        self._changing = 0
        self._resize_due = False
        self._scroll_due = False
        self._base_style = Style()
        self._header_style = Style()
        self._cursor_style = Style()
        self._cursor_post = Style()

    # -- reading ----------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """How many rows the table has."""
        return len(self._keys)

    @property
    def ordered_keys(self) -> Sequence[str]:
        """Row keys in display order (do not modify)."""
        return self._keys

    @property
    def cursor_row(self) -> int:
        """Index of the row under the cursor (0 when the table is empty)."""
        return self._cursor

    @property
    def cursor_key(self) -> str | None:
        """Key of the row under the cursor, if any."""
        return self._keys[self._cursor] if self._keys else None

    def get_row_index(self, key: str) -> int:
        """Where row ``key`` is shown (KeyError if it is not)."""
        return self._index[key]

    def get_row(self, key: str) -> tuple[Text, ...]:
        """The cells of row ``key``."""
        return self._cells_of(key)

    def get_cell(self, key: str, column: str) -> Text:
        """The cell of row ``key`` in column ``column`` (a column key)."""
        return self._cells_of(key)[self._column_index[column]]

    def has_row(self, key: str) -> bool:
        """True if row ``key`` is in the table (with its cells or reserved)."""
        return key in self._index

    def column_width(self, column: str) -> int:
        """Content width of column ``column`` now (without padding)."""
        return self._widths[self._column_index[column]]

    def visible_keys(self) -> list[str]:
        """Keys of the rows on screen now, top to bottom."""
        top = int(self.scroll_y)
        return self._keys[top: top + max(0, self._rows_height())]

    # -- changing ---------------------------------------------------------------------

    @contextmanager
    def changes(self) -> Iterator[None]:
        """Many rows added or removed at once: the table's size is worked out once, at the end.

        (Under a flood a snapshot adds hundreds of rows; resizing after each
        one cost more than the rows themselves.)
        """
        self._changing += 1
        try:
            yield
        finally:
            self._changing -= 1
            if not self._changing and self._resize_due:
                self._rows_changed()
            if not self._changing and self._scroll_due:
                # Not inside: the old size would have limited the scroll.
                self._scroll_due = False
                self.scroll_to_row(self._cursor)

    def reserve_rows(self, keys: Iterable[str]) -> None:
        """Add rows (at the end) whose cells are worked out only when first drawn or read (:meth:`late_cells`).

        Under a flood a snapshot brings thousands of rows, nearly all of them
        off screen and gone before anyone scrolls to them: building their
        cells is most of the update's cost. Columns widen when such a row is
        first drawn, not before.
        """
        count = len(self._keys)
        for key in keys:
            if key not in self._index:
                self._index[key] = len(self._keys)
                self._keys.append(key)
        if len(self._keys) != count:
            self._rows_changed()
            self._note_cursor()

    def late_cells(self, key: str) -> Sequence[Text]:
        """The cells of a row added by :meth:`reserve_rows`, asked for when it is first drawn or read."""
        raise NotImplementedError(f"{type(self).__name__} reserves rows but cannot build them")

    def _cells_of(self, key: str) -> tuple[Text, ...]:
        cells = self._cells.get(key)
        if cells is None:
            if key not in self._index:
                raise KeyError(key)
            late = tuple(self.late_cells(key))
            # late_cells may have put the row itself (with put_row): keep what it put.
            cells = self._cells.setdefault(key, late)
            if self._widen(cells):
                self._layout_changed()
        return cells

    def put_row(self, key: str, cells: Sequence[Text]) -> bool:
        """Add row ``key`` (at the end) or set its cells; True if it was added or looks different now."""
        cells = tuple(cells)
        old = self._cells.get(key)
        if old is not None and len(old) == len(cells) and all(map(same_cell, old, cells)):
            return False
        self._cells[key] = cells
        self._strips.pop(key, None)
        widened = self._widen(cells)
        if old is None and key not in self._index:
            self._index[key] = len(self._keys)
            self._keys.append(key)
            self._rows_changed()
            self._note_cursor()  # the first row brings the cursor
        if widened:
            self._layout_changed()
        else:
            self._refresh_row(self._index[key])
        return True

    def remove_rows(self, keys: Iterable[str]) -> None:
        """Remove these rows (those shown); the others keep their order, the cursor its row if it stays."""
        gone = {key for key in keys if key in self._index}
        if not gone:
            return
        for key in gone:
            self._cells.pop(key, None)
            self._strips.pop(key, None)
        self._set_order([key for key in self._keys if key not in gone])

    def place_rows(self, wanted: Sequence[str]) -> None:
        """Show the rows in the order ``wanted``; rows it leaves out keep their order, after the others."""
        placed = [key for key in wanted if key in self._index]
        if len(placed) < len(self._keys):
            known = set(placed)
            placed += [key for key in self._keys if key not in known]
        if placed != self._keys:
            self._set_order(placed)

    def move_cursor(self, row: int) -> None:
        """Put the cursor on row ``row`` (clamped) and scroll it into view."""
        if not self._keys:
            return
        row = max(0, min(len(self._keys) - 1, row))
        old = self._cursor
        self._cursor = row
        if row != old:
            self._refresh_row(old)
            self._refresh_row(row)
        self._note_cursor()
        self.scroll_to_row(row)

    def scroll_to_row(self, row: int) -> None:
        """Scroll just enough to show row ``row`` below the header."""
        top = int(self.scroll_y)
        height = max(1, self._rows_height())
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)

    def _set_order(self, keys: list[str]) -> None:
        """Show ``keys`` in this order: repaint only the screen lines that now show another row."""
        top, height = int(self.scroll_y), max(0, self._rows_height())
        before = self._keys[top: top + height]
        count, cursor = len(self._keys), self._cursor
        self._keys = keys
        self._index = {key: index for index, key in enumerate(keys)}
        cursor_key = self._cursor_key
        if cursor_key is not None and cursor_key in self._index:
            self._cursor = self._index[cursor_key]
        else:
            self._cursor = max(0, min(self._cursor, len(keys) - 1))
        if len(keys) != count:
            self._rows_changed()
        after = self._keys[top: top + height]
        for line in range(max(len(before), len(after))):
            if line >= len(before) or line >= len(after) or before[line] != after[line]:
                self._refresh_row(top + line)
        self._note_cursor()
        if cursor_key is not None and cursor_key == self._cursor_key and self._cursor != cursor:
            # The cursor's row moved: keep it in view (as the DataTable did).
            self._scroll_due = True
            if not self._changing:
                self._scroll_due = False
                self.scroll_to_row(self._cursor)

    def _note_cursor(self) -> None:
        """Post :class:`RowHighlighted` if the cursor is on another row than last time."""
        key = self.cursor_key
        if key == self._cursor_key:
            return
        self._cursor_key = key
        if key is not None:
            self.post_message(self.RowHighlighted(self, key, self._cursor))

    def _widen(self, cells: Sequence[Text]) -> bool:
        widened = False
        for column, cell in enumerate(cells):
            width = cell.cell_len
            if width > self._widths[column]:
                self._widths[column] = width
                widened = True
        return widened

    def _rows_changed(self) -> None:
        """The row count moved: new virtual size (without a screen-wide layout when the scrollbars stay)."""
        self._resize_due = bool(self._changing)
        if self._resize_due:
            return
        resize_virtual(self, Size(self._table_width(), len(self._keys) + self.header_height))

    def _layout_changed(self) -> None:
        """A column widened: every row's strip is stale."""
        self._strips.clear()
        self._header = None
        self._rows_changed()
        self.refresh()

    def _refresh_row(self, row: int) -> None:
        """Repaint the screen line showing row ``row``, if it is on screen."""
        line = row - int(self.scroll_y) + self.header_height
        if self.header_height <= line < self.size.height:
            self.refresh(Region(0, line, self.size.width, 1))

    def _rows_height(self) -> int:
        return self.scrollable_content_region.height - self.header_height

    def _fitted_widths(self) -> list[int]:
        """Column widths as drawn: each at most the widget's width (less its padding)."""
        limit = max(1, self.size.width - 2 * CELL_PADDING) if self.size.width else None
        return [min(width, limit) if limit else width for width in self._widths]

    def _table_width(self) -> int:
        return sum(self._fitted_widths()) + 2 * CELL_PADDING * len(self._widths)

    # -- cursor actions ---------------------------------------------------------------

    def action_cursor_up(self) -> None:
        """Up: the row above."""
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        """Down: the row below."""
        self.move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        """Page up: a screenful of rows up."""
        self.move_cursor(self._cursor - max(1, self._rows_height() - 1))

    def action_page_down(self) -> None:
        """Page down: a screenful of rows down."""
        self.move_cursor(self._cursor + max(1, self._rows_height() - 1))

    def action_first_row(self) -> None:
        """Home: the first row."""
        self.move_cursor(0)

    def action_last_row(self) -> None:
        """End: the last row."""
        self.move_cursor(len(self._keys) - 1)

    def on_click(self, event: Click) -> None:
        """A click on a row puts the cursor on it."""
        if event.y >= self.header_height:
            row = int(self.scroll_y) + event.y - self.header_height
            if 0 <= row < len(self._keys):
                self.move_cursor(row)

    def on_resize(self) -> None:
        """A new width may cap the columns differently."""
        self._layout_changed()

    # -- drawing ----------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # Styles walk the ancestors: once per paint, not once per line. A new base style (focus
        # tints the background) makes every cached row stale.
        base = self.rich_style
        if base != self._base_style:
            self._base_style = base
            self._strips.clear()
            self._header = None
        header = base + self.get_component_rich_style("virtual-table--header")
        if header != self._header_style:
            self._header_style = header
            self._header = None
        cursor = self.get_component_rich_style("virtual-table--cursor")
        self._cursor_style = base + cursor
        # The cursor's colour wins over the cells' own colours, as in DataTable.
        self._cursor_post = Style(color=cursor.color)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self._base_style
        if y < self.header_height:
            if self._header is None:
                self._header = self._render_cells(self._labels, self._header_style, None)
            return self._header.crop_extend(scroll_x, scroll_x + width, base)
        row = scroll_y + y - self.header_height
        if not 0 <= row < len(self._keys):
            return Strip.blank(width, base)
        key = self._keys[row]
        if row == self._cursor:
            strip = self._render_cells(self._cells_of(key), self._cursor_style, self._cursor_post)
        else:
            cached = self._strips.get(key)
            strip = cached if cached is not None else self._row_strip(key)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _row_strip(self, key: str) -> Strip:
        """Row ``key`` as drawn without the cursor (cached until one of its cells changes)."""
        strip = self._strips[key] = self._render_cells(self._cells_of(key), self._base_style, None)
        return strip

    def _render_cells(self, cells: Sequence[Text], pre: Style, post: Style | None) -> Strip:
        console = self.app.console
        pad = Segment(" " * CELL_PADDING, pre + post if post is not None else pre)
        segments: list[Segment] = []
        widths = self._fitted_widths()
        for cell, width in zip(cells, widths, strict=False):
            segments.append(pad)
            segments.extend(cell_segments(cell, width, pre, post, console))
            segments.append(pad)
        return Strip(segments, sum(widths) + 2 * CELL_PADDING * len(widths))
