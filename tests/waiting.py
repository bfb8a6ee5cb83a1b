"""Waiting for a condition in tests, with a bound: the one polling helper every test layer uses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


async def until(pilot: Any, predicate: Callable[[], T], timeout: float = 6.0, interval: float = 0.05) -> T:
    """Like :func:`wait_for` inside a Textual Pilot session: the app keeps running while we wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        if pilot is None:
            await asyncio.sleep(interval)
        else:
            await pilot.pause(interval)
