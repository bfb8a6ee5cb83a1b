"""The graph screen over real captures: it draws, switches graphs, zooms, follows new packets, jumps to one."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from netlens.capture import PacketRing, PacketStore, PcapReader
from netlens.capture.feed import FeedState, StoreFeed
from netlens.ui.screens.graph import GraphScreen
from netlens.ui.widgets.stream_graph import StreamGraph, canvas_of, cursor_column, x_extent

DATA = Path(__file__).resolve().parent.parent / "data" / "graphs"
LOSSY = DATA / "bulk-25ms-20mbit-loss3pc.pcap"
SIZE = (110, 34)


def _records(path: Path) -> tuple[int, list[tuple[int, bytes, int]]]:
    reader = PcapReader(str(path))
    with reader:
        return reader.linktype, list(reader)


class GraphApp(App[None]):
    """Just the graph screen of stream 1, over a ring (and store) the test fills."""

    def __init__(self, ring: PacketRing, store: PacketStore, kind: str = "tsg") -> None:
        super().__init__()
        self.feed, self.kind = StoreFeed(ring, store, FeedState.RECORDED), kind
        self.result: int | None = -1

    def on_mount(self) -> None:
        self.push_screen(GraphScreen(self.feed, self.feed.stream(1), self.kind), self._done)

    def _done(self, no: int | None) -> None:
        self.result = no


def loaded(path: Path = LOSSY) -> tuple[PacketRing, PacketStore]:
    linktype, records = _records(path)
    ring = PacketRing(linktype=linktype)
    for ts_ns, frame, orig_len in records:
        ring.append(ts_ns, frame, orig_len)
    store = PacketStore(ring)
    while store.update():
        pass
    return ring, store


async def settled(pilot) -> GraphScreen:  # type: ignore[no-untyped-def]
    """Wait until the follower read every packet and the screen drew them."""
    for _ in range(200):
        await pilot.pause(0.05)
        screen = pilot.app.screen
        if isinstance(screen, GraphScreen) and screen.state is not None and screen.state.behind == 0 \
                and screen.graph is not None and screen.drawn_packets == screen.state.graphed > 0:
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            return screen
    raise AssertionError("the graph never caught up")


async def redrawn(pilot, screen: GraphScreen, kind: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until the drawing thread delivered a ``kind`` graph."""
    for _ in range(200):
        await pilot.pause(0.02)
        if screen.graph is not None and screen.graph.kind == kind:
            return
    raise AssertionError(f"no {kind} graph was drawn")


async def test_graph_keys_zoom_cursor_and_jump_to_a_packet() -> None:
    ring, store = loaded()
    app = GraphApp(ring, store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        assert screen.graph is not None and screen.graph.kind == "tsg"
        assert {t.name for t in screen.graph.traces} >= {"segment", "retransmission", "ACK", "SACK block"}
        status = str(screen.query_one("#graph-status").render())
        assert f"{store.stream(1).packets.__len__():,} packets graphed" in status
        await pilot.press("r")
        await redrawn(pilot, screen, "rtt")
        assert "EstimatedRTT" in screen.graph.note
        await pilot.press("w", "plus", "plus")
        assert screen.view is not None
        lo, hi = screen.view
        await redrawn(pilot, screen, "window")
        await pilot.press("comma", "comma")
        await pilot.pause()
        assert screen.cursor is not None and lo <= screen.cursor <= hi
        cursor = screen.cursor
        await pilot.press("enter")
        await pilot.pause()
    assert app.result is not None and app.result in set(store.stream(1).packets)
    origin = ring.first_ts_ns or 0
    assert abs((ring.ts_ns(app.result) - origin) / 1e9 - cursor) < (hi - lo) / 10


async def test_the_cursor_is_drawn_over_the_graph_without_a_new_drawing() -> None:
    ring, store = loaded()
    app = GraphApp(ring, store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        plot = screen.query_one(StreamGraph)
        graph = screen.graph

        def lines() -> list[str]:
            return [plot.render_line(y).text for y in range(plot.size.height)]

        canvas = canvas_of(lines())
        assert canvas is not None and canvas.width > 50 and canvas.height > 10
        await pilot.press("full_stop", "full_stop")
        await pilot.pause()
        assert screen.graph is graph  # the same drawing: only the cursor line was added
        assert screen.cursor is not None
        column = cursor_column(canvas, x_extent(graph), screen.cursor)
        assert column is not None and canvas.column < column < canvas.column + canvas.width
        shown = lines()
        assert all(shown[row][column] == "│" for row in range(canvas.row, canvas.row + canvas.height))
        assert "cursor" in str(screen.query_one("#graph-status").render())


async def test_graph_redraws_as_packets_arrive() -> None:
    linktype, records = _records(LOSSY)
    ring = PacketRing(linktype=linktype)
    store = PacketStore(ring)
    for record in records[:50]:
        ring.append(*record)
    store.update()
    app = GraphApp(ring, store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        first = screen.drawn_packets
        points = sum(len(t.xs) for t in screen.graph.traces) if screen.graph else 0
        for record in records[50:]:
            ring.append(*record)
        store.update()
        screen = await settled(pilot)
        assert screen.drawn_packets == len(records) > first
        assert screen.graph is not None and sum(len(t.xs) for t in screen.graph.traces) > points


def test_graph_screen_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    ring, store = loaded()

    async def drawn(pilot) -> None:  # type: ignore[no-untyped-def]
        await settled(pilot)
        pilot.app.screen.query_one(StreamGraph)

    assert snap_compare(GraphApp(ring, store), terminal_size=SIZE, run_before=drawn)


async def test_main_screen_keys_open_graphs_and_conversations() -> None:
    from recording import recorded_feeds
    from test_snapshots import select_connection_2
    from textual.widgets import DataTable

    from netlens.ui.app import NetlensApp
    from netlens.ui.screens.conversations import ConversationsScreen

    app = NetlensApp(recorded_feeds(), animate=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await select_connection_2(pilot)
        await pilot.press("G")
        screen = await settled(pilot)
        assert screen.stream.key.client[1] == 50418  # the selected connection's stream
        await pilot.press("escape")
        await pilot.press("v")
        for _ in range(100):
            await pilot.pause(0.05)
            if isinstance(pilot.app.screen, ConversationsScreen) and \
                    pilot.app.screen.query_one(DataTable).row_count == 3:
                break
        table = pilot.app.screen.query_one(DataTable)
        assert table.row_count == 3
        first = [str(cell) for cell in table.get_row_at(0)]
        assert first[0] == "1" and first[1].endswith(":50412") and first[2].endswith(":65432")
        await pilot.press("enter")
        screen = await settled(pilot)
        assert screen.stream.id == 1
        await pilot.press("full_stop")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")  # the packet nearest the cursor opens in the packet screen
        await pilot.pause(0.2)
        from netlens.ui.screens.packet import PacketScreen
        assert isinstance(pilot.app.screen, PacketScreen)
        assert pilot.app.screen.no in set(screen.feed.stream_packets(1))
