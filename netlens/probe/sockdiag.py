"""Turn sock_diag dump replies (``struct inet_diag_msg`` + attributes) into :class:`SocketInfo` records.

This is the hot path of a snapshot: once a second in the UI, 10,000 sockets
in the benchmark. Per socket it does two ``unpack_from`` calls straight on
the receive buffer, one ``bytes`` copy of the attribute block (decoded later,
only if someone looks) and one record build through
:mod:`netlens.probe.fastbuild`; nothing else.

A busy server leaves thousands of TIME_WAIT sockets on its port that nobody
reads one by one. When asked to (``time_wait_limit``), the parser only notes
where each TIME_WAIT reply is and how long its timer has left, and builds
records for the few that will be shown: the cost then follows what is shown,
not what the kernel holds.
"""

from __future__ import annotations

import errno
import heapq
import socket
import struct
from collections.abc import Collection

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
# The same message, read only for choosing among TIME_WAIT sockets: sport,
# dport, cookie (two u32), expires. The state byte sits at _STATE_OFFSET.
_TIME_WAIT_FIELDS = struct.Struct("=20xHH36xIII")
_STATE_OFFSET = 17

_FAMILIES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
_STATES = tuple(state_name(n) for n in range(16))
# Byte-swapping a u16 by table lookup costs a fifth of a socket.ntohs() call.
_SWAP16 = tuple(socket.ntohs(n) for n in range(0x10000))

#: Reply attributes a snapshot asks for (``ss -tinm`` plus the congestion algorithm).
SNAPSHOT_EXT = netlink.ext_mask(netlink.INET_DIAG_INFO, netlink.INET_DIAG_SKMEMINFO, netlink.INET_DIAG_CONG)


#: Where one TIME_WAIT reply lies, kept instead of a record until we know it will be shown:
#: (expires_ms (time left on its timer: the largest is the newest), cookie, datagram, offset, length).
#: A plain tuple: a NamedTuple's constructor costs three times as much, once per TIME_WAIT socket.
TimeWaitSeen = tuple[int, int, bytes, int, int]
_COOKIE = 1


class DumpParser:
    """Accumulates the sockets of one or more dump replies into ``sockets`` (without owners).

    ``port``, when given, is checked again here so a kernel that rejected
    the bytecode filter still yields only matching sockets. With
    ``light_time_wait``, TIME_WAIT replies go to ``time_wait`` as
    :class:`TimeWaitSeen` instead of ``sockets``; :func:`pick_time_wait`
    turns the chosen few into records.
    """

    __slots__ = ("_addresses", "port", "sockets", "time_wait")

    def __init__(self, port: int | None = None, light_time_wait: bool = False) -> None:
        self.sockets: list[SocketInfo] = []
        self.time_wait: list[TimeWaitSeen] | None = [] if light_time_wait else None
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
        self._addresses.setdefault(family, {})[raw] = text
        return text

    def feed(self, buf: bytes, nbytes: int) -> bool:
        """Parse one reply datagram (its first ``nbytes`` bytes); return True once the dump is complete (NLMSG_DONE).

        Socket replies may be of either request form (``SOCK_DIAG_BY_FAMILY``
        or ``TCPDIAG_GETSOCK``): their bodies are the same.
        """
        offset = 0
        append = self.sockets.append
        light = self.time_wait.append if self.time_wait is not None else None
        port = self.port
        addresses = self._addresses
        swap, states, families = _SWAP16, _STATES, _FAMILIES
        unpack_msg, unpack_head, attrs_offset = _MSG.unpack_from, _HEAD.unpack_from, _ATTRS_OFFSET
        unpack_tw = _TIME_WAIT_FIELDS.unpack_from
        replies = (netlink.SOCK_DIAG_BY_FAMILY, netlink.TCPDIAG_GETSOCK)
        done, error, time_wait = netlink.NLMSG_DONE, netlink.NLMSG_ERROR, netlink.TIME_WAIT
        while offset + 16 <= nbytes:
            msg_len, msg_type = unpack_head(buf, offset)
            if msg_len < 16 or offset + msg_len > nbytes:
                raise netlink.NetlinkError(errno.EPROTO, "truncated netlink message in a sock_diag reply")
            if msg_type not in replies or msg_len < attrs_offset:
                if msg_type == done:
                    return True
                if msg_type == error:
                    netlink.check_error(buf, offset)
            elif light is not None and buf[offset + _STATE_OFFSET] == time_wait:
                # Only what choosing needs: a fifth of the full unpack, and no record.
                sport, dport, cookie_lo, cookie_hi, expires = unpack_tw(buf, offset)
                if port is None or swap[sport] == port or swap[dport] == port:
                    light((expires, cookie_lo | (cookie_hi << 32), buf, offset, msg_len))
            else:
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
            offset += (msg_len + 3) & ~3
        return False


def pick_time_wait(seen: list[TimeWaitSeen], limit: int, keep: Collection[int] = ()) -> list[SocketInfo]:
    """Build records for the TIME_WAIT sockets worth showing; the others are never built.

    First those whose cookie is in ``keep`` (already on someone's screen: a
    cookie stays the same for the whole TIME_WAIT), in the kernel's order;
    then the ``limit`` newest others (the most time left on their timer),
    newest first.
    """
    chosen = [tw for tw in seen if tw[_COOKIE] in keep] if keep else []
    if limit > 0:
        kept = {tw[_COOKIE] for tw in chosen}
        others = [tw for tw in seen if tw[_COOKIE] not in kept] if kept else seen
        chosen += heapq.nlargest(limit, others)  # by expires_ms, then cookie (unique): never by the bytes
    if not chosen:
        return []
    # Replay just those messages through the ordinary parser: one code path builds every record.
    replay = b"".join(data[offset : offset + length] + bytes(-length % 4) for _, _, data, offset, length in chosen)
    parser = DumpParser()
    parser.feed(replay, len(replay))
    return parser.sockets


def dump_tcp(
    sock: socket.socket,
    families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6),
    port: int | None = None,
    ext: int = SNAPSHOT_EXT,
    parser: DumpParser | None = None,
    states: int = netlink.ALL_STATES,
) -> list[SocketInfo]:
    """Dump the TCP sockets of ``families`` through the sock_diag socket ``sock`` (records without owners).

    With ``port``, only sockets with that port at either end are returned; the
    kernel filters them (bytecode) so the records built follow the matches,
    not the machine's socket count. A kernel that rejects the bytecode
    (EINVAL, before Linux 4.17's port-equality ops) gets the plain dump,
    filtered here. Both families come from one walk of the kernel's hash
    table (``TCPDIAG_GETSOCK``) when the kernel takes that request, one dump
    per family otherwise. ``parser`` (a fresh :class:`DumpParser` for
    ``port``) receives the replies; pass one to read its ``time_wait``.
    ``states`` is the kernel's states mask (:data:`netlink.LISTEN_ONLY`: only
    its listener table is walked).
    """
    if parser is None:
        parser = DumpParser(port)
    bytecode = netlink.port_filter_bytecode(port) if port is not None else b""
    if set(families) == {socket.AF_INET, socket.AF_INET6}:
        try:
            request = netlink.build_compat_dump_request(ext, states=states, bytecode=bytecode)
            netlink.run_dump(sock, request, parser.feed)
            return parser.sockets
        except netlink.NetlinkError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP) or parser.sockets or parser.time_wait:
                raise
            # A kernel without the old request (or without the bytecode in it): one dump per family.
    for seq, family in enumerate(families, start=2):
        try:
            request = netlink.build_dump_request(family, ext, seq=seq, states=states, bytecode=bytecode)
            netlink.run_dump(sock, request, parser.feed)
        except netlink.NetlinkError as exc:
            if exc.errno == errno.ENOENT and family != socket.AF_INET:
                continue  # a kernel built without IPv6 has no such sockets to show
            if exc.errno != errno.EINVAL or not bytecode:
                raise
            bytecode = b""
            netlink.run_dump(sock, netlink.build_dump_request(family, ext, seq=seq, states=states), parser.feed)
    return parser.sockets
