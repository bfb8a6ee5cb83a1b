"""The packets panel on real loopback capture, driven with Pilot: pause/resume, clear, save (issue 8's packet items)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Input
from waiting import until

from netlens.capture.feed import FeedState
from netlens.capture.summary import PacketSummary
from netlens.server import ServerConfig, clients
from netlens.ui.app import NetlensApp
from netlens.ui.feeds import LiveFeeds
from netlens.ui.screens.prompts import PromptScreen
from netlens.ui.widgets.packets import PacketsView, packet_row

SIZE = (120, 40)


def live_app(capture: bool = True) -> NetlensApp:
    return NetlensApp(LiveFeeds(ServerConfig(mode="search", port=0, idle_timeout=30), capture=capture),
                      animate=False)


async def running(pilot, app: NetlensApp) -> PacketsView:  # type: ignore[no-untyped-def]
    view = app.screen.query_one(PacketsView)
    await until(pilot, lambda: view.state == "running", timeout=10)
    return view


async def search(app: NetlensApp) -> None:
    await asyncio.to_thread(clients.search, "127.0.0.1", app.feeds.server.address[1], "morpheus")


def messages(app: NetlensApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_resuming_keeps_the_packet_counter_and_the_list() -> None:
    app = live_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await running(pilot, app)
        await search(app)
        # A search is ten packets; wait until the panel has them all.
        await until(pilot, lambda: view.status.captured >= 10 and view.list.row_count() >= 10)
        before = view.status.captured
        await pilot.press("c")
        await until(pilot, lambda: view.state == "paused")
        assert "paused" in view.status_text().plain
        await pilot.press("c")
        await until(pilot, lambda: view.state == "running", timeout=10)
        # The header counts every packet captured so far, as the list still shows them.
        assert view.status.captured >= before
        assert f"{before} pkts" in view.status_text().plain or view.status.captured > before
        await search(app)
        await until(pilot, lambda: view.status.captured >= before + 10)
        # The list catches up with the counter once the analysis thread has the new packets.
        await until(pilot, lambda: view.list.row_count() == view.status.captured)


async def test_clear_restarts_numbering_at_one_and_says_what_went() -> None:
    app = live_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await running(pilot, app)
        await search(app)
        await until(pilot, lambda: view.list.row_count() >= 10)
        cleared = view.feed.status().last  # type: ignore[union-attr]
        await pilot.press("C")
        await until(pilot, lambda: any("Cleared" in m for m in messages(app)))
        assert f"Cleared {cleared:,} packets; numbering starts again at 1." in messages(app)
        assert view.list.row_count() == 0
        await search(app)
        await until(pilot, lambda: view.list.row_count() >= 10)
        assert view.list.number_at(0) == 1
        assert view.list.render_row(0).plain.split()[0] == "1"
        text = view.status_text().plain
        assert f"({cleared:,} cleared)" in text and f"lo: {view.status.captured} pkts" in text
        assert view.status.captured < cleared + 10


async def test_save_without_capture_says_so_before_asking_for_a_name() -> None:
    app = live_app(capture=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.feeds.server.running)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: messages(app))
        assert not isinstance(app.screen, PromptScreen)
        assert messages(app)[-1] == "There is nothing to save: packet capture is off (--no-capture)."


async def test_save_shows_the_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = live_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await running(pilot, app)
        await search(app)
        await until(pilot, lambda: view.list.row_count() >= 10)
        await pilot.press("ctrl+s")
        prompt = await until(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen)
        prompt.query_one(Input).value = "relative.pcap"
        await pilot.press("enter")
        target = tmp_path / "relative.pcap"
        await until(pilot, lambda: any(m.startswith("Saved ") for m in messages(app)))
        assert f"to {target}." in messages(app)[-1]
        assert any(m.startswith("Saving ") and str(target) in m for m in messages(app))
        assert target.stat().st_size > 24
        assert view.status.state is FeedState.RUNNING


def test_syn_rows_put_the_numbers_before_the_options() -> None:
    syn = PacketSummary(1, 0.0, 0.0, "TCP", "127.0.0.1", 50000, "127.0.0.1", 65432, "S", 0, 0, 65495, 0,
                        "MSS=65495 SACK_PERM TSval=1 TSecr=0 WS=128", (), 1, 0, 74)
    row = packet_row(syn).plain
    assert row.index("seq=0 ack=0 win=65495") < row.index("MSS=65495")
    # Cropped to a narrow panel, the numbers still show.
    assert "win=65495" in Text(row)[:80].plain


async def test_packets_view_fills_its_panel_when_maximized() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from recording import recorded_feeds

    from netlens.ui.widgets.packets import PacketList

    app = NetlensApp(recorded_feeds(), animate=False)
    async with app.run_test(size=SIZE) as pilot:
        view = app.screen.query_one(PacketsView)
        await until(pilot, lambda: view.list.row_count() > 0)
        app.screen.query_one(PacketList).focus()
        await pilot.press("m")
        await until(pilot, lambda: app.screen.maximized is not None)
        await pilot.pause()
        panel = view.parent
        assert panel is app.screen.maximized
        # The view takes every row of its panel: the list below its two header lines.
        assert view.outer_size.height == panel.content_region.height  # type: ignore[union-attr]
        assert view.list.outer_size.height == view.outer_size.height - 1
