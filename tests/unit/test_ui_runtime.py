"""The app's process policy: it changes the switch interval and the collector's schedule, and puts both back."""

from __future__ import annotations

import gc
import sys
import time

from netlens.ui import runtime
from netlens.ui.runtime import ProcessPolicy


def test_policy_applies_and_restores() -> None:
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    policy = ProcessPolicy()
    try:
        policy.fast_thread_switches()
        policy.tame_garbage_collector()
        assert sys.getswitchinterval() == runtime.SWITCH_INTERVAL
        assert gc.get_threshold()[0] == runtime.GC_YOUNG_THRESHOLD and gc.get_freeze_count() > 0
        # A key was just pressed and a full collection just ran: none now.
        assert not policy.collect_if_idle(last_input=time.monotonic())
        # Overdue, but keys keep coming: it waits for a lull.
        policy._last_full_gc -= runtime.GC_MAX_INTERVAL + 1
        assert not policy.collect_if_idle(last_input=time.monotonic() - runtime.GC_LULL / 10)
        # Long quiet and long since the last one: a full collection runs, and freezes what survived.
        survivor = [object()]
        frozen = gc.get_freeze_count()
        assert policy.collect_if_idle(last_input=time.monotonic() - 60)
        assert gc.get_freeze_count() > frozen and gc.is_tracked(survivor)
    finally:
        policy.restore()
    assert sys.getswitchinterval() == interval and gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0


def test_every_few_idle_collections_reach_frozen_cycles() -> None:
    """Cyclic garbage that was frozen is collected by the complete collection, not kept forever."""
    import weakref

    class Node:
        partner: object = None

    policy = ProcessPolicy()
    try:
        policy.tame_garbage_collector()
        node = Node()
        node.partner = node  # a cycle: only the collector can free it
        gone = weakref.ref(node)
        policy._last_full_gc -= runtime.GC_MIN_INTERVAL + 1
        assert policy.collect_if_idle(last_input=time.monotonic() - 60)  # node survives and is frozen
        del node
        for _ in range(runtime.GC_COMPLETE_EVERY - 2):  # partial collections: frozen cycles stay
            policy._last_full_gc -= runtime.GC_MIN_INTERVAL + 1
            assert policy.collect_if_idle(last_input=time.monotonic() - 60)
        assert gone() is not None
        policy._last_full_gc -= runtime.GC_MIN_INTERVAL + 1
        assert policy.collect_if_idle(last_input=time.monotonic() - 60)  # the complete one
        assert gone() is None
    finally:
        policy.restore()
    assert gc.get_freeze_count() == 0
