"""Keys first, on a real server: its loop waits while the app's gate is closed, and goes on when it opens."""

from __future__ import annotations

import socket
import threading
import time

from netlens.keygate import KeyGate
from netlens.proto import encode_request
from netlens.server import Server, ServerConfig


def _search_round_trip(port: int) -> float:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(encode_request("search", "ring"))
        while sock.recv(4096):
            pass
    return time.monotonic() - started


def test_the_loop_waits_while_a_key_is_handled_and_says_how_long() -> None:
    gate = KeyGate(longest=0.3, run_at_least=0.0)
    with Server(ServerConfig(mode="search", port=0)) as server:
        server.key_gate = gate
        port = server.address[1]
        assert _search_round_trip(port) < 0.25  # open: as fast as ever
        gate.close()
        slow = _search_round_trip(port)
        assert slow >= 0.25  # at least one whole wait between accepting and answering
        assert gate.paused >= 0.25 and gate.pauses >= 1
        # The key's frame is out: a wait in progress ends at once.
        threading.Timer(0.05, gate.open).start()
        assert _search_round_trip(port) < 0.25
