"""A fixed delay without netem: two TAP devices joined by a small user-space relay process.

Each TAP device is created inside one lab namespace (the device lives in the
namespace of the thread that opens ``/dev/net/tun``), so the client's and the
server's ends look like two ends of an Ethernet cable. The relay reads every
frame from one end and writes it to the other ``delay`` seconds later, in both
directions: one-way delay D, so a round trip takes 2·D. Frames are Ethernet
frames (TAP, not TUN), so captures, MSS and the neighbour table behave exactly
as on the veth lab.

The relay is a separate process (``relayloop.py``, stdlib only), not a
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

import fcntl
import os
import select
import struct
import subprocess
import sys

from netlens.impair import relayloop
from netlens.impair.errors import ImpairError

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
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


class DelayLink:
    """The relay process joining two TAP descriptors (created by the caller in their namespaces)."""

    def __init__(self, end_a: int, end_b: int, delay_ms: float) -> None:
        # Run by path in isolated mode without site: the loop is stdlib only, so the
        # relay starts in ~20 ms instead of importing netlens.
        command = [sys.executable, "-I", "-S", relayloop.__file__, "--fds", f"{end_a},{end_b}",
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

    @property
    def running(self) -> bool:
        """Whether the relay process is still carrying frames."""
        return self.process.poll() is None

    def _await_ready(self) -> None:
        assert self.process.stdout is not None
        poller = select.poll()  # not select(): our descriptors may be numbered above 1024
        poller.register(self.process.stdout, select.POLLIN)
        line = self.process.stdout.readline() if poller.poll(START_TIMEOUT * 1000) else b""
        if line != relayloop.READY:
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
