"""A capture that gives way to keys loses nothing: the kernel's ring holds the frames, and half of it never waits."""

from __future__ import annotations

import time

import pytest
from capture_helpers import capturing, requires_capture, search

from netlens.server import Server

pytestmark = [requires_capture, pytest.mark.capture]


def _searches_for(port: int, seconds: float) -> int:
    """Search requests one after another for ``seconds``; how many were made."""
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        search(port, delay=0)
        done += 1
    return done


def test_frames_wait_in_the_ring_while_keys_are_handled_and_all_arrive(search_server: Server) -> None:
    port = search_server.address[1]
    keys = [True]
    with capturing(port) as reference, capturing(port, yield_to=lambda: keys[0]) as capture:
        # Less traffic than fills half the ring (blocks retire every 10 ms): all of it may wait.
        searches = _searches_for(port, 0.06)
        time.sleep(0.05)
        held = capture.stats().captured  # copied out while "keys" were being handled: none
        keys[0] = False
        time.sleep(0.3)
        stats, everything = capture.stats(), reference.stats()
    assert searches > 0 and held == 0
    assert stats.captured == everything.captured >= 9 * searches and stats.kernel_drops == 0


def test_keys_held_through_a_flood_cannot_make_the_capture_drop(search_server: Server) -> None:
    port = search_server.address[1]
    keys = [True]
    with capturing(port) as reference, capturing(port, yield_to=lambda: keys[0]) as capture:
        # 1.5 s of steady traffic fills half the ring many times over: past that, blocks are copied anyway.
        searches = _searches_for(port, 1.5)
        time.sleep(0.05)
        during = capture.stats().captured
        keys[0] = False
        time.sleep(0.3)
        stats, everything = capture.stats(), reference.stats()
    assert searches > 20 and during > 0
    assert stats.captured == everything.captured >= 9 * searches and stats.kernel_drops == 0
