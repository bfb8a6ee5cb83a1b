"""A delay link between two network namespaces, made of two TUN devices and a relay thread.

The machine has no ``sch_netem``, so the delay is made in user space: each
namespace gets a TUN device, and a relay in this process reads every IP packet
from one and writes it into the other ``delay_ms`` later (order kept). A
``tc tbf`` on the client's device limits the rate, and an optional nftables
rule on the server's ingress drops a share of data segments. Everything is
named ``nlg-<pid>-...`` and torn down on exit, even when the test fails.

Used by the graph tests until ``netlens.impair`` (TUN delay link, nftables
loss) lands; the traffic never leaves the two namespaces.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_CLONE_NEWNET = 0x40000000
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
CLIENT_ADDR = "10.77.0.1"
SERVER_ADDR = "10.77.0.2"
IFACE = "nlgtun0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _open_tun_in(netns: str) -> int:
    """Create ``IFACE`` inside ``netns`` (from a throwaway thread that enters it) and return its fd."""
    result: list[int | BaseException] = []

    def enter_and_open() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ns_fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(ns_fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
            finally:
                os.close(ns_fd)
            fd = os.open("/dev/net/tun", os.O_RDWR)
            fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", IFACE.encode(), _IFF_TUN | _IFF_NO_PI))
            result.append(fd)
        except BaseException as exc:  # handed to the caller's thread below
            result.append(exc)

    thread = threading.Thread(target=enter_and_open)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


class _Relay:
    """Moves packets from one TUN fd to the other after a fixed delay, in both directions."""

    def __init__(self, fd_a: int, fd_b: int, delay_s: float) -> None:
        self.delay_s = delay_s
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                        for src, dst in ((fd_a, fd_b), (fd_b, fd_a))]
        for thread in self.threads:
            thread.start()

    def _pump(self, src: int, dst: int) -> None:
        queue: deque[tuple[float, bytes]] = deque()
        while not self.stopping.is_set():
            timeout = 0.05 if not queue else max(0.0, queue[0][0] - time.monotonic())
            ready, _, _ = select.select([src], [], [], timeout)
            if ready:
                try:
                    packet = os.read(src, 65536)
                except OSError:
                    return
                queue.append((time.monotonic() + self.delay_s, packet))
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                try:
                    os.write(dst, queue.popleft()[1])
                except OSError:
                    pass  # the peer device is going away or its queue is full: a drop, like a wire

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=2)


@dataclass(frozen=True)
class DelayLink:
    """Two namespaces joined by the delayed link; run commands inside with :meth:`argv`."""

    client_ns: str
    server_ns: str
    iface: str = IFACE
    client_addr: str = CLIENT_ADDR
    server_addr: str = SERVER_ADDR

    def argv(self, netns: str, *command: str) -> list[str]:
        """``command`` run inside ``netns``."""
        return ["ip", "netns", "exec", netns, *command]


@contextmanager
def delay_link(delay_ms: float = 25.0, rate: str | None = "20mbit", loss_permille: int = 0) -> Iterator[DelayLink]:
    """Build the link (one-way ``delay_ms``; rate limit on the client's egress; server-side data loss)."""
    tag = f"nlg-{os.getpid()}-{threading.get_ident() % 10000}"
    link = DelayLink(f"{tag}-c", f"{tag}-s")
    fds: list[int] = []
    relay: _Relay | None = None
    try:
        for netns, mine, peer in ((link.client_ns, CLIENT_ADDR, SERVER_ADDR),
                                  (link.server_ns, SERVER_ADDR, CLIENT_ADDR)):
            _ip("netns", "add", netns)
            _ip("-n", netns, "link", "set", "lo", "up")
            fds.append(_open_tun_in(netns))
            _ip("-n", netns, "addr", "add", f"{mine}/32", "peer", f"{peer}/32", "dev", IFACE)
            _ip("-n", netns, "link", "set", IFACE, "up")
        if rate:
            subprocess.run(link.argv(link.client_ns, "tc", "qdisc", "add", "dev", IFACE, "root", "tbf", "rate", rate,
                                     "burst", "32kb", "latency", "300ms"), check=True, capture_output=True, timeout=10)
        if loss_permille:
            # Only segments with data (> 200 bytes) are dropped, so the handshake and ACKs get through.
            rules = (f"table netdev nlg_loss {{\n chain ingress {{\n"
                     f'  type filter hook ingress device "{IFACE}" priority 0; policy accept;\n'
                     f"  ip length > 200 numgen random mod 1000 < {loss_permille} drop\n }}\n}}\n")
            subprocess.run(link.argv(link.server_ns, "nft", "-f", "-"), input=rules, text=True, check=True,
                           capture_output=True, timeout=10)
        relay = _Relay(fds[0], fds[1], delay_ms / 1000)
        yield link
    finally:
        if relay is not None:
            relay.stop()
        for fd in fds:
            os.close(fd)
        for netns in (link.client_ns, link.server_ns):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=10)
