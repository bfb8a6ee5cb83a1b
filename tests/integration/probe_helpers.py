"""Helpers for the probe's integration tests: sockets that always get closed, and `ss` output parsed.

`ss` (Debian package iproute2) is the reference: the tests put sockets in
known states and check that netlens reports what `ss` reports for them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000

# ss's state names -> the kernel names netlens uses.
SS_STATES = {
    "ESTAB": "ESTABLISHED",
    "SYN-SENT": "SYN_SENT",
    "SYN-RECV": "SYN_RECV",
    "FIN-WAIT-1": "FIN_WAIT1",
    "FIN-WAIT-2": "FIN_WAIT2",
    "TIME-WAIT": "TIME_WAIT",
    "CLOSE-WAIT": "CLOSE_WAIT",
    "LAST-ACK": "LAST_ACK",
    "CLOSING": "CLOSING",
    "LISTEN": "LISTEN",
    "UNCONN": "CLOSE",
}
_USER = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=(\d+)\)')
_TIMER = re.compile(r"timer:\((\w+),([^,]*),(\d+)\)")
_SKMEM = re.compile(r"skmem:\(([^)]*)\)")


@dataclass
class SsSocket:
    """One socket of `ss -Htanpimo` output."""

    state: str
    recv_q: int
    send_q: int
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int
    users: list[tuple[str, int, int]] = field(default_factory=list)  # (name, pid, fd)
    timer: tuple[str, str, int] | None = None  # (name, expiry as ss prints it, retrans)
    skmem: dict[str, int] = field(default_factory=dict)  # r, rb, t, tb, f, w, o, bl, d
    info: dict[str, str] = field(default_factory=dict)  # "rtt" -> "0.026/0.01", "cwnd" -> "10", ...
    words: set[str] = field(default_factory=set)  # bare words of the detail line: "ts", "sack", "cubic"...

    @property
    def key(self) -> tuple[str, int, str, int]:
        return (self.local_addr, self.local_port, self.remote_addr, self.remote_port)


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.split("%", 1)[0]  # a bound device shows as addr%dev
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, 0 if port == "*" else int(port)


def parse_ss(output: str) -> list[SsSocket]:
    """Parse `ss -H -t -a -n [-p] [-i] [-m] [-o]` output (one line per socket, details on a tab-indented line)."""
    sockets: list[SsSocket] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():  # detail line of the previous socket
            current = sockets[-1]
            skmem = _SKMEM.search(line)
            if skmem:
                for item in skmem.group(1).split(","):
                    name = item.rstrip("0123456789")
                    current.skmem[name] = int(item[len(name) :])
                line = _SKMEM.sub("", line)
            for token in line.split():
                name, sep, value = token.partition(":")
                if sep and not value.startswith("("):
                    current.info[name] = value
                elif not sep:
                    current.words.add(token)
            continue
        parts = line.split()
        local_addr, local_port = _endpoint(parts[3])
        remote_addr, remote_port = _endpoint(parts[4])
        timer = _TIMER.search(line)
        sockets.append(SsSocket(
            state=SS_STATES[parts[0]],
            recv_q=int(parts[1]),
            send_q=int(parts[2]),
            local_addr=local_addr,
            local_port=local_port,
            remote_addr=remote_addr,
            remote_port=remote_port,
            users=[(name, int(pid), int(fd)) for name, pid, fd in _USER.findall(line)],
            timer=(timer.group(1), timer.group(2), int(timer.group(3))) if timer else None,
        ))  # fmt: skip
    return sockets


def ss_path() -> str | None:
    """Path of `ss`, or None."""
    return shutil.which("ss") or next((p for p in ("/usr/sbin/ss", "/sbin/ss", "/usr/bin/ss") if shutil.which(p)), None)


def run_ss(port: int, options: str = "-Htanpimo") -> list[SsSocket]:
    """Run `ss OPTIONS '( sport = :PORT or dport = :PORT )'` and parse it."""
    ss = ss_path()
    assert ss, "ss not found: install Debian's iproute2"
    result = subprocess.run([ss, options, f"( sport = :{port} or dport = :{port} )"],
                            capture_output=True, text=True, timeout=20, check=True)  # fmt: skip
    return parse_ss(result.stdout)


class Sockets:
    """Makes loopback sockets for a test and closes every one of them at the end (with RST, leaving no TIME_WAIT)."""

    def __init__(self) -> None:
        self._open: list[socket.socket] = []

    def keep(self, sock: socket.socket) -> socket.socket:
        self._open.append(sock)
        return sock

    def listener(self, host: str = "127.0.0.1", backlog: int = 8, rcvbuf: int | None = None) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self.keep(socket.socket(family, socket.SOCK_STREAM))
        if rcvbuf is not None:  # set before listen(): accepted sockets inherit it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host, 0))
        sock.listen(backlog)
        return sock

    def connect(self, listener: socket.socket, sndbuf: int | None = None) -> socket.socket:
        sock = self.keep(socket.socket(listener.family, socket.SOCK_STREAM))
        if sndbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.settimeout(5)
        sock.connect(listener.getsockname()[:2])
        return sock

    def pair(self, listener: socket.socket, sndbuf: int | None = None) -> tuple[socket.socket, socket.socket]:
        """Connect a client to ``listener`` and accept it: (client, server side)."""
        client = self.connect(listener, sndbuf)
        listener.settimeout(5)
        server, _ = listener.accept()
        return client, self.keep(server)

    def close_gracefully(self, sock: socket.socket) -> None:
        """Close with a normal FIN (the state machine a test wants to watch)."""
        sock.close()

    def close_all(self) -> None:
        for sock in self._open:
            if sock.fileno() != -1:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        self._open.clear()

    def __iter__(self) -> Iterator[socket.socket]:
        return iter(self._open)


def run_in_private_netns(func: Callable[[], T], timeout: float = 60.0) -> T:
    """Run ``func`` in a new thread that first moves into a network namespace of its own, with loopback up.

    A namespace has its own sockets, TIME_WAIT table and ``/proc/net`` counts,
    so exact counts hold whatever else runs on the machine. Child processes
    started by ``func`` (``ss``) inherit it. The namespace, and any TIME_WAIT
    socket left in it, is gone once the thread ends; the thread is bounded by
    ``timeout``. Exceptions from ``func`` are raised here. Needs root.
    """
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:  # this thread only: setns/unshare of a netns is per task
                raise OSError(ctypes.get_errno(), f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
            outcome["value"] = func()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="private-netns", daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the namespace's work did not finish within {timeout} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
