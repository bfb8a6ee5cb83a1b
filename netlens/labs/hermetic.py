"""A private, anonymous network namespace for one lab: its own loopback, counters and sysctls.

Why anonymous: the namespace lives exactly as long as a file descriptor that
this process holds (and the threads inside it), so it cannot outlive the lab,
not even after ``SIGKILL``; there is no ``/run/netns`` name to clean up.

Only the *calling thread* enters a namespace (``setns`` is per thread). The
runner's thread and every thread it starts from there (server loop, capture,
probe poller) and every child process it spawns (``nft``, ``ss``, ``nstat``)
live in the lab's namespace; the rest of the process stays where it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NamespaceError(OSError):
    """A namespace could not be created or entered (one sentence, with the errno)."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise NamespaceError(errno, f"{what} failed: {os.strerror(errno)}")


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace held by ``fd``."""
    _check(_libc.setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)")


def current_netns_fd() -> int:
    """An fd on the calling thread's network namespace (the caller closes it)."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@contextmanager
def entered(fd: int) -> Iterator[None]:
    """Run the block with the calling thread inside the namespace ``fd``, then return."""
    home = current_netns_fd()
    try:
        setns(fd)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)


class HermeticNet:
    """One anonymous network namespace with ``lo`` up.

    ``HermeticNet.create()`` makes it (root only); ``with net.inside():`` runs
    code in it; ``net.run([...])`` runs a command in it; ``net.sysctl(...)``
    sets one of its per-namespace sysctls; ``net.close()`` lets it go (the
    kernel frees it once the last thread inside has left).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def create(cls) -> HermeticNet:
        """Create the namespace without moving the caller (a helper thread unshares)."""
        home = current_netns_fd()
        try:
            # unshare() moves the calling thread; move it back at once, keeping an fd on the new one.
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            fd = current_netns_fd()
            setns(home)
        finally:
            os.close(home)
        net = cls(fd)
        try:
            net.run(["ip", "link", "set", "lo", "up"])
        except BaseException:
            net.close()
            raise
        return net

    @classmethod
    def create_rootless(cls) -> HermeticNet:
        """Without root: a user namespace where we are root, and a network namespace it owns.

        The whole process moves (the kernel allows a new user namespace only to a
        single-threaded process) and cannot come back: fine for ``netlens lab run``,
        which ends with the lab. Capture, sock_diag, counters and per-namespace
        sysctls all work in there; tracefs does not.
        """
        uid, gid = os.getuid(), os.getgid()
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNET), "unshare(CLONE_NEWUSER|CLONE_NEWNET)")
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:
                handle.write(text)
        net = cls(current_netns_fd())
        net.run(["ip", "link", "set", "lo", "up"])
        return net

    @property
    def path(self) -> str:
        """A path other processes can give to ``nsenter --net=`` while the lab runs."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    def inside(self) -> AbstractContextManager[None]:
        """Context manager: the calling thread inside this namespace."""
        return entered(self.fd)

    def run(self, argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
        """Run ``argv`` inside the namespace; returns its stdout (raises with its stderr on failure)."""
        with self.inside():
            done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=10)
        if check and done.returncode != 0:
            raise NamespaceError(0, f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def sysctl(self, name: str, value: int | str) -> None:
        """Set a per-namespace sysctl (``net.ipv4.tcp_syncookies``...) in this namespace."""
        path = "/proc/sys/" + name.replace(".", "/")
        with self.inside(), open(path, "w", encoding="ascii") as handle:
            handle.write(f"{value}\n")

    def close(self) -> None:
        """Drop our hold on the namespace (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

