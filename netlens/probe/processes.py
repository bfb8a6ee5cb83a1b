"""Which process holds which socket: the ``/proc/PID/fd`` scan behind ``ss -p`` and ``lsof``.

The kernel has no bulk "socket -> pid" query; every tool reads the fd
symlinks of every process and matches the ``socket:[INODE]`` targets with
the inodes sock_diag reported. That costs one ``readlink`` per open file on
the machine (about 6 µs each here: 60 ms for a process with 10,000 sockets),
so :class:`OwnerScanner` remembers each process's answer and re-reads only
what changed:

* a process whose fd listing is the same as last time keeps its answer
  without a single ``readlink`` (one ``listdir`` per process instead);
* a changed listing costs a ``readlink`` only for the new fd numbers;
* any socket inode the cached answer cannot place (an fd number closed and
  reused in between, a new process...) triggers a full scan at once, so a
  socket never loses its owner to the cache;
* a full scan also runs every ``full_every`` seconds, which bounds what the
  cache can get wrong: an extra, stale owner for a socket that a process
  closed while another process still holds it, its fd number reused for a
  file; or the old name of a process that exec'd without opening or
  closing anything.

Processes that vanish mid-scan or that we may not inspect (another user's,
without root) are skipped silently: their sockets simply have no owner.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable

from netlens.probe.model import ProcessRef

PROC = "/proc"
_SOCKET_PREFIX = "socket:["
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)

Owners = dict[int, tuple[ProcessRef, ...]]


def read_comm(pid: int, proc: str = PROC) -> str | None:
    """Return the ``comm`` name of ``pid`` (what ``ss -p`` prints), or ``None`` if it is gone.

    The name is chosen by the process itself: untrusted text.
    """
    try:
        with open(f"{proc}/{pid}/comm", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return raw.rstrip(b"\n").decode("utf-8", "backslashreplace")


class _ProcessEntry:
    """What one scan learnt about one process: its fd listing, fd -> inode, and inode -> refs."""

    __slots__ = ("fd_inodes", "names", "owners")

    def __init__(self, names: list[str], fd_inodes: dict[str, int], owners: Owners) -> None:
        self.names = names  # fd numbers as listed, for the "unchanged?" check
        self.fd_inodes = fd_inodes  # fd name -> socket inode, 0 for anything that is not a socket
        self.owners = owners  # socket inode -> this process's refs to it


def _scan_process(
    pid: int, dir_fd: int, names: list[str], previous: _ProcessEntry | None, proc: str
) -> _ProcessEntry | None:
    """Read the fd links of one process, reusing ``previous``'s answers for fd numbers it already knew."""
    known = previous.fd_inodes if previous is not None else {}
    fd_inodes: dict[str, int] = {}
    readlink = os.readlink
    for name in names:
        inode = known.get(name)
        if inode is None:
            try:
                target = readlink(name, dir_fd=dir_fd)
            except OSError:
                continue  # closed since the listing
            inode = int(target[8:-1]) if target.startswith(_SOCKET_PREFIX) else 0
        fd_inodes[name] = inode
    owners: Owners = {}
    if any(fd_inodes.values()):
        comm = read_comm(pid, proc)
        if comm is None:
            return None  # exited mid-scan
        for name, inode in fd_inodes.items():
            if inode:
                ref = ProcessRef(pid, comm, int(name))
                refs = owners.get(inode)
                owners[inode] = (ref,) if refs is None else (*refs, ref)
    return _ProcessEntry(names, fd_inodes, owners)


def _merge(total: Owners, part: Owners) -> None:
    """Add one process's ``part`` into ``total``, keeping every owner of a shared socket, lowest pid first."""
    shared = part.keys() & total.keys()
    if not shared:
        total.update(part)  # the usual case, at C speed
        return
    saved = {inode: total[inode] for inode in shared}
    total.update(part)
    for inode, refs in saved.items():
        total[inode] = tuple(sorted(refs + part[inode]))


class OwnerScanner:
    """Maps socket inodes to owning processes, remembering each process's fds between calls (see module doc).

    Not thread-safe: give each thread its own, or hold a lock (as
    :class:`netlens.probe.snapshot.Prober` does).
    """

    def __init__(self, proc: str = PROC, full_every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.proc = proc
        self.full_every = full_every
        self._clock = clock
        self._cache: dict[int, _ProcessEntry] = {}
        self._last_full = -math.inf
        self._unplaced: frozenset[int] = frozenset()  # inodes the last full scan found no owner for
        self.full_scans = 0  # for tests and the benchmark: how often the slow path ran

    def owners(self, wanted: Iterable[int | None]) -> Owners:
        """Return inode -> owners for (at least) the inodes in ``wanted``; those no visible process holds are absent."""
        inodes: set[int] = {inode for inode in wanted if inode}
        if not inodes:
            return {}
        now = self._clock()
        full = now - self._last_full >= self.full_every
        found = self._scan(use_cache=not full)
        if not full and inodes.difference(found, self._unplaced):
            full = True  # the cache cannot place a socket: trust only a fresh scan
            found = self._scan(use_cache=False)
        if full:
            self._last_full = now
            self._unplaced = frozenset(inodes.difference(found))
        return found

    def scan_all(self) -> Owners:
        """Full scan, no cache: inode -> owners for every socket a visible process holds."""
        self._last_full = self._clock()
        return self._scan(use_cache=False)

    def _scan(self, use_cache: bool) -> Owners:
        if not use_cache:
            self.full_scans += 1
        found: Owners = {}
        cache: dict[int, _ProcessEntry] = {}
        try:
            entries = os.listdir(self.proc)
        except OSError:
            return found
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                dir_fd = os.open(f"{self.proc}/{entry}/fd", _DIR_FLAGS)
            except OSError:
                continue  # gone, or not ours to look at
            pid = int(entry)
            try:
                names = os.listdir(dir_fd)
                previous = self._cache.get(pid) if use_cache else None
                if previous is not None and previous.names == names:
                    result: _ProcessEntry | None = previous  # nothing opened or closed: no readlink at all
                else:
                    result = _scan_process(pid, dir_fd, names, previous, self.proc)
            except OSError:
                continue
            finally:
                os.close(dir_fd)
            if result is None:
                continue
            cache[pid] = result
            if result.owners:
                _merge(found, result.owners)
        self._cache = cache  # processes that are gone drop out here
        return found


def scan_owners(proc: str = PROC) -> Owners:
    """Map every socket inode held by a visible process to its owners (pid, comm, fd), lowest pid first; no cache."""
    return OwnerScanner(proc).scan_all()
