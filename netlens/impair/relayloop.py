"""The delay relay's loop, run as its own process: ``python -I -S relayloop.py --fds A,B --delay-ms D``.

Stdlib only and importing nothing of netlens, so the process starts fast; see
``relay.py`` for the design (TAP devices, the lifeline on stdin, why a process).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time
from collections import deque

MAX_FRAME = 65536
# Frames held at once per direction: a bounded buffer, as a real link has.
MAX_HELD = 20000
READY = b"ready\n"


def _deliver_due(held: dict[int, deque[tuple[float, bytes]]], peer: dict[int, int], now: float) -> float | None:
    """Write every frame whose time has come; return the monotonic time the next one is due, if any."""
    next_due: float | None = None
    for source, queue in held.items():
        while queue and queue[0][0] <= now:
            frame = queue.popleft()[1]
            try:
                os.write(peer[source], frame)
            except OSError:
                pass  # the far end is down or gone: the frame is lost, as on a wire
        if queue and (next_due is None or queue[0][0] < next_due):
            next_due = queue[0][0]
    return next_due


def _read_frames(fd: int, queue: deque[tuple[float, bytes]], delay: float) -> None:
    """Take every frame waiting on ``fd`` and hold it until now + ``delay``."""
    for _ in range(256):  # bounded, so the other direction is never starved
        try:
            frame = os.read(fd, MAX_FRAME)
        except (BlockingIOError, InterruptedError):
            return
        if len(queue) < MAX_HELD:
            queue.append((time.monotonic() + delay, frame))


def _control(line: str, delay: float) -> float:
    """Apply one control line (``delay MS``); an unreadable line changes nothing."""
    parts = line.split()
    if len(parts) == 2 and parts[0] == "delay":
        try:
            return max(0.0, float(parts[1]) / 1000)
        except ValueError:
            return delay
    return delay


def relay(end_a: int, end_b: int, delay: float, control: int = 0) -> None:
    """Carry frames between two TAP descriptors, each held ``delay`` seconds, until ``control`` reaches EOF."""
    held: dict[int, deque[tuple[float, bytes]]] = {end_a: deque(), end_b: deque()}
    peer = {end_a: end_b, end_b: end_a}
    watched = [end_a, end_b, control]
    pending_control = b""
    while True:
        next_due = _deliver_due(held, peer, time.monotonic())
        timeout = None if next_due is None else max(0.0, next_due - time.monotonic())
        # select(), not epoll: its timeout has microsecond resolution, epoll's is a
        # whole millisecond rounded up, which would add up to 1 ms to every delay.
        readable, _, _ = select.select(watched, [], [], timeout)
        for fd in readable:
            if fd != control:
                _read_frames(fd, held[fd], delay)
                continue
            chunk = os.read(control, 4096)
            if not chunk:
                return  # our parent is gone (or closed the lifeline): the lab is over
            pending_control += chunk
            *lines, pending_control = pending_control.split(b"\n")
            for line in lines:
                delay = _control(line.decode("ascii", "replace"), delay)


def _renumber(fd: int) -> int:
    low = os.dup(fd)
    os.close(fd)
    return low


def main(argv: list[str] | None = None) -> int:
    """Entry point of the relay process: ``--fds A,B --delay-ms D``; stdin is the lifeline."""
    parser = argparse.ArgumentParser(prog="relayloop.py")
    parser.add_argument("--fds", required=True, help="the two TAP descriptors, A,B")
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay in milliseconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the lab ends
    # The descriptors keep their numbers from the parent, which may be above select()'s
    # limit of 1024 in a busy netlens; dup() moves them to the lowest free numbers.
    end_a, end_b = (_renumber(int(part)) for part in args.fds.split(","))
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    relay(end_a, end_b, max(0.0, args.delay_ms) / 1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
