"""The kernel's view of TCP sockets: ``ss``, ``netstat`` and ``lsof`` in one model.

Uses the stdlib and psutil only (never textual, scapy, ``netlens.ui`` or
``netlens.capture``); pyroute2 was measured and is too slow for 10,000
sockets a second, so the sock_diag netlink client is hand-written.

Taking snapshots
    ``take_snapshot(port=None, processes=True, backend=None, *, time_wait_limit=None, time_wait_keep=()) -> Snapshot``
        Every TCP socket (IPv4 and IPv6) with ``port`` at either end, or all
        of them. Shares one process-wide :class:`Prober`.
    ``Prober(backend=None, owner_refresh=10.0)``; ``.snapshot(port=None, processes=True, backend=None, *,
    time_wait_limit=None, time_wait_keep=())``
        The same, with its own cache of the ``/proc`` owner scan: give each
        poller (the UI worker) one. ``backend``: "auto" (sock_diag, else
        psutil), "sock_diag", "psutil"; default from ``$NETLENS_PROBE_BACKEND``.
        ``time_wait_limit``: keep only the newest N TIME_WAIT sockets plus those
        whose ``cookie`` is in ``time_wait_keep``; the others are counted in
        ``Snapshot.hidden_time_wait`` and never built (a flood's thousands cost
        next to nothing). The kernel filters by port; the sockets elsewhere are
        counted from ``/proc/net/sockstat`` (``Snapshot.totals``), never listed.
    ``ProbeError`` (a :class:`netlens.errors.UserError`): nothing could list sockets.

Polling one served port (:mod:`netlens.probe.portwatch`)
    ``PortWatch(prober=None, time_wait_limit=100, full_every=30.0, clock=time.monotonic)``;
    ``.snapshot(port, server) -> Snapshot``
        What ``Prober.snapshot(port, time_wait_limit=N)`` gives, at a cost
        that does not grow with the namespace's other sockets: most ticks
        look up by 4-tuple what ``server`` (a ``ServerPairs``: ``open_pairs()``,
        ``closed_pairs(within, limit)``) knows, plus what the previous tick
        found, and dump only the listeners; a full port dump when an accept
        queue is not empty, a SYN-ACK was sent again, the server closed more
        than ``CLOSED_LOOKUPS`` connections since the last one, or every
        ``full_every`` seconds. ``full_dumps``, ``lookups``, ``last_reason``.

The records (frozen, slotted dataclasses; ``None`` means unknown, never 0)
    ``Snapshot``: ``ts`` (``time.time()``), ``sockets``, ``source``
    ("sock_diag" | "psutil"), ``note`` (why the fallback, or None), ``port``,
    ``hidden_time_wait``, ``totals``; properties ``time_wait_elsewhere``,
    ``sockets_elsewhere``; ``to_dict()``.
    ``TcpTotals``: the namespace's ``sockets`` (in use, TIME_WAIT and SYN_RECV
    aside) and ``time_wait`` counts, as ``ss -s`` reads them.
    ``SocketInfo``: ``state`` (LISTEN, SYN_SENT, SYN_RECV, ESTABLISHED,
    FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT, CLOSE),
    ``family`` ("IPv4"/"IPv6"), ``local_addr``, ``local_port``,
    ``remote_addr``, ``remote_port``, ``recv_q``, ``send_q`` (as ss: on
    LISTEN the accept queue and the backlog), ``inode``, ``uid``,
    ``cookie``, ``timer``, ``owners``; properties ``key``, ``pid``,
    ``process``, ``fd``, ``tcp_info``, ``memory``, ``congestion``,
    ``shutdown`` (decoded on first use); ``to_dict()``.
    ``TcpInfo``: ``struct tcp_info`` by its kernel names (``rtt_us``,
    ``rto_us``, ``snd_cwnd``, ``bytes_acked``...; units in the names).
    ``SocketMemory``: ``ss -m`` (``rmem_alloc``, ``rcvbuf``, ... ``drops``).
    ``SocketTimer``: ``ss -o`` (``name``, ``expires_ms``, ``retrans``).
    ``ProcessRef``: ``(pid, name, fd)``; ``name`` is untrusted text.

Following connections
    ``ConnectionTracker(linger=5.0)``; ``.update(snapshot) -> TrackerUpdate``
        ``TrackerUpdate``: ``rows`` (``ConnectionRow``, stable order) and the
        keys ``added``/``changed``/``closed``/``removed`` for a keyed table.
    ``ConnectionRow``: ``key``, ``socket``, ``status`` (``RowStatus``),
    ``changed`` (field names), ``first_seen``, ``last_change``,
    ``closed_at``; ``highlight(now, hold) -> RowStatus``.
    ``CHANGE_FIELDS``: what counts as a change (see :mod:`netlens.probe.tracker`).
"""

from __future__ import annotations

from netlens.probe.attributes import (
    SHUTDOWN_RD,
    SHUTDOWN_WR,
    SocketMemory,
)
from netlens.probe.model import (
    STATE_NAMES,
    ProcessRef,
    Snapshot,
    SocketInfo,
    SocketTimer,
    TcpTotals,
)
from netlens.probe.snapshot import BACKEND_ENV, ProbeError, Prober, take_snapshot
from netlens.probe.tcpinfo import TcpInfo
from netlens.probe.tracker import (
    CHANGE_FIELDS,
    ConnectionRow,
    ConnectionTracker,
    RowStatus,
    TrackerUpdate,
)

__all__ = [
    "BACKEND_ENV",
    "CHANGE_FIELDS",
    "SHUTDOWN_RD",
    "SHUTDOWN_WR",
    "STATE_NAMES",
    "ConnectionRow",
    "ConnectionTracker",
    "ProbeError",
    "Prober",
    "ProcessRef",
    "RowStatus",
    "Snapshot",
    "SocketInfo",
    "SocketMemory",
    "SocketTimer",
    "TcpInfo",
    "TcpTotals",
    "TrackerUpdate",
    "take_snapshot",
]
