"""The probe's data model: one immutable record per TCP socket, as the kernel sees it.

Units are part of the names where a field is a time or a rate (``_us``
microseconds, ``_ms`` milliseconds, ``_bytes_per_s``); every other size is in
bytes unless its doc says segments. ``None`` always means "not known": the
kernel did not report it (older kernel, TIME_WAIT socket) or the fallback
source cannot see it. It never stands for zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from netlens.probe.attributes import Attributes, SocketMemory, decode_attributes
from netlens.probe.fastbuild import fast_builder
from netlens.probe.tcpinfo import TcpInfo

# Kernel TCP state numbers (include/net/tcp_states.h) -> the names ss and
# netstat print. 12 is TCP_NEW_SYN_RECV, the kernel's request-socket form of
# SYN_RECV; ss shows it as SYN_RECV, so do we.
TCP_STATES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",
}

#: The state names a SocketInfo can carry, in the kernel's order.
STATE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(TCP_STATES.values()))

# idiag_timer values -> the names `ss -o` prints in "timer:(NAME,...)".
TIMER_NAMES: dict[int, str] = {
    0: "off",
    1: "on",  # retransmission (also loss probe / reordering) timer
    2: "keepalive",
    3: "timewait",
    4: "persist",  # zero-window probe
}


def state_name(number: int) -> str:
    """Return the ss name of kernel TCP state ``number`` (``UNKNOWN(n)`` for a state this code predates)."""
    return TCP_STATES.get(number) or f"UNKNOWN({number})"


@dataclass(frozen=True, slots=True)
class SocketTimer:
    """The socket's active timer as ``ss -o`` shows it: ``timer:(name,expires,retrans)``."""

    name: str  # "on" (retransmission), "keepalive", "timewait" or "persist" (zero-window probe)
    expires_ms: int  # time left before it fires
    retrans: int  # retransmissions (or probes) already made under this timer

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return {"name": self.name, "expires_ms": self.expires_ms, "retrans": self.retrans}


class ProcessRef(NamedTuple):
    """One process holding the socket open: ``ss -p``'s ``("name",pid=N,fd=N)``.

    ``name`` is the process's ``comm`` and is untrusted text: escape it with
    :func:`netlens.textsafe.safe_str` before showing it.
    """

    pid: int
    name: str
    fd: int | None  # None where the source cannot tell (psutil on some platforms)


@dataclass(frozen=True, slots=True)
class SocketInfo:
    """One TCP socket as the kernel reports it (``ss -tanpmio`` in one record).

    ``recv_q``/``send_q`` are exactly ss's Recv-Q/Send-Q: bytes not yet read
    by the application / bytes not yet acknowledged by the peer; on a LISTEN
    socket they are the accept queue (connections waiting for ``accept()``)
    and its limit (the ``listen()`` backlog). ``inode`` is 0 for TIME_WAIT and
    SYN_RECV sockets and for sockets their process has closed (orphans in
    FIN_WAIT/LAST_ACK): no file descriptor holds them. ``owners`` lists every
    process holding the socket, lowest pid first; ``pid``/``process``/``fd``
    are the first of them, or ``None``.

    ``attributes`` is the kernel's raw attribute block for the socket
    (TCP_INFO, memory, congestion algorithm, shutdown). The ``tcp_info``,
    ``memory``, ``congestion`` and ``shutdown`` properties decode it on first
    use and remember the result, so a snapshot of 10,000 sockets does not pay
    for 600,000 TCP_INFO fields nobody looks at. A test builds one with
    ``attributes=encode_attributes(tcp_info=..., memory=...)`` from
    ``tests/support/probe_fixtures.py``.
    """

    state: str
    family: str  # "IPv4" or "IPv6"
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int
    recv_q: int | None = None
    send_q: int | None = None
    inode: int | None = None
    uid: int | None = None
    cookie: int | None = None  # the kernel's unique socket id (a TIME_WAIT socket gets a new one)
    timer: SocketTimer | None = None  # None when no timer runs
    owners: tuple[ProcessRef, ...] = ()
    attributes: bytes = field(default=b"", repr=False)
    # Memo of the decoded attributes: not data, so outside eq/hash/repr.
    _decoded: Attributes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str, int, str, int]:
        """The connection's identity: (family, local addr, local port, remote addr, remote port).

        It stays the same while the socket moves through its states
        (ESTABLISHED -> FIN_WAIT1 -> FIN_WAIT2 -> TIME_WAIT), so a tracker
        sees one connection that changed, not one that closed and one that opened.
        """
        return (self.family, self.local_addr, self.local_port, self.remote_addr, self.remote_port)

    @property
    def pid(self) -> int | None:
        """Pid of the first owning process, or ``None``."""
        return self.owners[0].pid if self.owners else None

    @property
    def process(self) -> str | None:
        """Name (``comm``, untrusted text) of the first owning process, or ``None``."""
        return self.owners[0].name if self.owners else None

    @property
    def fd(self) -> int | None:
        """File descriptor number in the first owning process, or ``None``."""
        return self.owners[0].fd if self.owners else None

    def _attrs(self) -> Attributes:
        decoded = self._decoded
        if decoded is None:
            decoded = decode_attributes(self.attributes)
            # A memo, as functools.cached_property keeps: the record's data
            # never changes, and two threads racing here store equal values.
            object.__setattr__(self, "_decoded", decoded)
        return decoded

    @property
    def tcp_info(self) -> TcpInfo | None:
        """The kernel's TCP_INFO for the socket, or ``None`` (TIME_WAIT, SYN_RECV, psutil fallback)."""
        return self._attrs().tcp_info

    @property
    def memory(self) -> SocketMemory | None:
        """Socket memory (``ss -m``), or ``None`` where the kernel gives none."""
        return self._attrs().memory

    @property
    def congestion(self) -> str | None:
        """Congestion control algorithm name (e.g. ``"cubic"``), or ``None``."""
        return self._attrs().congestion

    @property
    def shutdown(self) -> int | None:
        """Directions this end has shut down (``SHUTDOWN_RD | SHUTDOWN_WR``), or ``None`` if unknown."""
        return self._attrs().shutdown

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: flat fields, ``pid``/``process``/``fd``, nested timer/memory/tcp_info (or null)."""
        attrs = self._attrs()
        return {
            "state": self.state,
            "family": self.family,
            "local_addr": self.local_addr,
            "local_port": self.local_port,
            "remote_addr": self.remote_addr,
            "remote_port": self.remote_port,
            "recv_q": self.recv_q,
            "send_q": self.send_q,
            "inode": self.inode,
            "uid": self.uid,
            "cookie": self.cookie,
            "shutdown": attrs.shutdown,
            "congestion": attrs.congestion,
            "pid": self.pid,
            "process": self.process,
            "fd": self.fd,
            "owners": [{"pid": o.pid, "process": o.name, "fd": o.fd} for o in self.owners],
            "timer": self.timer.to_dict() if self.timer is not None else None,
            "memory": attrs.memory.to_dict() if attrs.memory is not None else None,
            "tcp_info": attrs.tcp_info.to_dict() if attrs.tcp_info is not None else None,
        }


@dataclass(frozen=True, slots=True)
class TcpTotals:
    """The network namespace's TCP socket counts as the kernel keeps them (``/proc/net/sockstat``, ``ss -s``).

    Reading them walks nothing, so they cost the same with 50,000 sockets as
    with none. ``sockets`` is the kernel's "inuse" count over IPv4 and IPv6:
    every TCP socket in its tables (listening, connecting, connected, closing)
    except TIME_WAIT and half-open (SYN_RECV) ones; ``time_wait`` counts the
    TIME_WAIT ones.
    """

    sockets: int
    time_wait: int

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return {"sockets": self.sockets, "time_wait": self.time_wait}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every matching TCP socket at one moment, in the kernel's order.

    ``ts`` is wall-clock ``time.time()`` taken when the kernel was asked, so
    snapshots line up with packet and server-event timestamps. ``source`` is
    ``"sock_diag"`` (the kernel's netlink interface, everything known) or
    ``"psutil"`` (the fallback: no queues, TCP_INFO, memory or timers), and
    ``note`` says in one sentence why the fallback was used (``None`` otherwise).
    ``port`` is the port filter the snapshot was taken with (``None`` for all).

    ``hidden_time_wait`` counts the matching TIME_WAIT sockets left out of
    ``sockets`` (only when the snapshot was asked for a ``time_wait_limit``);
    ``port_counted`` is False when only named connections were looked up
    (:meth:`Prober.snapshot_connections`): the port's other sockets were then
    neither listed nor counted, and what lies elsewhere is unknown (``None``);
    ``totals`` are the namespace's counts (``None`` where unknown), from which
    :attr:`time_wait_elsewhere` and :attr:`sockets_elsewhere` tell what lies
    outside the filter without listing it.
    """

    ts: float
    sockets: tuple[SocketInfo, ...]
    source: str
    note: str | None = None
    port: int | None = None
    hidden_time_wait: int = 0
    totals: TcpTotals | None = None
    port_counted: bool = True
    #: Cookies of the TIME_WAIT sockets counted in ``hidden_time_wait`` where they are known: a connection
    #: shown before whose socket is among them is in TIME_WAIT, not gone (see ConnectionTracker.update).
    hidden_cookies: frozenset[int] = frozenset()

    @property
    def time_wait_elsewhere(self) -> int | None:
        """TIME_WAIT sockets in the namespace not on ``port`` (``None`` without a port or totals)."""
        if self.totals is None or self.port is None or not self.port_counted:
            return None
        here = self.hidden_time_wait + sum(1 for sock in self.sockets if sock.state == "TIME_WAIT")
        return max(0, self.totals.time_wait - here)

    @property
    def sockets_elsewhere(self) -> int | None:
        """Sockets in the namespace not on ``port``, TIME_WAIT and SYN_RECV aside (``None`` without a port or totals).

        The kernel's count and the snapshot are two readings a moment apart,
        so on a busy machine this is close, not exact (never negative).
        """
        if self.totals is None or self.port is None or not self.port_counted:
            return None
        here = sum(1 for sock in self.sockets if sock.state not in ("TIME_WAIT", "SYN_RECV"))
        return max(0, self.totals.sockets - here)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the snapshot and all its sockets."""
        return {
            "ts": self.ts,
            "source": self.source,
            "note": self.note,
            "port": self.port,
            "hidden_time_wait": self.hidden_time_wait,
            "totals": self.totals.to_dict() if self.totals is not None else None,
            "sockets": [sock.to_dict() for sock in self.sockets],
        }


# Hot-path constructors for the parser (see netlens.probe.fastbuild).
build_timer = fast_builder(SocketTimer)
build_socket = fast_builder(SocketInfo)
