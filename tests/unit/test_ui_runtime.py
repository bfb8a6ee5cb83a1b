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


_BIG_BLOCKS = """
import sys
from pathlib import Path
from netlens.ui.runtime import ProcessPolicy

def rss_mib():
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024

if sys.argv[1] == "policy":
    ProcessPolicy.return_big_blocks_promptly()
# One big block freed: glibc raises its threshold above it (up to 32 MiB)...
block = bytes(16 << 20)
del block
before = rss_mib()
# ...so the packet ring's 4 MiB chunks come from a heap, each with a small long-lived block behind it.
chunks, pins = [], []
for i in range(24):
    chunks.append(b"x" * (4 << 20))
    pins.append(bytearray(1000))  # above pymalloc's 512 bytes: from the same heap
del chunks
print(rss_mib() - before)
"""


def test_freed_ring_sized_blocks_leave_the_process() -> None:
    import subprocess

    def held_mib(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _BIG_BLOCKS, mode], capture_output=True, text=True, check=True)
        return float(out.stdout)

    # glibc's own schedule keeps most of the 96 MiB resident; with the policy it goes back at once.
    assert held_mib("glibc") > 48
    assert held_mib("policy") < 8
