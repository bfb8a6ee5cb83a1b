"""A list that renders only its visible rows (Textual's Line API), for lists of any length.

Subclasses say how many rows there are and how to draw one; the widget does
scrolling, a row cursor, and "follow" (stay at the newest row until the user
scrolls away, as a capture tool should). Drawing a row is the subclass's
cost, paid only for rows on screen, so a million-row list costs what a
forty-row one does.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.events import Click, MouseScrollUp
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


def resize_virtual(view: ScrollView, size: Size) -> None:
    """Set ``view``'s virtual size without a screen-wide layout when only the row count moved.

    ``virtual_size`` is a layout reactive: assigning it re-lays out and
    repaints the whole screen, which at 10 updates a second under a
    packet flood cost a third of the UI's time. While the scrollbars stay
    as they are, updating the value and the scrollbars is all it takes.
    (Relies on ScrollView._scroll_update, stable in the pinned Textual.)
    """
    old = view.virtual_size
    if size == old:
        return
    height = view.scrollable_content_region.height
    width = view.scrollable_content_region.width
    same_bars = (old.height > height) == (size.height > height) and (old.width > width) == (size.width > width)
    if same_bars and view.size.height:
        view.set_reactive(ScrollView.virtual_size, size)
        view._scroll_update(size)
    else:
        view.virtual_size = size


class VirtualList(ScrollView, can_focus=True):
    """Base class: override :meth:`row_count` and :meth:`render_row`."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last / follow", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    COMPONENT_CLASSES = {"virtual-list--cursor"}

    #: Row under the cursor (-1: none yet). Not a repainting reactive: :meth:`watch_cursor` repaints the
    #: two lines a move changes, where a repaint would redraw every row on screen (under a packet flood,
    #: most of an arrow key's frame).
    cursor: reactive[int] = reactive(-1, always_update=True, repaint=False)
    #: Keep the newest row in view as rows arrive (nothing drawn depends on it).
    follow: reactive[bool] = reactive(True, repaint=False)

    class Highlighted(Message):
        """The cursor moved to ``index``."""

        def __init__(self, sender: VirtualList, index: int) -> None:
            super().__init__()
            self.list = sender
            self.index = index

        @property
        def control(self) -> VirtualList:
            """The list that sent the message."""
            return self.list

    class Selected(Highlighted):
        """Enter (or a double click) on row ``index``."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._cache: LRUCache[tuple[int, int], Strip] = LRUCache(512)
        self._count = 0
        self._line_style = Style()
        self._cursor_style = Style()

    # -- for subclasses ---------------------------------------------------------------

    def row_count(self) -> int:
        """How many rows the list has now."""
        raise NotImplementedError

    def render_row(self, index: int) -> Text:
        """The row at ``index`` as Rich text (never markup parsed from data)."""
        raise NotImplementedError

    def row_width(self) -> int:
        """Widest row in cells, for horizontal scrolling (default: the widget's width)."""
        return self.size.width

    # -- data changes -----------------------------------------------------------------

    def rows_changed(self, reset: bool = False) -> None:
        """Call after rows were appended (or everything changed, ``reset``)."""
        if reset:
            self._cache.clear()
        count = self.row_count()
        grew = count != self._count
        self._count = count
        resize_virtual(self, Size(self.row_width(), count))
        if self.follow and count:
            if self.cursor != count - 1:
                self.cursor = count - 1
            # After the refresh: the new virtual size must be laid out before the end moves.
            self._stick_to_end()
        elif self.cursor >= count:
            self.cursor = count - 1
        if grew or reset:
            self.refresh()

    # -- drawing ----------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's base style walks every ancestor: once per paint, not once per line.
        self._line_style = self.rich_style
        self._cursor_style = self.get_component_rich_style("virtual-list--cursor")
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        style = self._line_style
        if index >= self._count or index < 0:
            return Strip.blank(width, style)
        key = (index, width + scroll_x)
        strip = self._cache.get(key)
        if strip is None:
            text = self.render_row(index)
            text.no_wrap = True
            text.end = ""
            strip = Strip(list(text.render(self.app.console))).crop_extend(0, scroll_x + width, style)
            self._cache[key] = strip
        if index == self.cursor:
            # The cursor row is styled on top of the cached one; nothing to invalidate on moves.
            strip = strip.apply_style(self._cursor_style)
        # No apply_offsets(): clicks map to rows from scroll_y + event.y, and the
        # per-segment mouse metadata it adds cost more than drawing the row.
        return strip.crop(scroll_x, scroll_x + width)

    # -- cursor and following ---------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        if new >= 0:
            self.post_message(self.Highlighted(self, new))
        # Two screen lines: the row the cursor left and the one it reached (a scroll repaints the rest).
        self._refresh_index(old)
        self._refresh_index(new)

    def _refresh_index(self, index: int) -> None:
        """Repaint the screen line showing row ``index``, if it is on screen."""
        line = index - int(self.scroll_y)
        if 0 <= line < self.size.height:
            self.refresh(Region(0, line, self.size.width, 1))

    def _move(self, index: int) -> None:
        count = self.row_count()
        if not count:
            return
        index = max(0, min(count - 1, index))
        self.cursor = index
        self.follow = index == count - 1 and self.follow
        self.scroll_to_region_of(index)

    def scroll_to_region_of(self, index: int) -> None:
        """Scroll just enough to show row ``index``."""
        top = int(self.scroll_y)
        height = max(1, self.scrollable_content_region.height)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        """Move the cursor; moving up stops following."""
        if delta < 0:
            self.follow = False
        self._move((self.cursor if self.cursor >= 0 else 0) + delta)

    def action_page(self, direction: int) -> None:
        """Move a page up or down."""
        if direction < 0:
            self.follow = False
        self._move(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        """Go to the first row (stops following)."""
        self.follow = False
        self._move(0)

    def action_last(self) -> None:
        """Go to the newest row and follow new ones again."""
        self.follow = True
        self._move(self.row_count() - 1)

    def action_select(self) -> None:
        """Open the row under the cursor."""
        if 0 <= self.cursor < self.row_count():
            self.post_message(self.Selected(self, self.cursor))

    def _on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        # Scrolling back through history means "stop following".
        self.follow = False

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old and new < self.max_scroll_y:
            self.follow = False

    def on_resize(self) -> None:
        """Keep the newest row in view when the list is (re)sized while following."""
        self._stick_to_end()

    def watch_show_horizontal_scrollbar(self) -> None:
        # The scrollbar takes a row from the view: while following, the last row must stay visible.
        self._stick_to_end()

    def _stick_to_end(self) -> None:
        if self.follow and self._count:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False, force=True)

    def on_click(self, event: Click) -> None:
        """Click moves the cursor; a double click opens the row."""
        index = int(self.scroll_y) + event.y
        if 0 <= index < self.row_count():
            self.follow = False
            self.cursor = index
            if event.chain >= 2:
                self.post_message(self.Selected(self, index))
