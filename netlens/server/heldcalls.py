"""The loop's non-blocking socket system calls made through libc while *keeping* the GIL.

Python's socket methods (and ``select.epoll``'s, ``fcntl.ioctl``, ``os.close``)
release the GIL around every system call. On a non-blocking socket the call
itself takes a few microseconds, but getting the GIL back means waiting for
whichever thread took it meanwhile to hand it over, up to the interpreter's
switch interval. Inside the TUI (UI, capture, probe and server threads in one
process) the server thread spent most of its time waiting like that, six or
seven times per search request. ``ctypes.PyDLL`` calls C functions *without*
releasing the GIL: none of these calls can block (every descriptor is
non-blocking), so holding the GIL through them costs the other threads a few
microseconds and saves the loop a GIL round trip per call. ``epoll_wait``,
which does block, stays Python's.

Each call raises the ``OSError`` subclass Python's own would (from ``errno``:
``BlockingIOError``, ``ConnectionResetError``, ``BrokenPipeError``, ...), so
the loop's error handling is the same whichever layer it uses. In one thread
alone (``serve --headless``) a ctypes call costs more than the C method it
replaces, so the layer is used only where threads compete (the TUI; see
:attr:`netlens.server.config.ServerConfig.hold_gil`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import sys
import termios

from netlens.server.events import Address

_SOCK_FLAGS = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
#: send() flags: never SIGPIPE (Python ignores it anyway; this keeps it so for any embedder).
_MSG_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0x4000)
#: Largest send() asked at once: its result must fit the C int ctypes returns.
_SEND_MAX = 1 << 30
_SOCKADDR_BYTES = 128  # sizeof(struct sockaddr_storage)
_PORT = struct.Struct("!H")
_FAMILY = struct.Struct("=H")


class _EpollData(ctypes.Union):
    _fields_ = [("fd", ctypes.c_int), ("u64", ctypes.c_uint64)]


class _EpollEvent(ctypes.Structure):
    # The kernel packs struct epoll_event on x86-64 (and only there).
    _pack_ = 1 if os.uname().machine == "x86_64" else 0
    _fields_ = [("events", ctypes.c_uint32), ("data", _EpollData)]


def _raise_errno() -> None:
    code = ctypes.get_errno()
    # OSError(errno, text) is the subclass Python's own call raises (EAGAIN: BlockingIOError, ...).
    raise OSError(code, os.strerror(code))


class HeldCalls:
    """``accept4``, ``recv``, ``send``, ``epoll_ctl``, ``ioctl(FIONREAD)`` and ``close`` holding the GIL.

    One instance per server loop (its buffers are reused on every call, so it
    belongs to one thread). Raises ``OSError`` from :func:`load` when this
    libc lacks them.
    """

    def __init__(self, libc: ctypes.PyDLL, recv_size: int) -> None:
        self._accept4 = libc.accept4
        self._accept4.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
        self._recv = libc.recv
        self._recv.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        self._recv.restype = ctypes.c_ssize_t
        self._send = libc.send
        self._send.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        self._send.restype = ctypes.c_ssize_t
        self._close = libc.close
        self._close.argtypes = (ctypes.c_int,)
        self._epoll_ctl = libc.epoll_ctl
        self._epoll_ctl.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
        self._ioctl = libc.ioctl
        self._ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
        self.recv_size = recv_size
        self._buffer = ctypes.create_string_buffer(recv_size)
        self._view = memoryview(self._buffer).cast("B")
        self._address = ctypes.create_string_buffer(_SOCKADDR_BYTES)
        self._address_view = memoryview(self._address).cast("B")
        self._address_length = ctypes.c_uint32()
        self._address_length_ref = ctypes.byref(self._address_length)
        self._event = _EpollEvent()
        self._event_ref = ctypes.byref(self._event)
        self._count = ctypes.c_int()
        self._count_ref = ctypes.byref(self._count)

    def accept(self, listener: int) -> tuple[int, Address]:
        """``accept4()`` a connection (non-blocking, close-on-exec): its descriptor and ``(host, port)``."""
        self._address_length.value = _SOCKADDR_BYTES
        fd = self._accept4(listener, self._address, self._address_length_ref, _SOCK_FLAGS)
        if fd < 0:
            _raise_errno()
        return fd, self._peer()

    def _peer(self) -> Address:
        raw = self._address_view
        family = _FAMILY.unpack_from(raw)[0]
        port = _PORT.unpack_from(raw, 2)[0]
        if family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
        if family == socket.AF_INET6:
            return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
        return "", port

    def recv(self, fd: int, size: int) -> bytes:
        """``recv()`` at most ``size`` bytes (at most the buffer's :attr:`recv_size`)."""
        got = self._recv(fd, self._buffer, min(size, self.recv_size), 0)
        if got < 0:
            _raise_errno()
        return self._view[:got].tobytes()

    def send(self, fd: int, data: bytes | bytearray) -> int:
        """``send()`` what the kernel takes of ``data`` (not empty); bytes sent."""
        length = min(len(data), _SEND_MAX)
        if not length:
            return 0
        if data.__class__ is bytes:
            sent = self._send(fd, data, length, _MSG_NOSIGNAL)
        else:
            # A pointer into the bytearray, valid for the call (nothing resizes it meanwhile).
            sent = self._send(fd, ctypes.byref(ctypes.c_char.from_buffer(data)), length, _MSG_NOSIGNAL)
        if sent < 0:
            _raise_errno()
        return int(sent)

    def close_socket(self, sock: socket.socket) -> None:
        """Close ``sock``'s descriptor here, as ``sock.close()`` would (ECONNRESET is not an error)."""
        fd = sock.detach()
        if self._close(fd) < 0 and ctypes.get_errno() not in (errno.EINTR, errno.ECONNRESET):
            # EINTR: Linux has closed it all the same.
            _raise_errno()

    def epoll_ctl(self, epoll: int, operation: int, fd: int, flags: int) -> None:
        """``epoll_ctl()`` as ``select.epoll.register/modify`` make it (the event's data is ``fd``)."""
        event = self._event
        event.events = flags
        event.data.u64 = 0
        event.data.fd = fd
        if self._epoll_ctl(epoll, operation, fd, self._event_ref) < 0:
            _raise_errno()

    def unread(self, fd: int) -> int:
        """Bytes waiting in the receive queue (``ioctl(FIONREAD)``); 0 if unknown."""
        if self._ioctl(fd, termios.FIONREAD, self._count_ref) < 0:
            return 0
        return self._count.value


#: epoll_ctl() operations.
EPOLL_CTL_ADD = 1
EPOLL_CTL_MOD = 3


def load(recv_size: int) -> HeldCalls | None:
    """The calls on this system's libc, or None where there is none to use (not Linux, no accept4)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return HeldCalls(ctypes.PyDLL(None, use_errno=True), recv_size)
    except (OSError, AttributeError):
        return None
