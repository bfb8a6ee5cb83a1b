"""Typed kernel trace events, on the wall clock packets use.

The reader thread publishes plain tuples (records) and the dataclasses are
built only for what a reader shows, as in :mod:`netlens.server.bus`. A
record is::

    (kind, ts_ns, cpu, sock, cookie, family, saddr, sport, daddr, dport, *detail)

``ts_ns`` is CLOCK_REALTIME in nanoseconds (the clock of packet timestamps);
``sock`` is netlens's number for one kernel socket's lifetime (0: no socket,
e.g. a reset sent for a port nobody listens on); ``cookie`` the socket's
``SO_COOKIE`` when known (None until an event or sock_diag reveals it);
``saddr``/``daddr`` packed addresses (``b""`` when the event has none);
``src`` is always the end the event is about (the socket's local end; for a
reset sent, the sender). ``detail`` depends on the kind (see ``DETAIL``).
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass, fields
from typing import Any, ClassVar

#: ``(kind, ts_ns, cpu, sock, cookie, family, saddr, sport, daddr, dport, *detail)``.
TraceRecord = tuple[Any, ...]

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6


class Kind(enum.IntEnum):
    """What happened; ``label`` is the name ``netlens trace --json`` prints."""

    STATE = 0
    RETRANSMIT = 1
    RETRANSMIT_SYNACK = 2
    RESET_SENT = 3
    RESET_RECEIVED = 4
    PROBE = 5
    CONG_STATE = 6
    DESTROY = 7
    RCV_SPACE = 8
    DROP = 9

    @property
    def label(self) -> str:
        """``state``, ``retransmit``, ``reset-sent``... (the JSON ``event`` field)."""
        return KIND_LABELS[self]


KIND_LABELS = ("state", "retransmit", "retransmit-synack", "reset-sent", "reset-received",
               "probe", "cong-state", "destroy", "rcv-space", "drop")
KINDS_BY_LABEL = {label: Kind(code) for code, label in enumerate(KIND_LABELS)}

# TCP states (include/net/tcp_states.h, part of the user ABI through sock_diag),
# without the TCP_ prefix: index = the kernel's number. Used when a format file
# names states by C identifier instead of number.
TCP_STATES = ("UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
              "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV")
# Congestion-avoidance states (TCP_CA_* in include/uapi/linux/tcp.h).
CA_STATES = ("Open", "Disorder", "CWR", "Recovery", "Loss")
# skb->protocol values (host order in the kfree_skb record) of the two IP versions.
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD

#: The detail fields of each kind, in record order after ``dport``.
DETAIL: dict[Kind, tuple[str, ...]] = {
    Kind.STATE: ("old", "new"),
    Kind.RETRANSMIT: ("state", "err"),
    Kind.RETRANSMIT_SYNACK: (),
    Kind.RESET_SENT: ("state", "reason"),
    Kind.RESET_RECEIVED: ("reason",),
    Kind.PROBE: ("cwnd", "ssthresh", "srtt_us", "snd_wnd", "rcv_wnd", "data_len", "snd_nxt", "snd_una"),
    Kind.CONG_STATE: ("state",),
    Kind.DESTROY: (),
    Kind.RCV_SPACE: (),
    Kind.DROP: ("reason",),
}


def address_text(family: int, packed: bytes) -> str:
    """``127.0.0.1`` / ``::1`` for a packed address; ``""`` when the event carried none."""
    if not packed:
        return ""
    try:
        return socket.inet_ntop(family, packed)
    except (OSError, ValueError):
        return packed.hex()


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """What every kernel event has: when, on which CPU, which socket and its two ends."""

    kind: ClassVar[Kind]
    ts_ns: int  # CLOCK_REALTIME, nanoseconds
    cpu: int
    sock: int  # netlens's number for this socket's lifetime; 0 = no socket
    cookie: int | None
    family: int
    src: str
    sport: int
    dst: str
    dport: int

    @property
    def time(self) -> float:
        """Epoch seconds (``time.time()`` scale), as packets and server events carry them."""
        return self.ts_ns / 1e9

    @property
    def event(self) -> str:
        """The JSON name of this event's kind."""
        return self.kind.label

    @property
    def tuple(self) -> tuple[str, int, str, int]:
        """``(src, sport, dst, dport)``: this end first."""
        return (self.src, self.sport, self.dst, self.dport)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``netlens trace --json`` prints for this event."""
        out: dict[str, Any] = {"time": round(self.ts_ns / 1e9, 9), "event": self.kind.label, "cookie": self.cookie,
                               "sock": self.sock or None, "src": self.src or None, "sport": self.sport,
                               "dst": self.dst or None, "dport": self.dport, "cpu": self.cpu}
        for f in fields(self)[len(fields(TraceEvent)):]:
            out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True, slots=True)
class StateChange(TraceEvent):
    """``sock:inet_sock_set_state``: the TCP state machine moved."""

    kind: ClassVar[Kind] = Kind.STATE
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Retransmit(TraceEvent):
    """``tcp:tcp_retransmit_skb``: a segment was sent again (timer or fast retransmit)."""

    kind: ClassVar[Kind] = Kind.RETRANSMIT
    state: str
    err: int  # the transmit's result: 0 sent, negative errno otherwise


@dataclass(frozen=True, slots=True)
class SynAckRetransmit(TraceEvent):
    """``tcp:tcp_retransmit_synack``: a listener sent its SYN-ACK again (the final ACK did not come)."""

    kind: ClassVar[Kind] = Kind.RETRANSMIT_SYNACK


@dataclass(frozen=True, slots=True)
class ResetSent(TraceEvent):
    """``tcp:tcp_send_reset``: this host sent a RST, and the kernel's reason (NO_SOCKET, TCP_STATE...)."""

    kind: ClassVar[Kind] = Kind.RESET_SENT
    state: str  # the sender's state; UNKNOWN when no socket sent it
    reason: str | None


@dataclass(frozen=True, slots=True)
class ResetReceived(TraceEvent):
    """``tcp:tcp_receive_reset``: a RST arrived; ``reason`` is the sender's when it is on this host."""

    kind: ClassVar[Kind] = Kind.RESET_RECEIVED
    reason: str | None


@dataclass(frozen=True, slots=True)
class Probe(TraceEvent):
    """``tcp:tcp_probe``: the sender's state when a segment arrived on an established socket."""

    kind: ClassVar[Kind] = Kind.PROBE
    cwnd: int
    ssthresh: int
    srtt_us: int
    snd_wnd: int
    rcv_wnd: int
    data_len: int
    snd_nxt: int
    snd_una: int


@dataclass(frozen=True, slots=True)
class CongestionState(TraceEvent):
    """``tcp:tcp_cong_state_set``: Open, Disorder, CWR, Recovery or Loss."""

    kind: ClassVar[Kind] = Kind.CONG_STATE
    state: str


@dataclass(frozen=True, slots=True)
class SocketDestroyed(TraceEvent):
    """``tcp:tcp_destroy_sock``: the kernel freed the socket's TCP state (its cookie is final)."""

    kind: ClassVar[Kind] = Kind.DESTROY


@dataclass(frozen=True, slots=True)
class ReceiveSpace(TraceEvent):
    """``tcp:tcp_rcv_space_adjust``: receive-buffer autotuning ran after the application read."""

    kind: ClassVar[Kind] = Kind.RCV_SPACE


@dataclass(frozen=True, slots=True)
class Drop(TraceEvent):
    """``skb:kfree_skb``: the kernel dropped a packet, and why (TCP_OLD_DATA, NETFILTER_DROP...)."""

    kind: ClassVar[Kind] = Kind.DROP
    reason: str


EVENT_TYPES: tuple[type[TraceEvent], ...] = (StateChange, Retransmit, SynAckRetransmit, ResetSent, ResetReceived,
                                              Probe, CongestionState, SocketDestroyed, ReceiveSpace, Drop)


def materialize(record: TraceRecord) -> TraceEvent:
    """The frozen event dataclass for one record."""
    kind, ts_ns, cpu, sock, cookie, family, saddr, sport, daddr, dport, *detail = record
    return EVENT_TYPES[kind](ts_ns, cpu, sock, cookie, family, address_text(family, saddr), sport,
                             address_text(family, daddr), dport, *detail)
