"""One step of the loop, one clock reading: what a chunk caused (stages, reply, mask, send) shares the recv's time.

(The echo's own step is in test_server_echo.py.)
"""

from __future__ import annotations

import os
import socket
from contextlib import suppress
from pathlib import Path

from waiting import wait_for

from netlens.proto import encode_request
from netlens.server import Server
from netlens.server.events import Closed, MaskChanged, Received, ResponseQueued, Sent, StageReached


def test_a_search_request_is_one_step_from_its_recv_to_its_send(search_server: Server) -> None:
    sub = search_server.subscribe(from_start=False)
    with socket.create_connection(search_server.address) as sock:
        sock.sendall(encode_request("search", "ring"))
        while sock.recv(4096):
            pass
    wait_for(lambda: search_server.stats().active == 0)
    events = sub.drain()
    recv = next(e for e in events if isinstance(e, Received))
    after = events[events.index(recv) + 1:]
    step = [e for e in after if isinstance(e, (StageReached, ResponseQueued, MaskChanged, Sent))]
    assert {type(e) for e in step} >= {StageReached, ResponseQueued, MaskChanged, Sent}
    assert {e.ts for e in step} == {recv.ts}
    closed = next(e for e in events if isinstance(e, Closed))
    assert closed.ts >= recv.ts  # stamped after close(), like the kernel's own event of it


def test_the_loop_thread_is_named_for_top_and_ps(search_server: Server) -> None:
    def names() -> set[str]:
        found = set()
        for tid in os.listdir("/proc/self/task"):
            with suppress(OSError):  # a thread that ended meanwhile
                found.add(Path(f"/proc/self/task/{tid}/comm").read_text().strip())
        return found

    # (The loop names itself as its thread starts: give it the moment.)
    assert "server-loop" in wait_for(lambda: "server-loop" in names() and names())
    assert search_server._thread is not None and search_server._thread.name == "netlens-server"  # Python's own
