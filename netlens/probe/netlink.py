"""A minimal NETLINK_SOCK_DIAG client: the request ``ss`` sends, and the raw reply chunks.

Only what a TCP dump needs: build one dump request, optionally with a port
filter in the kernel's inet_diag bytecode, send it, and hand each received
datagram to a callback that parses it in place. Constants and layouts come
from ``linux/netlink.h``, ``linux/sock_diag.h`` and ``linux/inet_diag.h``.

Two request forms exist. ``SOCK_DIAG_BY_FAMILY`` (``struct inet_diag_req_v2``,
what ``ss`` sends today) names one address family, so IPv4 and IPv6 take two
dumps. The older ``TCPDIAG_GETSOCK`` (``struct inet_diag_req``, still served by
every kernel since 2.6) dumps both families at once. Either way the kernel
walks its *whole* established-socket hash table per dump, whatever the filter
(about 1 ms for the 262,144 empty buckets of this machine, plus 0.1-0.2 µs per
socket anywhere in it, TIME_WAIT included): one walk instead of two halves that.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
#: The pre-sock_diag request (``struct inet_diag_req``); replies carry the same type.
TCPDIAG_GETSOCK = 18

NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3

# Attributes of an inet_diag request.
INET_DIAG_REQ_BYTECODE = 1

# Attributes of an inet_diag reply (enum in linux/inet_diag.h).
INET_DIAG_MEMINFO = 1
INET_DIAG_INFO = 2
INET_DIAG_CONG = 4
INET_DIAG_SKMEMINFO = 7
INET_DIAG_SHUTDOWN = 8

# Bytecode operations.
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_S_EQ = 11
INET_DIAG_BC_D_EQ = 12

#: Every TCP state (bits 1..12; 12 is the request-socket form of SYN_RECV).
ALL_STATES = ((1 << 13) - 1) & ~1
#: The kernel's TCP_TIME_WAIT state number (its bit in a states mask is ``1 << TIME_WAIT``).
TIME_WAIT = 6

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLATTR = struct.Struct("=HH")  # len, type
_REQ_V2 = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states; then inet_diag_sockid
_REQ_COMPAT = struct.Struct("=BBBB")  # family, src_len, dst_len, ext; then inet_diag_sockid, states, dbs
_SOCKID_ANY = struct.Struct(">HH16s16s").pack(0, 0, bytes(16), bytes(16)) + struct.pack(
    "=III", 0, 0xFFFFFFFF, 0xFFFFFFFF
)
_BC_OP = struct.Struct("=BBH")  # code, yes, no

# The kernel fills each dump datagram up to the largest buffer we ever passed
# to recv, capped near 32 KiB; asking for more costs nothing (the result is
# shrunk to what arrived).
RECV_BUFFER_SIZE = 64 * 1024


class NetlinkError(OSError):
    """The kernel answered a sock_diag request with an error (``errno`` tells which)."""


def ext_mask(*attributes: int) -> int:
    """Return the ``idiag_ext`` bit mask that asks the kernel for the given reply attributes."""
    mask = 0
    for attr in attributes:
        mask |= 1 << (attr - 1)
    return mask


def port_filter_bytecode(port: int) -> bytes:
    """Return inet_diag bytecode that keeps sockets whose source *or* destination port is ``port``.

    The kernel runs the program per socket: an op jumps ``yes`` bytes on a
    match and ``no`` bytes otherwise; landing exactly on the end accepts,
    landing 4 bytes past it rejects. Its verifier also insists that following
    every ``yes`` from the start visits each op, hence the JMP in the middle,
    whose condition is always false, so its ``no`` leads to "accept"::

        0: S_EQ port  yes->8 (JMP)    no->12 (D_EQ)
        8: JMP        yes->12         no->20 (accept)
       12: D_EQ port  yes->20 (accept) no->24 (reject)
    """
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is not in 0..65535")
    return b"".join(
        (
            _BC_OP.pack(INET_DIAG_BC_S_EQ, 8, 12),
            _BC_OP.pack(0, 0, port),
            _BC_OP.pack(INET_DIAG_BC_JMP, 4, 12),
            _BC_OP.pack(INET_DIAG_BC_D_EQ, 8, 12),
            _BC_OP.pack(0, 0, port),
        )
    )


def build_dump_request(family: int, ext: int, seq: int = 1, states: int = ALL_STATES, bytecode: bytes = b"") -> bytes:
    """Return one netlink message asking for a dump of every TCP socket of ``family``.

    ``ext`` is an :func:`ext_mask`; ``bytecode`` (from
    :func:`port_filter_bytecode`) lets the kernel drop non-matching sockets
    before they are ever copied to us.
    """
    body = _REQ_V2.pack(family, socket.IPPROTO_TCP, ext, 0, states) + _SOCKID_ANY
    return _message(SOCK_DIAG_BY_FAMILY, seq, body, bytecode)


def build_compat_dump_request(ext: int, seq: int = 1, states: int = ALL_STATES, bytecode: bytes = b"") -> bytes:
    """Return one ``TCPDIAG_GETSOCK`` message asking for a dump of every TCP socket, IPv4 and IPv6 in one walk.

    The kernel answers it with ``sdiag_family = AF_UNSPEC``, which is what makes
    it cover both families; ``ext`` and ``bytecode`` are as for
    :func:`build_dump_request`, and the replies are the same ``inet_diag_msg``
    records with ``nlmsg_type`` :data:`TCPDIAG_GETSOCK`.
    """
    body = _REQ_COMPAT.pack(socket.AF_INET, 0, 0, ext) + _SOCKID_ANY + struct.pack("=II", states, 0)
    return _message(TCPDIAG_GETSOCK, seq, body, bytecode)


def _message(kind: int, seq: int, body: bytes, bytecode: bytes) -> bytes:
    """A dump request of type ``kind``: header, ``body``, then the bytecode attribute if any."""
    if bytecode:
        attr_len = NLATTR.size + len(bytecode)
        body += NLATTR.pack(attr_len, INET_DIAG_REQ_BYTECODE) + bytecode + bytes(-attr_len % 4)
    header = NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


#: ``idiag_states`` of the listening sockets alone: the kernel then walks only its
#: listener table, never the established-socket table (whose walk costs per socket
#: in the namespace, TIME_WAIT included).
LISTEN_ONLY = 1 << 10
_NO_COOKIE = struct.pack("=II", 0xFFFFFFFF, 0xFFFFFFFF)


def build_exact_request(local: tuple[str, int], remote: tuple[str, int], ext: int, seq: int = 1) -> bytes:
    """Return one netlink message asking for the TCP socket with this 4-tuple (no dump, no walk).

    The kernel looks the socket up in its hash tables as an arriving segment
    would, TIME_WAIT and request sockets included; a tuple with no socket is
    answered with ``ENOENT``, or with the listener of ``local``'s port (the
    lookup falls back to listeners), which callers drop.
    """
    family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
    src = socket.inet_pton(family, local[0]).ljust(16, b"\0")
    dst = socket.inet_pton(family, remote[0]).ljust(16, b"\0")
    sockid = struct.pack(">HH16s16s", local[1], remote[1], src, dst) + struct.pack("=I", 0) + _NO_COOKIE
    body = _REQ_V2.pack(family, socket.IPPROTO_TCP, ext, 0, ALL_STATES) + sockid
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, 0) + body


def run_lookups(sock: socket.socket, requests: list[bytes], on_reply: Callable[[bytes, int], object]) -> None:
    """Send exact requests (one datagram) and feed each socket reply to ``on_reply(data, len(data))``.

    Every request gets exactly one answer, a socket or an error; "no such
    socket" (``ENOENT``) is skipped, any other refusal raises :class:`NetlinkError`.
    """
    sock.sendto(b"".join(requests), (0, 0))
    answers = 0
    recv = sock.recv
    while answers < len(requests):
        data = recv(RECV_BUFFER_SIZE)
        if not data:
            raise NetlinkError(errno.EIO, "sock_diag socket closed in the middle of a lookup")
        offset = 0
        while offset + NLMSGHDR.size <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if length < NLMSGHDR.size or offset + length > len(data):
                raise NetlinkError(errno.EPROTO, "truncated netlink message in a sock_diag reply")
            answers += 1
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, offset + NLMSGHDR.size)
                if code and -code != errno.ENOENT:
                    raise NetlinkError(-code, f"sock_diag lookup refused: {os.strerror(-code)}")
            else:
                message = data[offset:offset + length]
                on_reply(message, length)
            offset += (length + 3) & ~3


def open_sock_diag() -> socket.socket:
    """Open a NETLINK_SOCK_DIAG socket; raises ``OSError`` where the kernel (or platform) has none."""
    family = getattr(socket, "AF_NETLINK", None)
    if family is None:
        raise OSError(errno.EAFNOSUPPORT, "this platform has no netlink sockets")
    return socket.socket(family, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)


def check_error(buf: bytes | bytearray, offset: int) -> None:
    """Raise :class:`NetlinkError` for the NLMSG_ERROR message at ``offset`` unless it is an ACK (error 0)."""
    if len(buf) < offset + NLMSGHDR.size + 4:
        raise NetlinkError(errno.EPROTO, "truncated netlink error message")
    (code,) = struct.unpack_from("=i", buf, offset + NLMSGHDR.size)
    if code:
        raise NetlinkError(-code, f"sock_diag request refused: {os.strerror(-code)}")


def run_dump(sock: socket.socket, request: bytes, on_chunk: Callable[[bytes, int], bool]) -> None:
    """Send ``request`` and feed each reply datagram to ``on_chunk(data, len(data))`` until it returns True.

    ``on_chunk`` returns True once it has seen NLMSG_DONE. Each datagram is
    a fresh ``bytes`` object, so slices of it are single copies.
    """
    sock.sendto(request, (0, 0))
    recv = sock.recv
    while True:
        data = recv(RECV_BUFFER_SIZE)
        if not data:
            raise NetlinkError(errno.EIO, "sock_diag socket closed in the middle of a dump")
        if on_chunk(data, len(data)):
            return
