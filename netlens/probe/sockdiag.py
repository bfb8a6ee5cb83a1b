"""Turn sock_diag dump replies (``struct inet_diag_msg`` + attributes) into :class:`SocketInfo` records.

This is the hot path of a snapshot: once a second in the UI, 10,000 sockets
in the benchmark. Per socket it does two ``unpack_from`` calls straight on
the receive buffer, one ``bytes`` copy of the attribute block (decoded later,
only if someone looks) and one record build through
:mod:`netlens.probe.fastbuild`; nothing else.
"""

from __future__ import annotations

import errno
import socket
import struct

from netlens.probe import netlink
from netlens.probe.model import (
    TIMER_NAMES,
    SocketInfo,
    build_socket,
    build_timer,
    state_name,
)

# nlmsghdr then inet_diag_msg, in one unpack: length, type, flags, seq, pid;
# family, state, timer, retrans, sport, dport (big-endian in the struct:
# swapped through _SWAP16), src, dst, ifindex, cookie (two u32), expires
# (ms), rqueue, wqueue, uid, inode.
_HEAD = struct.Struct("=IH")
_MSG = struct.Struct("=IHHII" + "BBBBHH16s16sIIIIIIII")
_ATTRS_OFFSET = _MSG.size

_FAMILIES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
_STATES = tuple(state_name(n) for n in range(16))
# Byte-swapping a u16 by table lookup costs a fifth of a socket.ntohs() call.
_SWAP16 = tuple(socket.ntohs(n) for n in range(0x10000))

#: Reply attributes a snapshot asks for (``ss -tinm`` plus the congestion algorithm).
SNAPSHOT_EXT = netlink.ext_mask(netlink.INET_DIAG_INFO, netlink.INET_DIAG_SKMEMINFO, netlink.INET_DIAG_CONG)


class DumpParser:
    """Accumulates the sockets of one or more dump replies into ``sockets`` (without owners).

    ``port``, when given, is checked again here so a kernel that rejected
    the bytecode filter still yields only matching sockets.
    """

    __slots__ = ("_addresses", "port", "sockets")

    def __init__(self, port: int | None = None) -> None:
        self.sockets: list[SocketInfo] = []
        self.port = port
        # A few addresses recur across thousands of sockets: format each
        # once. One dict per family, keyed by the raw 16 bytes.
        self._addresses: dict[int, dict[bytes, str]] = {socket.AF_INET: {}, socket.AF_INET6: {}}

    def _address(self, family: int, raw: bytes) -> str:
        if family == socket.AF_INET:
            text = socket.inet_ntop(family, raw[:4])
        elif family == socket.AF_INET6:
            text = socket.inet_ntop(family, raw)
        else:  # never asked for; shown raw rather than crashing the snapshot
            text = raw.hex()
        self._addresses[family][raw] = text
        return text

    def feed(self, buf: bytes, nbytes: int) -> bool:
        """Parse one reply datagram (its first ``nbytes`` bytes); return True once the dump is complete (NLMSG_DONE)."""
        offset = 0
        append = self.sockets.append
        port = self.port
        addresses = self._addresses
        swap, states, families = _SWAP16, _STATES, _FAMILIES
        unpack_msg, unpack_head, attrs_offset = _MSG.unpack_from, _HEAD.unpack_from, _ATTRS_OFFSET
        by_family, done, error = netlink.SOCK_DIAG_BY_FAMILY, netlink.NLMSG_DONE, netlink.NLMSG_ERROR
        while offset + 16 <= nbytes:
            msg_len, msg_type = unpack_head(buf, offset)
            if msg_len < 16 or offset + msg_len > nbytes:
                raise netlink.NetlinkError(errno.EPROTO, "truncated netlink message in a sock_diag reply")
            if msg_type == by_family and msg_len >= attrs_offset:
                (
                    _len, _type, _flags, _seq, _pid,
                    family, state, timer, retrans, sport, dport, src, dst,
                    _ifindex, cookie_lo, cookie_hi, expires, rqueue, wqueue, uid, inode,
                ) = unpack_msg(buf, offset)  # fmt: skip
                sport = swap[sport]
                dport = swap[dport]
                if port is None or sport == port or dport == port:
                    names = addresses.get(family) or addresses.setdefault(family, {})
                    append(
                        build_socket(
                            states[state] if state < 16 else state_name(state),
                            families.get(family) or str(family),
                            names.get(src) or self._address(family, src),
                            sport,
                            names.get(dst) or self._address(family, dst),
                            dport,
                            rqueue,
                            wqueue,
                            inode,
                            uid,
                            cookie_lo | (cookie_hi << 32),
                            build_timer(TIMER_NAMES.get(timer) or f"unknown({timer})", expires, retrans)
                            if timer
                            else None,
                            (),  # owners: attached by the snapshot once /proc is scanned
                            buf[offset + attrs_offset : offset + msg_len],
                            None,  # decoded attributes: on first use
                        )
                    )
            elif msg_type == done:
                return True
            elif msg_type == error:
                netlink.check_error(buf, offset)
            offset += (msg_len + 3) & ~3
        return False


def dump_tcp(
    sock: socket.socket,
    families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6),
    port: int | None = None,
    ext: int = SNAPSHOT_EXT,
) -> list[SocketInfo]:
    """Dump the TCP sockets of ``families`` through the sock_diag socket ``sock`` (records without owners).

    With ``port``, only sockets with that port at either end are returned; the
    kernel filters them (bytecode) so the cost follows the matches, not the
    machine's socket count. A kernel that rejects the bytecode (EINVAL, before
    Linux 4.17's port-equality ops) gets the plain dump, filtered here.
    """
    parser = DumpParser(port)
    bytecode = netlink.port_filter_bytecode(port) if port is not None else b""
    for seq, family in enumerate(families, start=1):
        try:
            netlink.run_dump(sock, netlink.build_dump_request(family, ext, seq=seq, bytecode=bytecode), parser.feed)
        except netlink.NetlinkError as exc:
            if exc.errno == errno.ENOENT and family != socket.AF_INET:
                continue  # a kernel built without IPv6 has no such sockets to show
            if exc.errno != errno.EINVAL or not bytecode:
                raise
            bytecode = b""
            netlink.run_dump(sock, netlink.build_dump_request(family, ext, seq=seq), parser.feed)
    return parser.sockets
