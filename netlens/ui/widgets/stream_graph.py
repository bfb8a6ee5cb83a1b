"""A stream graph in the terminal: a :class:`~netlens.capture.stats.series.Graph` drawn with plotext.

plotext (through textual-plotext's widget) draws braille points and lines with
axes, ticks and a legend. It draws every point it is given, so traces are
first thinned to at most two points (the lowest and the highest) per braille
column of the visible range: what a terminal can show of them anyway, at a
cost that does not grow with the stream. The drawing is turned into screen
lines (strips) off the UI thread too, so showing a new graph costs the UI
thread nothing but a repaint of lines it already has: a key press is never
queued behind a graph's rendering.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import NamedTuple

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual_plotext import PlotextPlot

from netlens.capture.stats.series import Graph, Trace

#: Graph colour names (shared with the SVG renderer) -> plotext's palette.
_COLORS = {"blue": "blue+", "red": "red+", "green": "green+", "olive": "orange", "purple": "magenta+",
           "orange": "orange+", "gray": "gray", "pink": "magenta"}


class Thinned(NamedTuple):
    """A trace reduced to what fits on screen."""

    xs: list[float]
    ys: list[float]
    packets: list[int]


def thin(trace: Trace, x0: float, x1: float, columns: int) -> Thinned:
    """The lowest and highest point (bars: their tops) of ``trace`` per column of ``[x0, x1]``."""
    lo, hi = bisect_left(trace.xs, x0), bisect_right(trace.xs, x1)
    ys = trace.tops if trace.kind == "bars" else trace.ys
    if hi - lo <= 2 * columns:
        return Thinned(trace.xs[lo:hi], list(ys[lo:hi]), trace.packets[lo:hi])
    width = (x1 - x0) / columns or 1.0
    lows: dict[int, int] = {}
    highs: dict[int, int] = {}
    for i in range(lo, hi):
        column = int((trace.xs[i] - x0) / width)
        if column not in lows or ys[i] < ys[lows[column]]:
            lows[column] = i
        if column not in highs or ys[i] > ys[highs[column]]:
            highs[column] = i
    keep = sorted(set(lows.values()) | set(highs.values()))
    return Thinned([trace.xs[i] for i in keep], [ys[i] for i in keep], [trace.packets[i] for i in keep])


def as_steps(xs: list[float], ys: list[float], end: float) -> tuple[list[float], list[float]]:
    """A line that holds each value until the next point (and the last one until ``end``)."""
    if not xs:
        return [], []
    step_xs, step_ys = [xs[0]], [ys[0]]
    for x, y, previous in zip(xs[1:], ys[1:], ys, strict=False):
        step_xs += [x, x]
        step_ys += [previous, y]
    if end > xs[-1]:
        step_xs.append(end)
        step_ys.append(ys[-1])
    return step_xs, step_ys


def x_extent(graph: Graph) -> tuple[float, float]:
    """The smallest and largest x of any trace (0, 1 for an empty graph)."""
    starts = [trace.xs[0] for trace in graph.traces if trace.xs]
    ends = [trace.xs[-1] for trace in graph.traces if trace.xs]
    if not starts:
        return 0.0, 1.0
    lo, hi = min(starts), max(ends)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


class Canvas(NamedTuple):
    """Where plotext put the data area: first column and row on screen, and its width and height in cells."""

    column: int
    row: int
    width: int
    height: int


def canvas_of(lines: list[str]) -> Canvas | None:
    """The data area of a plotext drawing, from its frame (``┌...┐`` above it, ``└...┘`` below)."""
    top = next((i for i, line in enumerate(lines) if "┌" in line and "┐" in line), None)
    if top is None:
        return None
    bottom = next((i for i in range(top + 1, len(lines)) if "└" in lines[i]), None)
    left, right = lines[top].index("┌") + 1, lines[top].index("┐")
    if bottom is None or right <= left:
        return None
    return Canvas(left, top + 1, right - left, bottom - top - 1)


class Drawing(NamedTuple):
    """One drawing of a graph without its cursor: its lines, the points shown, the x range and the data area."""

    strips: list[Strip]
    shown: list[Thinned]
    view: tuple[float, float]
    canvas: Canvas | None


def cursor_column(canvas: Canvas, view: tuple[float, float], x: float) -> int | None:
    """The screen column of ``x`` (plotext's own mapping of a value to a cell), or None outside the view."""
    x0, x1 = view
    if not x0 <= x <= x1 or x1 <= x0:
        return None
    return canvas.column + math.floor(round(0.5 + (canvas.width - 1) * (x - x0) / (x1 - x0), 8))


def with_cursor(drawing: Drawing, x: float | None) -> list[Strip]:
    """The drawing's lines with a vertical cursor line at ``x`` drawn over the data area."""
    canvas = drawing.canvas
    column = cursor_column(canvas, drawing.view, x) if canvas is not None and x is not None else None
    if canvas is None or column is None:
        return drawing.strips
    strips = list(drawing.strips)
    for row in range(canvas.row, min(len(strips), canvas.row + canvas.height)):
        strip = strips[row]
        if column >= strip.cell_length:
            continue
        before, cell, after = strip.divide([column, column + 1, strip.cell_length])
        under = next(iter(cell), None)
        style = (under.style if under is not None and under.style else Style()) + _CURSOR
        strips[row] = Strip.join([before, Strip([Segment("│", style)], 1), after])
    return strips


#: The cursor line's colour.
_CURSOR = Style(color="bright_white", bold=True)


class StreamGraph(PlotextPlot):
    """Draws one graph; remembers the thinned points so a column can be mapped back to a packet.

    Drawing (plotext's build and turning its text into strips, ~10-40 ms) is
    done by :meth:`prepare`, which the screen calls from a thread of its own;
    :meth:`install` puts the result on screen. Every repaint until the next
    one reuses those strips (Textual's line API) instead of rendering again,
    and the cursor is drawn over them (:meth:`set_cursor`, well under a
    millisecond): moving it never waits for plotext.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: list[Thinned] = []
        self._drawing: Drawing | None = None
        self._strips: list[Strip] | None = None

    @staticmethod
    def thin_all(graph: Graph, view: tuple[float, float], width: int) -> list[Thinned]:
        """Every trace of ``graph`` thinned to what a plot ``width`` cells wide can show of ``view``."""
        columns = max(20, width - 12)  # one column per character cell: what a reader can tell apart
        return [thin(trace, view[0], view[1], columns) for trace in graph.traces]

    def prepare(self, graph: Graph, view: tuple[float, float], size: tuple[int, int], base: Style) -> Drawing:
        """Draw ``graph`` over the x range ``view`` at ``size`` (width, height), without a cursor.

        ``base`` is the widget's own style, under plotext's colours (what Textual does to a rendered Text).
        """
        plt = self.plt
        width, height = size
        plt.clear_figure()
        plt.plotsize(width, height)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt.title(graph.title)
        plt.xlabel(graph.x_label)
        plt.ylabel(graph.y_label)
        shown = self.thin_all(graph, view, width)
        for trace, points in zip(graph.traces, shown, strict=True):
            if points.xs:
                self._draw(trace, points, view)
        plt.xlim(view[0], view[1])
        lines = list(Text.from_ansi(plt.build()).split("\n", allow_blank=True))
        return Drawing(self._strips_of(lines, width, base), shown, view, canvas_of([line.plain for line in lines]))

    def _strips_of(self, lines: list[Text], width: int, base: Style) -> list[Strip]:
        """The drawing as screen lines (what the compositor would otherwise render on the UI thread)."""
        console = self.app.console
        strips = []
        for line in lines:
            line.no_wrap = True
            line.end = ""
            strips.append(Strip(list(line.render(console))).apply_style(base).crop_extend(0, width, base))
        return strips

    def _draw(self, trace: Trace, points: Thinned, view: tuple[float, float]) -> None:
        plt = self.plt
        color = _COLORS.get(trace.color, "default")
        if trace.kind in ("points", "bars"):
            marker = "x" if trace.name == "retransmission" else "braille"
            plt.scatter(points.xs, points.ys, color=color, marker=marker, label=trace.name)
        elif trace.kind == "step":
            xs, ys = as_steps(points.xs, points.ys, view[1])
            plt.plot(xs, ys, color=color, marker="braille", label=trace.name)
        else:
            plt.plot(points.xs, points.ys, color=color, marker="braille", label=trace.name)

    def install(self, drawing: Drawing, cursor: float | None) -> None:
        """Show what :meth:`prepare` drew, with the cursor at ``cursor``."""
        self._drawing = drawing
        self.shown = drawing.shown
        self.set_cursor(cursor)

    def set_cursor(self, cursor: float | None) -> None:
        """Draw the cursor line at ``cursor`` (None: none) over the current drawing."""
        if self._drawing is not None:
            self._strips = with_cursor(self._drawing, cursor)
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """A line of the last drawn graph. plotext is never called here: a thread may be drawing with it now."""
        width = self.size.width
        if self._strips is None:
            if y == 0:
                return Strip(list(Text("drawing…", style="dim").render(self.app.console))).crop_extend(0, width, None)
            return Strip.blank(width, self.rich_style)
        if y < len(self._strips):
            strip = self._strips[y]
            return strip if strip.cell_length == width else strip.crop_extend(0, width, self.rich_style)
        return Strip.blank(width, self.rich_style)

    def nearest_packet(self, x: float) -> int | None:
        """The packet of the shown point closest to ``x`` (first trace that has one)."""
        best: tuple[float, int] | None = None
        for points in self.shown:
            index = bisect_left(points.xs, x)
            for i in (index - 1, index):
                if 0 <= i < len(points.xs):
                    distance = abs(points.xs[i] - x)
                    if best is None or distance < best[0]:
                        best = (distance, points.packets[i])
        return best[1] if best else None
