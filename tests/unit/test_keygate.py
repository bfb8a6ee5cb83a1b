"""The keys-first gate: closed while a key is handled; its one waiter waits there, but never long."""

from __future__ import annotations

import threading
import time

from netlens.keygate import KeyGate


def test_an_open_gate_costs_no_wait() -> None:
    gate = KeyGate(longest=1.0)
    started = time.monotonic()
    for _ in range(1000):
        gate.wait_turn()
    assert time.monotonic() - started < 0.5
    assert gate.paused == 0 and gate.pauses == 0


def test_a_closed_gate_holds_its_waiter_at_most_longest_then_lets_it_run() -> None:
    gate = KeyGate(longest=0.2, run_at_least=0.3)
    gate.close()
    started = time.monotonic()
    gate.wait_turn()
    waited = time.monotonic() - started
    assert 0.18 <= waited < 0.6
    # Still closed, but the waiter has its time to run first.
    started = time.monotonic()
    gate.wait_turn()
    assert time.monotonic() - started < 0.05
    assert gate.pauses == 1 and 0.18 <= gate.paused < 0.6
    time.sleep(0.35)
    started = time.monotonic()
    gate.wait_turn()  # ...and once that is over, it waits again
    assert time.monotonic() - started >= 0.18
    assert gate.pauses == 2


def test_opening_it_from_another_thread_ends_the_wait_at_once() -> None:
    gate = KeyGate(longest=5.0)
    gate.close()
    threading.Timer(0.1, gate.open).start()
    started = time.monotonic()
    gate.wait_turn()
    assert 0.05 < time.monotonic() - started < 1.0
    assert gate.is_open


def test_an_opening_meant_for_an_earlier_key_leaves_a_later_key_closed() -> None:
    gate = KeyGate()
    gate.close()
    first = gate.generation
    gate.close()  # the next key came before the first one's frame went out
    gate.open(first)
    assert not gate.is_open
    gate.open(gate.generation)
    assert gate.is_open
