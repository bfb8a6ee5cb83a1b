"""Helpers for the lab-network tests: labs that always go away, known traffic, a raw capture, leak checks.

These tests need root (CI runs as root). Every namespace is named with the
prefix ``nli`` and this process's pid, every socket has a timeout, and every
lab is torn down in a ``finally`` even when an assertion fails.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from netlens.impair import LabNetwork, entered_netns
from netlens.impair.netns import list_namespaces, process_start_ticks

PREFIX = "nli"
ETH_P_ALL = 0x0003
PACKET_HOST = 0
PACKET_OUTGOING = 4


@contextlib.contextmanager
def lab(**options: Any) -> Iterator[LabNetwork]:
    """A built lab network with this suite's prefix, torn down whatever happens."""
    net = LabNetwork(prefix=PREFIX, **options)
    try:
        yield net.build()
    finally:
        net.close()


@contextlib.contextmanager
def tcp_pair(net: LabNetwork, timeout: float = 5.0) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected (client, server-side) TCP pair across the lab wire."""
    with net.server.namespace.entered():
        listener = socket.create_server((net.server.address, 0))
    listener.settimeout(timeout)
    with net.client.namespace.entered():
        client = socket.create_connection((net.server.address, listener.getsockname()[1]), timeout=timeout)
    try:
        accepted, _ = listener.accept()
        accepted.settimeout(timeout)
        try:
            yield client, accepted
        finally:
            accepted.close()
    finally:
        client.close()
        listener.close()


def connect_time(net: LabNetwork, port: int, timeout: float = 3.0) -> float:
    """Seconds one TCP connect from the client to ``port`` on the server takes (SYN to SYN-ACK)."""
    with net.client.namespace.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        start = time.perf_counter()
        sock.connect((net.server.address, port))
        return time.perf_counter() - start
    finally:
        sock.close()


@contextlib.contextmanager
def raw_capture(net: LabNetwork, role: str) -> Iterator[socket.socket]:
    """An AF_PACKET socket on ``role``'s lab device, opened inside its namespace, with a large buffer."""
    endpoint = net.server if role == "server" else net.client
    with endpoint.namespace.entered():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: root may exceed rmem_max
        sock.bind((endpoint.device, ETH_P_ALL))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def drain(sock: socket.socket, settle: float = 0.3) -> list[tuple[bytes, Any]]:
    """Every ``(data, address)`` waiting on a non-blocking socket, reading until ``settle`` s pass quietly."""
    frames: list[tuple[bytes, Any]] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle:
        try:
            frame, address = sock.recvfrom(65536)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        frames.append((frame, address))
        quiet_since = time.monotonic()
    return frames


def drain_frames(capture: socket.socket, settle: float = 0.3) -> list[tuple[bytes, int]]:
    """Every frame waiting on a capture socket, with its packet type (PACKET_HOST, PACKET_OUTGOING, ...)."""
    return [(frame, address[2]) for frame, address in drain(capture, settle)]


def udp_port_of(frame: bytes) -> int | None:
    """The UDP destination port of an Ethernet/IPv4 frame, or None for anything else."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    return int(struct.unpack_from("!H", frame, 14 + ihl + 2)[0])


def tcp_checksum_ok(frame: bytes) -> bool:
    """Whether the TCP checksum of an Ethernet/IPv4/TCP frame is right."""
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack_from("!H", ip, 2)[0]
    segment = ip[ihl:total]
    data = ip[12:20] + struct.pack("!BBH", 0, 6, len(segment)) + segment
    if len(data) % 2:
        data += b"\0"
    acc = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc == 0xFFFF


@contextlib.contextmanager
def udp_receiver(net: LabNetwork) -> Iterator[socket.socket]:
    """A UDP socket bound on the server's lab address, with room for every datagram of a test."""
    with net.server.namespace.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)
        sock.bind((net.server.address, 0))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def send_udp(net: LabNetwork, port: int, count: int) -> None:
    """Send ``count`` numbered datagrams from the client to ``port`` on the server."""
    with net.client.namespace.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        for number in range(count):
            sock.sendto(struct.pack("!I", number), (net.server.address, port))


def receive_all(sock: socket.socket, settle: float = 0.3) -> set[int]:
    """The numbers of every datagram that reached ``sock``."""
    return {struct.unpack("!I", data[:4])[0] for data, _ in drain(sock, settle)}


def held_netns(net: LabNetwork) -> list[int]:
    """Descriptors on both lab namespaces, so a test can look inside them after they are deleted."""
    return [os.open(endpoint.namespace.path, os.O_RDONLY) for endpoint in (net.client, net.server)]


def leftovers_inside(netns_fd: int) -> dict[str, str]:
    """What is still inside a namespace (held open by a descriptor): links other than lo, nft tables, qdiscs."""
    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout

    with entered_netns(f"/proc/self/fd/{netns_fd}"):
        links = [line for line in run("ip", "-o", "link", "show").splitlines() if ": lo:" not in line]
        qdiscs = [line for line in run("tc", "qdisc", "show").splitlines() if " dev lo " not in line]
        return {"links": "\n".join(links), "tables": run("nft", "list", "tables").strip(), "qdiscs": "\n".join(qdiscs)}


def ours_alive() -> list[str]:
    """The namespaces with this suite's prefix that exist right now."""
    return [name for name in list_namespaces() if name.startswith(PREFIX + "-")]


def process_running(pid: int, start_ticks: int | None) -> bool:
    """Whether the process ``pid`` that started at ``start_ticks`` still runs (a zombie has exited)."""
    if process_start_ticks(pid) != start_ticks:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def process_gone(pid: int, start_ticks: int | None, timeout: float = 5.0) -> bool:
    """Wait until the process ``pid`` (that started at ``start_ticks``) has exited; True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_running(pid, start_ticks):
            return True
        time.sleep(0.02)
    return False


def timed_bulk(sender: socket.socket, receiver: socket.socket, total: int, skip: int = 0) -> tuple[float, int]:
    """Send ``total`` bytes through a TCP pair; returns (seconds, bytes) counted from the ``skip``-th byte received."""
    writer = threading.Thread(target=sender.sendall, args=(b"x" * total,), daemon=True)
    start = time.perf_counter()
    writer.start()
    received, counted_from = 0, 0
    while received < total:
        chunk = receiver.recv(1 << 20)
        if not chunk:
            raise AssertionError(f"the connection closed after {received} of {total} bytes")
        received += len(chunk)
        if skip and not counted_from and received >= skip:
            start, counted_from = time.perf_counter(), received
    elapsed = time.perf_counter() - start
    writer.join(5)
    return elapsed, received - counted_from
