"""Everything a lab run recorded, on one wall clock, with the queries checks need.

Packets come from the lab's own capture (numbered as in ``--write``'s pcap),
server events from the server's bus, kernel snapshots from sock_diag polled
during the run, trace events from the kernel-trace engine (when it runs),
counters from ``/proc/net/{netstat,snmp}`` of the lab's namespace before and
after, and marks from the steps themselves (``ctx.mark("nodelay")``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from netlens.capture import PacketRing, PacketSummary
from netlens.probe import Snapshot, SocketInfo
from netlens.server import SocketEvent

PacketTest = Callable[[PacketSummary], bool]


@dataclass
class Evidence:
    """The record of one run; checks read it, nothing writes it after the run."""

    packets: list[PacketSummary] = field(default_factory=list)
    ring: PacketRing | None = None
    events: list[SocketEvent] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    trace: list[Any] = field(default_factory=list)
    counters_before: dict[str, int] = field(default_factory=dict)
    counters_after: dict[str, int] = field(default_factory=dict)
    marks: list[tuple[float, str]] = field(default_factory=list)
    #: Snapshots a step took on purpose (``ctx.kernel("label")``), by label.
    labelled: dict[str, Snapshot] = field(default_factory=dict)
    #: Values the steps kept for the checks (an exception a client saw, bytes it read...).
    facts: dict[str, Any] = field(default_factory=dict)
    #: Sentences about what could not be recorded (no trace engine, capture error...).
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ marks

    def mark(self, label: str) -> float:
        """The wall-clock time of the step mark ``label`` (KeyError if the run never reached it)."""
        for ts, name in self.marks:
            if name == label:
                return ts
        raise KeyError(label)

    def reached(self, label: str) -> bool:
        """True when the run reached the mark ``label``."""
        return any(name == label for _, name in self.marks)

    # ---------------------------------------------------------------- packets

    def tcp(self, start: float | None = None, end: float | None = None) -> list[PacketSummary]:
        """TCP packets, optionally only those captured in ``[start, end)`` (wall clock)."""
        return [p for p in self.packets if p.proto == "TCP"
                and (start is None or p.time >= start) and (end is None or p.time < end)]

    def between(self, first_mark: str, last_mark: str | None = None) -> list[PacketSummary]:
        """TCP packets captured from mark ``first_mark`` up to ``last_mark`` (or the end)."""
        if not self.reached(first_mark) or (last_mark is not None and not self.reached(last_mark)):
            return []
        end = self.mark(last_mark) if last_mark is not None else None
        return self.tcp(self.mark(first_mark), end)

    def find(self, test: PacketTest, packets: Iterable[PacketSummary] | None = None) -> PacketSummary | None:
        """The first packet that passes ``test``."""
        return next((p for p in (self.tcp() if packets is None else packets) if test(p)), None)

    def all(self, test: PacketTest, packets: Iterable[PacketSummary] | None = None) -> list[PacketSummary]:
        """Every packet that passes ``test``."""
        return [p for p in (self.tcp() if packets is None else packets) if test(p)]

    def tcp_options(self, no: int) -> list[str]:
        """Names of the TCP options of packet ``no`` (``MSS``, ``SACK_PERM``, ``WS``, ``TS``...)."""
        if self.ring is None:
            return []
        return tcp_option_names(self.ring.frame(no))

    def mss_option(self, no: int) -> int | None:
        """The MSS option's value in packet ``no`` (a SYN), or None."""
        if self.ring is None:
            return None
        value = dict(tcp_options(self.ring.frame(no))).get("MSS", b"")
        return int.from_bytes(value, "big") if len(value) == 2 else None

    # -------------------------------------------------------------- kernel state

    def sockets(self, test: Callable[[SocketInfo], bool]) -> Iterator[tuple[float, SocketInfo]]:
        """Every (snapshot time, socket) that passes ``test``, oldest first."""
        for snap in self.snapshots:
            for sock in snap.sockets:
                if test(sock):
                    yield snap.ts, sock

    def snapshot(self, label: str) -> Snapshot | None:
        """The snapshot a step took as ``ctx.kernel(label)`` (None if the run never took it)."""
        return self.labelled.get(label)

    def counter(self, name: str) -> int:
        """How much the kernel counter ``name`` (``TcpExtDelayedACKs``...) rose during the run."""
        return self.counters_after.get(name, 0) - self.counters_before.get(name, 0)

    # ----------------------------------------------------------- server, trace

    def server_events(self, kind: str) -> list[tuple[int, SocketEvent]]:
        """``(event number, event)`` of each server event of ``kind`` (``recv``, ``closed``...)."""
        return [(no, ev) for no, ev in enumerate(self.events, 1) if ev.kind == kind]

    def trace_events(self, kind: str, **fields: Any) -> list[tuple[int, Any]]:
        """``(number, record)`` of each kernel-trace event of ``kind`` whose attributes match ``fields``."""
        found = []
        for no, record in enumerate(self.trace, 1):
            if getattr(record, "event", None) != kind:
                continue
            if all(getattr(record, key, None) == value for key, value in fields.items()):
                found.append((no, record))
        return found

    def states(self, local_port: int | None, remote_port: int | None = None) -> list[tuple[int, Any]]:
        """The kernel's state changes of the socket bound to ``local_port`` (and ``remote_port``), in order.

        The trace engine numbers each socket (``sock``): that joins the client's first
        change (reported before its port is bound) to the rest.
        """
        changes = self.trace_events("state")
        socks = {e.sock for _, e in changes if e.sport == local_port
                 and (remote_port is None or e.dport == remote_port) and e.sock}
        return [(no, e) for no, e in changes if e.sock in socks]

    def state_path(self, local_port: int | None, remote_port: int | None = None) -> list[str]:
        """``["CLOSE", "SYN_SENT", "ESTABLISHED", ...]``: the states that socket went through."""
        path: list[str] = []
        for _, event in self.states(local_port, remote_port):
            if not path:
                path.append(event.old)
            path.append(event.new)
        return path


# TCP option kinds worth naming in a lesson.
_OPTION_NAMES = {2: "MSS", 3: "WS", 4: "SACK_PERM", 5: "SACK", 8: "TS", 30: "MPTCP", 34: "TFO"}


def tcp_option_names(frame: bytes) -> list[str]:
    """Option names of the TCP header inside an Ethernet frame (IPv4 or IPv6); [] if not TCP."""
    return [name for name, _ in tcp_options(frame)]


def tcp_options(frame: bytes) -> list[tuple[str, bytes]]:
    """``(name, value bytes)`` of each TCP option inside an Ethernet frame (IPv4 or IPv6); [] if not TCP."""
    if len(frame) < 14:
        return []
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == 0x0800 and len(frame) >= 34 and frame[23] == 6:
        tcp_at = 14 + (frame[14] & 0x0F) * 4
    elif ethertype == 0x86DD and len(frame) >= 54 and frame[20] == 6:
        tcp_at = 54
    else:
        return []
    if len(frame) < tcp_at + 20:
        return []
    end = min(len(frame), tcp_at + (frame[tcp_at + 12] >> 4) * 4)
    found: list[tuple[str, bytes]] = []
    at = tcp_at + 20
    while at < end:
        kind = frame[at]
        if kind == 0:
            break
        if kind == 1:
            at += 1
            continue
        if at + 1 >= end or frame[at + 1] < 2:
            break
        size = frame[at + 1]
        found.append((_OPTION_NAMES.get(kind, f"option {kind}"), frame[at + 2: min(at + size, end)]))
        at += size
    return found
