"""Draw a :class:`~netlens.capture.stats.series.Graph` as a vector SVG (or a PNG) with matplotlib.

matplotlib is imported only here, and only when a file is written: it costs
~0.3 s to import, which no headless command that does not draw should pay.
The object API (``Figure``) is used, not pyplot, so nothing global changes.
"""

from __future__ import annotations

import os
from typing import Any

from netlens.capture.stats.series import Graph
from netlens.errors import UserError

FORMATS = (".svg", ".png")


def _draw(axes: Any, graph: Graph) -> None:
    for trace in graph.traces:
        if trace.kind == "bars":
            axes.vlines(trace.xs, trace.ys, trace.tops, colors=trace.color, linewidth=1.2, label=trace.name)
            if trace.color == "red":
                # Retransmissions get a mark on top too, so a single one stays visible when zoomed out.
                axes.plot(trace.xs, trace.tops, "x", color=trace.color, markersize=4)
        elif trace.kind == "points":
            axes.plot(trace.xs, trace.ys, ".", color=trace.color, markersize=3, label=trace.name)
        elif trace.kind == "step":
            axes.step(trace.xs, trace.ys, where="post", color=trace.color, linewidth=1, label=trace.name)
        else:
            axes.plot(trace.xs, trace.ys, "-", color=trace.color, linewidth=1, label=trace.name)


def write_graph(graph: Graph, path: str) -> None:
    """Write ``graph`` to ``path`` (.svg: vector; .png: 120 dpi); a clear sentence on failure."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise UserError(f"cannot tell the format of {path}: give a file name ending in .svg or .png.")
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("drawing graphs needs matplotlib: pip install 'netlens[graphs]'.") from None
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "netlens"}):
        figure = Figure(figsize=(10, 6), layout="constrained")
        axes = figure.add_subplot()
        _draw(axes, graph)
        # The note (RTT min/avg/max and estimates) goes under the title, where the layout keeps room for it.
        axes.set_title(f"{graph.title}\n{graph.note}" if graph.note else graph.title, fontsize="medium")
        axes.set_xlabel(graph.x_label)
        axes.set_ylabel(graph.y_label)
        axes.ticklabel_format(axis="y", style="plain", useOffset=False)
        axes.grid(True, linewidth=0.3)
        if graph.traces:
            axes.legend(loc="best", fontsize="small")
        else:
            axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center")
        try:
            figure.savefig(path, dpi=120, metadata={"Date": None} if extension == ".svg" else None)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}.") from None
