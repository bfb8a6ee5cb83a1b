"""Make the README's screenshots by driving the real app through a real session.

Run as root (packet capture on lo needs it), from the repository root:

    .venv/bin/python screenshots/make_screenshots.py

It starts ``netlens serve``'s app headless (search mode, port 65432 or any free
one), runs real clients against it — whole requests, one written a byte at a
time, one left half-sent and then paused by the user — and saves SVGs of the
main screen, the socket inspector, a packet's detail, the ladder diagram, the
follow-stream view and the help screen into this folder.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from netlens import DEFAULT_PORT  # noqa: E402
from netlens.proto import encode_request  # noqa: E402
from netlens.server import ServerConfig, clients  # noqa: E402
from netlens.ui.app import NetlensApp  # noqa: E402
from netlens.ui.feeds import LiveFeeds  # noqa: E402
from netlens.ui.widgets.connections import ConnectionsTable  # noqa: E402
from netlens.ui.widgets.packets import PacketList, PacketsView  # noqa: E402

SIZE = (132, 42)


def free_or_default() -> int:
    """The workshop port if it is free, else 0 (any)."""
    with socket.socket() as probe:
        # As the server binds: TIME_WAIT leftovers of an earlier run do not make it busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            return 0
    return DEFAULT_PORT


async def until(pilot, predicate, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"the session did not reach the expected state in {timeout} s")
        await pilot.pause(0.05)
    return value


async def session() -> None:
    app = NetlensApp(LiveFeeds(ServerConfig(port=free_or_default(), idle_timeout=120)), animate=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.feeds.server.running)
        view = app.screen.query_one(PacketsView)
        await until(pilot, lambda: view.state in ("running", "failed"))
        if view.state == "failed":
            raise SystemExit("packet capture failed (run as root): the screenshots need real packets")
        host, port = app.feeds.server.address

        # Whole requests, one of them written one byte per segment, and a hostile value.
        for value in ("morpheus", "ring", "\U0001f436"):
            await asyncio.to_thread(clients.search, host, port, value)
        await asyncio.to_thread(clients.request, host, port, "binary", "hello", chunk_size=1, chunk_delay=0.002)
        await asyncio.to_thread(clients.search, host, port, "[bold red]x[/]\x1b[2J")

        # A client that sends half a request and waits: the server sits in "reading content".
        slow = socket.create_connection((host, port))
        request = encode_request("search", "ring")
        slow.sendall(request[:120])
        me = slow.getsockname()[1]
        table = app.screen.query_one(ConnectionsTable)

        def row_key() -> str | None:
            for key, row in table._rows.items():
                if row.socket.local_port == port and row.socket.remote_port == me:
                    return key
            return None

        key = await until(pilot, row_key)
        table.focus()
        table.select_key(key)
        await pilot.press("r")  # pause reading it...
        await until(pilot, lambda: any(s.paused for s in app.feeds.server.snapshot()))
        slow.sendall(request[120:])  # ...so the rest of its request waits in the kernel's Recv-Q
        await until(pilot, lambda: table._rows[key].socket.recv_q == len(request) - 120)
        await pilot.pause(1.0)
        app.save_screenshot("main.svg", str(HERE))

        app.screen.query_one("#inspector").focus()
        await pilot.press("m")
        await pilot.pause(0.3)
        app.save_screenshot("inspector.svg", str(HERE))
        await pilot.press("m")

        # The first request's packets in depth.
        packets = app.screen.query_one(PacketList)
        status = view.feed.status()
        first_request = next(row.no for row in view.feed.rows(status.first, status.last) if "morpheus" in row.info)
        packets.focus()
        packets.follow = False
        packets.cursor = packets.index_of(first_request)
        await pilot.press("enter")
        await pilot.pause(0.5)
        app.save_screenshot("packet.svg", str(HERE))
        await pilot.press("3")
        await pilot.pause(0.3)
        app.save_screenshot("ladder.svg", str(HERE))
        await pilot.press("2")
        await pilot.pause(0.3)
        app.save_screenshot("follow.svg", str(HERE))
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        app.save_screenshot("help.svg", str(HERE))
        slow.close()


def main() -> None:
    watchdog = threading.Timer(120, lambda: (print("timed out", file=sys.stderr), sys.exit(1)))
    watchdog.daemon = True
    watchdog.start()
    asyncio.run(session())
    for name in ("main", "inspector", "packet", "ladder", "follow", "help"):
        print(HERE / f"{name}.svg")


if __name__ == "__main__":
    main()
