"""The loop's interest list: which sockets it waits on, for reading and/or writing.

This is what ``selectors.DefaultSelector`` is on Linux, an ``epoll`` object,
used directly: masks are the selectors' ``EVENT_READ``/``EVENT_WRITE`` (what
the events and the UI show), and each file descriptor maps to the object the
loop serves. Measured under a search flood, the wrapper's per-call bookkeeping
(a key object per register/modify, a file-object lookup per call, a key lookup
per ready socket) cost the headless server about 5 microseconds per request;
here a register is one dict store and one system call.
"""

from __future__ import annotations

import select
import selectors

EPOLLIN = select.EPOLLIN
READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
#: epoll flags of each selectors mask (0, READ, WRITE, READ|WRITE).
EPOLL_FLAGS = (0, select.EPOLLIN, select.EPOLLOUT, select.EPOLLIN | select.EPOLLOUT)
#: epoll reports errors and hang-ups with any interest; like selectors, those wake
#: both directions (the recv/send that follows says what happened).
NOT_OUT = ~select.EPOLLOUT
NOT_IN = ~select.EPOLLIN


def ready_mask(flags: int) -> int:
    """The selectors mask of what epoll reported (errors and hang-ups count as both)."""
    return (READ if flags & NOT_OUT else 0) | (WRITE if flags & NOT_IN else 0)


class Interest:
    """File descriptors registered with their mask and the object the loop serves for each."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        #: What each registered descriptor stands for (a connection, the listener, the waker).
        self.targets: dict[int, object] = {}

    def register(self, fd: int, mask: int, target: object) -> None:
        """Start waiting on ``fd`` for ``mask``."""
        self.epoll.register(fd, EPOLL_FLAGS[mask])
        self.targets[fd] = target

    def modify(self, fd: int, mask: int) -> None:
        """Wait on ``fd`` for ``mask`` instead."""
        self.epoll.modify(fd, EPOLL_FLAGS[mask])

    def unregister(self, fd: int) -> None:
        """Stop waiting on ``fd`` (a descriptor already closed is fine)."""
        self.targets.pop(fd, None)
        try:
            self.epoll.unregister(fd)
        except (OSError, ValueError):
            pass  # closed already: the kernel dropped it from the interest list itself

    def forget(self, fd: int) -> None:
        """Stop serving ``fd`` that is about to be closed (closing removes it from the epoll set).

        Only for a descriptor no other descriptor duplicates: epoll keeps watching
        an open file while any descriptor of it is open.
        """
        self.targets.pop(fd, None)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        """``(fd, epoll flags)`` of the ready descriptors (``timeout`` seconds; None: forever)."""
        return self.epoll.poll(-1 if timeout is None else timeout)

    def close(self) -> None:
        """Close the epoll object."""
        self.targets.clear()
        self.epoll.close()
