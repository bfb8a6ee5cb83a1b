"""The Linux packet socket under a capture: opening it (with the sentence for each way that fails) and its options.

scapy opens and binds the AF_PACKET socket (it knows how to resolve an
interface); everything after that is plain ``setsockopt`` on the socket.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import socket
import struct
from typing import Any

from netlens.capture.errors import CaptureError

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
#: Linux 4.20+: do not deliver the packets this host sends to this socket (lo's outgoing copies).
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
SO_RCVBUFFORCE = 33
_TPACKET_REQ3 = struct.Struct("IIIIIII")
#: Bit of CAP_NET_RAW in the capability sets of /proc/self/status.
CAP_NET_RAW = 13


def has_capability(bit: int, status_path: str = "/proc/self/status") -> bool | None:
    """Whether this process's effective capabilities include ``bit`` (None if the kernel does not say)."""
    try:
        with open(status_path, encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def privilege_sentence(iface: str, euid: int | None = None, net_raw: bool | None = None) -> str:
    """Why a packet socket was refused, in one sentence that fits who is asking.

    A user is told to use sudo; root without CAP_NET_RAW (a container, or a
    parent that dropped it) is told which capability is missing, since sudo
    would change nothing; root with it was stopped by a security policy.
    """
    euid = os.geteuid() if euid is None else euid
    net_raw = has_capability(CAP_NET_RAW) if net_raw is None else net_raw
    if euid != 0:
        return (f"capturing packets on {iface} needs root or the CAP_NET_RAW capability; "
                f"run netlens with sudo.")
    if net_raw is False:
        return (f"capturing packets on {iface} needs the CAP_NET_RAW capability, which this process lacks "
                f"although it runs as root (its parent, or the container, dropped it).")
    return (f"the kernel refused a packet socket on {iface} although this process has CAP_NET_RAW "
            f"(a security policy such as seccomp, AppArmor or SELinux forbids it).")


def listen(iface: str, promisc: bool) -> Any:
    """scapy's bound AF_PACKET listener on ``iface`` (imports scapy); CaptureError in one sentence."""
    try:
        from scapy.arch.linux import L2ListenSocket
        from scapy.error import Scapy_Exception
    except ImportError as exc:  # pragma: no cover - scapy is a dependency
        raise CaptureError(f"packet capture needs scapy, which failed to import: {exc}.") from None
    # scapy warns that it cannot pick a dissector for lo's frames when its
    # Ethernet layers are not loaded; netlens never asks it to dissect here.
    scapy_log = logging.getLogger("scapy.runtime")
    level = scapy_log.level
    scapy_log.setLevel(logging.ERROR)
    try:
        # scapy resolves the interface and binds an AF_PACKET socket to it; the
        # filter is attached right after, once the link type is known.
        return L2ListenSocket(iface=iface, promisc=promisc)
    except PermissionError:
        raise CaptureError(privilege_sentence(iface)) from None
    except (OSError, Scapy_Exception) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENODEV, errno.ENXIO):
            raise CaptureError(f"there is no network interface named {iface!r}.") from None
        if isinstance(exc, OSError) and exc.errno == errno.ENETDOWN:
            raise CaptureError(f"the network interface {iface} is down.") from None
        raise CaptureError(f"cannot capture on {iface}: {exc}.") from None
    finally:
        scapy_log.setLevel(level)


def ignore_outgoing(sock: socket.socket) -> bool:
    """Ask the kernel not to deliver this host's outgoing packets to ``sock``; False if it cannot (< 4.20)."""
    try:
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError:
        return False
    return True


def grow_rcvbuf(sock: socket.socket, size: int) -> int:
    """Ask for a ``size``-byte receive buffer: beyond rmem_max as root (FORCE), else as allowed."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        except OSError:
            pass
    # Linux reports double the requested value (it counts bookkeeping overhead).
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def rx_ring(sock: socket.socket, block_size: int, blocks: int, timeout_ms: int) -> mmap.mmap:
    """Switch ``sock`` to a TPACKET_V3 receive ring and map it (OSError if the kernel refuses)."""
    sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
    frame_size = 2048  # only used by the kernel to validate the request for V3
    request = _TPACKET_REQ3.pack(block_size, blocks, frame_size, block_size * blocks // frame_size, timeout_ms, 0, 0)
    sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
    return mmap.mmap(sock.fileno(), block_size * blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def read_stats(sock: socket.socket) -> tuple[int, int]:
    """(packets, drops) since the last call: the kernel resets PACKET_STATISTICS on read."""
    raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
    packets, drops = struct.unpack("II", raw)
    return packets, drops


def drain(sock: socket.socket, size: int) -> None:
    """Read and drop whatever is queued on ``sock`` (frames that arrived before its filter)."""
    while True:
        try:
            sock.recv(size, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
