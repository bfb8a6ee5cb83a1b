"""A capture that gives way to keys loses nothing: the kernel's ring holds the frames, and half of it never waits."""

from __future__ import annotations

import time

import pytest
from capture_helpers import capturing, requires_capture, search

from netlens.capture import CaptureStats
from netlens.server import Server

pytestmark = [requires_capture, pytest.mark.capture]


def _traffic_while_keys(port: int, seconds: float) -> tuple[int, int, CaptureStats, CaptureStats]:
    """Searches for ``seconds`` while "keys are handled", then the keys stop.

    Returns the searches made, the packets the yielding capture had copied out
    while the keys lasted, and the final counts of it and of a capture beside it
    that never yields.
    """
    keys = [True]
    with capturing(port) as reference, capturing(port, yield_to=lambda: keys[0]) as capture:
        searches = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            search(port, delay=0)
            searches += 1
        time.sleep(0.05)
        held = capture.stats().captured
        keys[0] = False
        time.sleep(0.3)
        return searches, held, capture.stats(), reference.stats()


def test_frames_wait_in_the_ring_while_keys_are_handled_and_all_arrive(search_server: Server) -> None:
    # Less traffic than fills half the ring (blocks retire every 10 ms): all of it may wait.
    searches, held, stats, everything = _traffic_while_keys(search_server.address[1], 0.06)
    assert searches > 0 and held == 0
    assert stats.captured == everything.captured >= 9 * searches and stats.kernel_drops == 0


def test_keys_held_through_a_flood_cannot_make_the_capture_drop(search_server: Server) -> None:
    # 1.5 s of steady traffic fills half the ring many times over: past that, blocks are copied anyway.
    searches, held, stats, everything = _traffic_while_keys(search_server.address[1], 1.5)
    assert searches > 20 and held > 0
    assert stats.captured == everything.captured >= 9 * searches and stats.kernel_drops == 0
