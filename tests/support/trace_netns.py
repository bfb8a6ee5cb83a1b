"""A private network namespace for the trace tests: its own loopback, nftables rules, entered per thread.

Small on purpose (the impairment layer, ``netlens.impair``, is the full
version); the lead may fold it into that later. Names carry the ``nlt``
prefix and the pid, and the namespace is deleted even when the test fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_serial = itertools.count()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


@contextlib.contextmanager
def network_namespace(prefix: str = "nlt") -> Iterator[str]:
    """A new network namespace with ``lo`` up; yields its name and deletes it afterwards."""
    name = f"{prefix}-{os.getpid()}-{next(_serial)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10, check=False, capture_output=True)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the calling thread in namespace ``name``; sockets made meanwhile stay there after it returns."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def drop_tcp_to(name: str, port: int) -> None:
    """Drop every TCP segment arriving for ``port`` inside namespace ``name`` (nftables, input hook).

    The input hook, not output: a segment dropped on output never left, so the
    sender's transmit fails and TCP retries it under the persist timer; dropped
    on input it was sent and lost, and the retransmission timer fires.
    """
    rules = ("table inet nlt_trace_drop {\n"
             "  chain in { type filter hook input priority 0; policy accept; "
             f"tcp dport {port} counter drop; }}\n"
             "}\n")
    subprocess.run(["ip", "netns", "exec", name, "nft", "-f", "-"], input=rules, text=True, check=True,
                   timeout=10, capture_output=True)
