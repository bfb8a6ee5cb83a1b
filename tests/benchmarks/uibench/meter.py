"""Measuring key press to painted frame: the press, its target widget, and the hooks on the app.

Textual has no public hook for "this frame reached the terminal" or "the
compositor laid out / reflowed": :class:`Meter` wraps the private methods that
do it (``App._display``, ``Screen._compositor_refresh``, ``Compositor.reflow``),
all listed in :meth:`Meter.install` and ``__init__``. Key presses go in through
the public ``Driver.process_message`` exactly as a terminal driver's input
thread sends them.
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Press:
    """One key press and what became of it (perf_counter seconds)."""

    key: str
    posted: float
    handled: float | None = None
    painted: float | None = None
    #: The cursor row the key moved to (set by the key's action).
    expected: int | None = None
    #: Frames handed to the terminal between the action and the one that showed it.
    frames: int = 0
    #: The key did not move the cursor (at an end of the list): nothing to paint, not counted.
    noop: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Target:
    """A widget whose cursor a key moves, and how to find the cursor's row on screen."""

    def __init__(self, name: str, widget: Any, component: str) -> None:
        self.name = name
        self.widget = widget
        self.component = component

    def cursor(self) -> int:
        w = self.widget
        return w.cursor if hasattr(w, "follow") else w.cursor_row

    def rows(self) -> int:
        w = self.widget
        return w.row_count() if hasattr(w, "follow") else w.row_count

    def screen_line(self, row: int) -> int | None:
        """Screen y of ``row`` as the widget is scrolled now (None: not visible)."""
        w = self.widget
        region = w.content_region
        header = w.header_height if getattr(w, "show_header", False) else 0
        y = region.y + header + row - int(w.scroll_y)
        return y if region.y + header <= y < region.bottom else None


class Meter:
    """Hooks on the app: when keys are acted on and when frames reach the terminal; time spent per activity."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pending: Press | None = None
        self.target: Target | None = None
        self.frames = 0
        self.intervals: dict[str, list[tuple[float, float]]] = {}
        self.recording = False
        original = app._display

        def display(screen: Any, update: Any) -> None:
            original(screen, update)
            if update is None or app._batch_count:
                return
            # What a real driver does on the UI thread: encode the frame for the terminal.
            update.render_segments(app.console)
            now = time.perf_counter()
            self.frames += 1
            press = self.pending
            if press is not None and press.handled is not None and press.painted is None:
                press.frames += 1
                if self._shows_cursor(update, press):
                    press.painted = now
                    press.done.set()

        app._display = display

    def timed(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` wrapped to record its (start, end) while recording."""
        spans = self.intervals.setdefault(name, [])

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                if self.recording:
                    spans.append((start, time.perf_counter()))

        return wrapper

    def install(self, main: Any) -> None:
        """Time the main screen's periodic work and frames (and the garbage collector's pauses)."""
        gc_spans = self.intervals.setdefault("garbage collection", [])
        full_spans = self.intervals.setdefault("  of which full (gen 2)", [])
        gc_start = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_start[0] = time.perf_counter()
            elif self.recording and threading.current_thread() is threading.main_thread():
                span = (gc_start[0], time.perf_counter())
                gc_spans.append(span)
                if info.get("generation") == 2:
                    full_spans.append(span)

        gc.callbacks.append(on_gc)
        self._gc_callback = on_gc
        main.tick = self.timed("10 Hz tick (all)", main.tick)
        main.packets.tick = self.timed("  packets tick", main.packets.tick)
        main.events.add = self.timed("  event log add", main.events.add)
        main.refresh_status = self.timed("  status line", main.refresh_status)
        main.apply_snapshot = self.timed("kernel snapshot -> table", main.apply_snapshot)
        main._compositor_refresh = self.timed("frame: compose+encode", main._compositor_refresh)
        compositor = main._compositor
        compositor.reflow = self.timed("frame: layout reflow", compositor.reflow)
        compositor.reflow_visible = self.timed("frame: layout reflow", compositor.reflow_visible)

    def uninstall(self) -> None:
        """Stop listening to the garbage collector."""
        if getattr(self, "_gc_callback", None) in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)

    def watch(self, target: Target) -> None:
        """Record when a key's action ran on ``target`` and which row it moved the cursor to."""
        self.target = target
        widget = target.widget

        def mark(before: int) -> None:
            press = self.pending
            if press is not None and press.handled is None:
                press.handled = time.perf_counter()
                press.expected = target.cursor()
                if press.expected == before:
                    press.noop = True
                    press.done.set()

        if hasattr(widget, "follow"):  # a VirtualList
            action = widget.action_cursor

            def action_cursor(delta: int) -> None:
                before = target.cursor()
                action(delta)
                mark(before)

            widget.action_cursor = action_cursor
        else:  # the connections table
            up, down = widget.action_cursor_up, widget.action_cursor_down

            def action_cursor_up() -> None:
                before = target.cursor()
                up()
                mark(before)

            def action_cursor_down() -> None:
                before = target.cursor()
                down()
                mark(before)

            widget.action_cursor_up = action_cursor_up
            widget.action_cursor_down = action_cursor_down

    def _shows_cursor(self, update: Any, press: Press) -> bool:
        """Does this frame draw the cursor on the row the key moved it to?"""
        from textual._compositor import ChopsUpdate, LayoutUpdate
        from textual.strip import Strip

        target = self.target
        assert target is not None and press.expected is not None
        y = target.screen_line(press.expected)
        if y is None:
            return False
        region = target.widget.region
        x1, x2 = region.x, region.right
        if isinstance(update, ChopsUpdate):
            if not any(sy == y and sx1 < x2 and sx2 > x1 for sy, sx1, sx2 in update.spans):
                return False
            segments = [seg for x, strip in update.chops[y].items() if strip is not None and x1 <= x < x2
                        for seg in strip]
        elif isinstance(update, LayoutUpdate):
            row = y - update.region.y
            if not 0 <= row < len(update.strips):
                return False
            segments = list(Strip.join(list(update.strips[row])).crop(x1, x2))
        else:
            return False
        bg = target.widget.get_component_rich_style(target.component).bgcolor
        return any(seg.style is not None and seg.style.bgcolor == bg for seg in segments)


def press_keys(app: Any, meter: Meter, count: int, presses: list[Press], stop: threading.Event) -> None:
    """Thread: post key presses like a terminal's input thread until ``count`` of them moved the cursor.

    Each press comes 25-75 ms after the previous one was painted. A press that could
    not move the cursor (the list had fewer than two rows at that moment) is kept but
    not counted. Gives up after 5 presses in a row that were not painted within 3 s,
    or after ``3 * count`` presses in all.
    """
    from textual import events

    driver = app._driver
    rng = random.Random(1234)
    misses = counted = 0
    for i in range(3 * count):
        if counted >= count or stop.wait(rng.uniform(0.025, 0.075)):
            break
        key = "up" if i % 2 == 0 else "down"
        press = Press(key, time.perf_counter())
        meter.pending = press
        presses.append(press)
        driver.process_message(events.Key(key, None))
        painted = press.done.wait(3.0)
        meter.pending = None
        misses = 0 if painted else misses + 1
        counted += not press.noop
        if press.noop:
            stop.wait(0.2)  # the list is (nearly) empty for now: give it a moment
        if misses >= 5 or stop.is_set():
            break
    meter.pending = None
