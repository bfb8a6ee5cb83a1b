"""The kernel's TCP counters (``nstat``'s numbers), read from ``/proc/net/netstat`` and ``/proc/net/snmp``.

The kernel keeps one set of SNMP/TcpExt counters per network namespace:
``ListenOverflows`` (a connection dropped because a listener's accept queue
was full), ``ListenDrops``, ``TCPTimeouts``, ``RetransSegs``... Each file holds
pairs of lines, a header line of names and a line of values with the same
prefix (``TcpExt:``, ``Tcp:``, ``IpExt:``...). :func:`read_counters` returns
them as ``{"TcpExt": {"ListenOverflows": 3, ...}, "Tcp": {...}}``; names in
``nstat`` form (``TcpExtListenOverflows``) come from :func:`flat`.

Counters of another namespace are read from inside it: :func:`read_counters_in_netns`
enters the namespace on a helper thread only (``setns`` changes the calling
thread's namespace, and ``/proc/thread-self/net`` shows that thread's view), so
the caller's own sockets and threads stay where they are. Stdlib only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

#: The files that hold the counters, under a process's ``net`` directory.
COUNTER_FILES = ("snmp", "netstat")
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")

Counters = dict[str, dict[str, int]]


class CounterError(Exception):
    """The counters could not be read (the sentence says why)."""


def parse_counters(text: str) -> Counters:
    """Parse one ``/proc/net/snmp``-style text: header/value line pairs with a ``Prefix:`` each.

    A pair whose prefixes or lengths disagree, or a value that is not a number,
    is skipped rather than misread: a newer kernel's table must not stop the rest.
    """
    counters: Counters = {}
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names[0] != values[0] or not names[0].endswith(":") or len(names) != len(values):
            continue
        group = counters.setdefault(names[0][:-1], {})
        for name, value in zip(names[1:], values[1:], strict=True):
            try:
                group[name] = int(value)
            except ValueError:
                continue
    return counters


def read_counters(net_dir: str | os.PathLike[str] = "/proc/self/net") -> Counters:
    """Every counter of the namespace whose ``net`` directory is ``net_dir`` (default: this process's)."""
    counters: Counters = {}
    for name in COUNTER_FILES:
        path = Path(net_dir) / name
        try:
            text = path.read_text()
        except OSError as exc:
            raise CounterError(f"cannot read {path}: {exc.strerror or exc}.") from None
        for group, values in parse_counters(text).items():
            counters.setdefault(group, {}).update(values)
    return counters


def flat(counters: Mapping[str, Mapping[str, int]], sep: str = "") -> dict[str, int]:
    """The counters by ``nstat``'s names (``TcpExtListenOverflows``); ``sep=":"`` gives ``TcpExt:ListenOverflows``."""
    return {group + sep + name: value for group, values in counters.items() for name, value in values.items()}


def read_counters_in_netns(name: str) -> Counters:
    """The counters of the named network namespace (``ip netns add NAME``); needs CAP_SYS_ADMIN."""
    path = NETNS_DIR / name
    result: list[Counters | BaseException] = []

    def inside() -> None:
        try:
            with open(path, "rb") as ns:
                _setns(ns.fileno(), CLONE_NEWNET)
            result.append(read_counters("/proc/thread-self/net"))
        except BaseException as exc:  # handed to the caller's thread
            result.append(exc)

    # A thread of its own: setns() moves only the calling thread, and this one then ends.
    worker = threading.Thread(target=inside, name=f"netlens-netns-{name}")
    worker.start()
    worker.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        if isinstance(outcome, FileNotFoundError):
            raise CounterError(f"there is no network namespace {name!r} (see `ip netns list`).") from None
        if isinstance(outcome, (CounterError, OSError)):
            raise CounterError(f"cannot read the counters of namespace {name!r}: {outcome}") from None
        raise outcome
    return outcome


def _setns(fd: int, nstype: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, nstype)
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class CounterWatch:
    """One counter's growth since the watch began, read at most once per ``interval`` seconds.

    For a status line: ``CounterWatch("TcpExt", "ListenOverflows").delta()``
    costs one small file read a second however often it is asked. The counters
    are the whole namespace's (every listener, not only ours).
    """

    def __init__(self, group: str, name: str, interval: float = 1.0,
                 net_dir: str | os.PathLike[str] = "/proc/self/net") -> None:
        self.group, self.name = group, name
        self.interval = interval
        self.net_dir = net_dir
        self.error: str | None = None
        self._baseline = self._read()
        self._last = self._baseline
        self._read_at = time.monotonic()

    def _read(self) -> int:
        try:
            return read_counters(self.net_dir).get(self.group, {}).get(self.name, 0)
        except CounterError as exc:
            self.error = str(exc)
            return 0

    def delta(self) -> int:
        """How much the counter grew since the watch began (0 when it cannot be read)."""
        now = time.monotonic()
        if now - self._read_at >= self.interval:
            self._read_at = now
            self._last = self._read()
        return max(0, self._last - self._baseline)


__all__ = ["CounterError", "CounterWatch", "Counters", "flat", "parse_counters", "read_counters",
           "read_counters_in_netns"]
