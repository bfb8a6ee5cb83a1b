"""How the app looks, on a fixed recorded moment (see recording.py): main screen, inspector, packet detail.

Regenerate after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update``
and look at the SVGs in ``__snapshots__/`` before committing them.
"""

from __future__ import annotations

from recording import recorded_feeds

from netlens.ui.app import NetlensApp
from netlens.ui.widgets.connections import ConnectionsTable
from netlens.ui.widgets.packets import PacketList

SIZE = (120, 40)


def app() -> NetlensApp:
    return NetlensApp(recorded_feeds(), animate=False)


async def ready(pilot) -> None:
    """Wait until the recording is on screen (the app reads it after its first frame)."""
    for _ in range(100):
        await pilot.pause()
        tables = pilot.app.screen.query(ConnectionsTable)
        if tables and tables.first().row_count:
            return
    raise AssertionError("the recorded connections never showed")


async def select_connection_2(pilot) -> None:
    """Put the cursor on the server side of connection #2 (the paused, half-read one)."""
    await ready(pilot)
    table = pilot.app.screen.query_one(ConnectionsTable)
    key = table.conn_key(2)
    assert key is not None and table.select_key(key)
    await shown(pilot)


async def shown(pilot) -> None:  # type: ignore[no-untyped-def]
    """Wait until the inspector shows the connection under the cursor (it follows after the move's frame)."""
    for _ in range(100):
        await pilot.pause()
        if pilot.app.screen.selection_shown:
            return
    raise AssertionError("the inspector never caught up with the cursor")


def test_main_screen(snap_compare) -> None:
    # Every panel: both ends of #2 (its server side selected), #1's TIME_WAIT, the events and
    # packets of all three connections, #3's hostile search value shown literally.
    assert snap_compare(app(), terminal_size=SIZE, run_before=select_connection_2)


def test_socket_inspector(snap_compare) -> None:
    async def inspector_maximized(pilot) -> None:
        await select_connection_2(pilot)
        pilot.app.screen.query_one("#inspector").focus()
        await pilot.press("m")

    assert snap_compare(app(), terminal_size=SIZE, run_before=inspector_maximized)


async def open_request_packet(pilot) -> None:
    """Open packet 4: the search request for 'morpheus'."""
    await ready(pilot)
    packets = pilot.app.screen.query_one(PacketList)
    packets.focus()
    packets.follow = False
    packets.cursor = packets.index_of(4)
    await pilot.press("enter")
    await pilot.pause()


def test_packet_detail(snap_compare) -> None:
    assert snap_compare(app(), terminal_size=SIZE, run_before=open_request_packet)


def test_packet_ladder(snap_compare) -> None:
    async def ladder(pilot) -> None:
        await open_request_packet(pilot)
        await pilot.press("3")
        await pilot.pause()

    assert snap_compare(app(), terminal_size=SIZE, run_before=ladder)
