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
        # Long quiet and long since the last one: a full collection runs.
        policy._last_full_gc -= runtime.GC_MAX_INTERVAL + 1
        assert policy.collect_if_idle(last_input=time.monotonic() - 60)
    finally:
        policy.restore()
    assert sys.getswitchinterval() == interval and gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0
