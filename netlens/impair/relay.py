"""A fixed delay without netem: two TAP devices joined by a small user-space relay process.

Each TAP device is created inside one lab namespace (the device lives in the
namespace of the thread that opens ``/dev/net/tun``), so the client's and the
server's ends look like two ends of an Ethernet cable. The relay reads every
frame from one end and writes it to the other ``delay`` seconds later, in both
directions: one-way delay D, so a round trip takes 2·D. Frames are Ethernet
frames (TAP, not TUN), so captures, MSS and the neighbour table behave exactly
as on the veth lab.

The relay is a separate process (``python -m netlens.impair.relay``), not a
thread of ours, so its timing does not depend on our GIL. Its life is tied to
ours by a *lifeline*: its stdin is a pipe whose only write end we hold. When we
exit, however we exit (including SIGKILL), the kernel closes that end, the
relay reads EOF and exits, and closing its TAP descriptors deletes both devices
(they are not persistent). ``PR_SET_PDEATHSIG`` was not used because it fires
when the *thread* that started the relay ends, which a UI worker thread does
long before the lab is over. The same pipe carries ``delay MS`` lines, so the
delay can change while a lab runs.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque

from netlens.impair.errors import ImpairError

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65536
# Frames held at once per direction: a bounded buffer, as a real link has.
MAX_HELD = 20000
READY = b"ready\n"
START_TIMEOUT = 10.0


def open_tap(name: str) -> int:
    """Create the TAP device ``name`` in the calling thread's namespace; returns its (non-blocking) descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        request = struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI).ljust(40, b"\0")
        fcntl.ioctl(fd, TUNSETIFF, request)
    except OSError as exc:
        os.close(fd)
        raise ImpairError(f"cannot create the TAP device {name}: {exc.strerror}.") from None
    return fd


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
    poller = select.epoll()
    for fd in (end_a, end_b, control):
        poller.register(fd, select.EPOLLIN)
    pending_control = b""
    while True:
        next_due = _deliver_due(held, peer, time.monotonic())
        timeout = -1.0 if next_due is None else max(0.0, next_due - time.monotonic())
        for fd, _ in poller.poll(timeout):
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


class DelayLink:
    """The relay process joining two TAP descriptors (created by the caller in their namespaces)."""

    def __init__(self, end_a: int, end_b: int, delay_ms: float) -> None:
        command = [sys.executable, "-m", "netlens.impair.relay", "--fds", f"{end_a},{end_b}",
                   "--delay-ms", repr(float(delay_ms))]
        # A new session: Ctrl-C in the terminal reaches us, and we end the relay in order.
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, pass_fds=(end_a, end_b), start_new_session=True)
        self.delay_ms = delay_ms
        self._await_ready()

    @property
    def pid(self) -> int:
        """The relay's process id."""
        return self.process.pid

    def _await_ready(self) -> None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else b""
        if line != READY:
            self.process.kill()
            detail = self.process.stderr.read().decode("utf-8", "replace") if self.process.stderr else ""
            self.stop()
            reason = detail.strip().splitlines()[-1] if detail.strip() else "it did not start"
            raise ImpairError(f"the delay relay failed: {reason}.")

    def set_delay(self, delay_ms: float) -> None:
        """Change the one-way delay for frames read from now on."""
        if delay_ms < 0:
            raise ImpairError(f"a delay of {delay_ms} ms is negative.")
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(f"delay {delay_ms}\n".encode())
            self.process.stdin.flush()
        except OSError:
            raise ImpairError("the delay relay has stopped, so the delay cannot change.") from None
        self.delay_ms = delay_ms

    def stop(self, timeout: float = 2.0) -> None:
        """Close the lifeline and wait for the relay to exit (killing it if it does not)."""
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        if self.process.stderr is not None:
            self.process.stderr.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the relay process: ``--fds A,B --delay-ms D``; stdin is the lifeline."""
    parser = argparse.ArgumentParser(prog="python -m netlens.impair.relay")
    parser.add_argument("--fds", required=True, help="the two TAP descriptors, A,B")
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay in milliseconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the lab ends
    end_a, end_b = (int(part) for part in args.fds.split(","))
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    relay(end_a, end_b, max(0.0, args.delay_ms) / 1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
