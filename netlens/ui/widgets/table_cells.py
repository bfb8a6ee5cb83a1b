"""One table cell as segments: what :class:`~netlens.ui.widgets.virtual_table.VirtualTable` draws each row from."""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

#: Blank cells either side of each cell's content (as DataTable's default ``cell_padding``).
CELL_PADDING = 1


def same_cell(before: Text, after: Text) -> bool:
    """True when two cells look the same: text, style and spans (``Text.__eq__`` ignores style)."""
    return before.plain == after.plain and before.style == after.style and before.spans == after.spans


def cell_segments(cell: Text, width: int, pre: Style, post: Style | None, console: object) -> list[Segment]:
    """One cell fitted to ``width`` columns (justified as the text asks, cut if wider), styled ``pre`` + own + ``post``.

    The common cell (one style, no spans, fits) is one or two segments;
    anything else goes through Rich. The blank that fills the column is
    styled as Rich and DataTable style it: with the cell's own style when
    the text is justified (right, left, centre: Rich pads the text itself),
    else with the row's (so a struck-through closed row is struck only
    under its text).
    """
    plain = cell.plain
    length = cell_len(plain)
    pad_style = pre + post if post is not None else pre
    justify = cell.justify
    if not cell.spans and length <= width and "\n" not in plain and justify in (None, "default", "left", "right"):
        style = pre + (Style.parse(cell.style) if isinstance(cell.style, str) else cell.style)
        if post is not None:
            style += post
        pad = " " * (width - length)
        if justify == "right":
            return [Segment(pad + plain, style)]
        if justify == "left" or not pad:
            return [Segment(plain + pad, style)]
        return [Segment(plain, style), Segment(pad, pad_style)]
    fitted = cell.copy()
    fitted.no_wrap = True
    fitted.end = ""
    fitted.truncate(width, overflow="crop")
    segments = []
    for segment in fitted.render(console):  # type: ignore[arg-type]
        style = pre + segment.style if segment.style is not None else pre
        segments.append(Segment(segment.text, style + post if post is not None else style))
    blank = width - fitted.cell_len
    if blank:
        # Justified text gets the text's style on its padding; the default gets the row's.
        styled = justify not in (None, "default")
        filler = Segment(" " * blank, segments[-1].style if styled and segments else pad_style)
        if justify == "right":
            segments.insert(0, filler)
        else:
            segments.append(filler)
    return segments
