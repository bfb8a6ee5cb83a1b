"""Keys first: a key closes the gate the server waits at, from the terminal's input thread on, till its frame is out."""

from __future__ import annotations

import time

from textual import events
from waiting import until

from netlens.keygate import TAIL
from netlens.server import ServerConfig
from netlens.ui.app import NetlensApp
from netlens.ui.feeds import LiveFeeds

SIZE = (120, 40)


async def test_the_terminal_input_thread_closes_the_gate_as_it_reads_a_key() -> None:
    app = NetlensApp(LiveFeeds(ServerConfig(mode="echo", port=0), capture=False), animate=False)
    driver = app.get_driver_class()(app)
    sent: list[object] = []
    driver.send_message = sent.append  # type: ignore[method-assign]  # (no app running to hand them to)
    driver.process_message(events.Resize.from_dimensions((80, 24), None))
    assert app.key_gate.is_open  # only keys close it
    driver.process_message(events.Key("down", None))
    assert not app.key_gate.is_open and len(sent) == 2


async def test_the_gate_opens_again_once_the_keys_frame_is_out() -> None:
    app = NetlensApp(LiveFeeds(ServerConfig(mode="echo", port=0), capture=False), animate=False)
    moments: list[tuple[str, float]] = []
    gate = app.key_gate
    close, open_ = gate.close, gate.open

    def closing() -> None:
        moments.append(("close", time.monotonic()))
        close()

    def opening(generation: int | None = None) -> None:
        open_(generation)
        if gate.is_open:
            moments.append(("open", time.monotonic()))

    gate.close, gate.open = closing, opening  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.feeds.server.running)
        assert app.feeds.server.key_gate is gate  # the server waits at the app's gate
        await pilot.press("down")
        await until(pilot, lambda: moments and moments[-1][0] == "open", timeout=5)
    kinds = [kind for kind, _ in moments]
    assert kinds[0] == "close" and kinds[-1] == "open"
    assert moments[-1][1] - moments[0][1] >= TAIL  # not before the frame's bytes could go out
