"""Take snapshots of the machine's TCP sockets: sock_diag when the kernel allows it, psutil otherwise."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Collection, Iterable

from netlens.errors import UserError
from netlens.probe import netlink
from netlens.probe.lookups import Address, both_ends, look_up, settle_pairs
from netlens.probe.model import Snapshot, SocketInfo
from netlens.probe.processes import Owners, OwnerScanner
from netlens.probe.sockdiag import DumpParser, TimeWaitSeen, dump_tcp, pick_time_wait
from netlens.probe.sockstat import read_tcp_totals

#: Environment variable that picks the source: "auto" (default), "sock_diag" or "psutil".
BACKEND_ENV = "NETLENS_PROBE_BACKEND"
BACKENDS = ("auto", "sock_diag", "psutil")


_FALLBACK_COST = "queues, inodes, TCP_INFO, memory and timers are unknown"


class ProbeError(UserError):
    """No source of socket information worked; the message says why in one sentence."""


def _check_port(port: int | None) -> None:
    if port is not None and not 0 < port <= 0xFFFF:
        raise ProbeError(f"Port {port} is not a TCP port; give a number from 1 to 65535.")


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ProbeError(f"A TIME_WAIT limit of {limit} makes no sense; give 0 or more.")


def attach_owners(sockets: list[SocketInfo], owners: Owners) -> None:
    """Fill in ``owners`` of freshly parsed records.

    The records were built a moment ago by this snapshot and nobody else
    holds them yet, so this is still their construction, done in place
    through the slot's own descriptor as :mod:`netlens.probe.fastbuild` does:
    a second, rebuilt copy of 10,000 records would cost more than the dump.
    """
    if not owners:
        return
    get = owners.get
    set_owners = _OWNERS_SLOT.__set__
    for sock in sockets:
        refs = get(sock.inode) if sock.inode else None
        if refs:
            set_owners(sock, refs)


_OWNERS_SLOT = SocketInfo.__dict__["owners"]


class Prober:
    """Takes snapshots and keeps what makes the next one cheaper (the process-scan cache).

    One per consumer that polls (the UI's worker, ``conns --watch``); safe to
    share between threads (a lock serialises snapshots). ``backend`` is as for
    :func:`take_snapshot`; ``owner_refresh`` bounds, in seconds, how long the
    owner cache may trust itself before a full ``/proc`` scan.
    """

    def __init__(self, backend: str | None = None, owner_refresh: float = 10.0) -> None:
        self.backend = backend
        self.scanner = OwnerScanner(full_every=owner_refresh)
        self._lock = threading.Lock()

    def snapshot(
        self,
        port: int | None = None,
        processes: bool = True,
        backend: str | None = None,
        *,
        time_wait_limit: int | None = None,
        time_wait_keep: Collection[int] = (),
    ) -> Snapshot:
        """Return every TCP socket (IPv4 and IPv6) with ``port`` at either end, or all of them when ``port`` is None.

        ``processes`` maps sockets to their owning processes (``ss -p``).
        ``backend`` overrides the prober's own for this call. Falls back to
        psutil (with ``note`` saying why) when sock_diag is unavailable and
        the backend is "auto".

        ``time_wait_limit`` (default: no limit) keeps only that many TIME_WAIT
        sockets, the newest (most time left on their timer), plus those whose
        ``cookie`` is in ``time_wait_keep`` (the ones already on screen); the
        snapshot's ``hidden_time_wait`` counts the others, which are never
        built into records, so their number costs next to nothing. Every socket
        in another state is always there. (The psutil fallback knows no timers
        or cookies: it keeps the first ``time_wait_limit`` it sees.)
        """
        _check_port(port)
        _check_limit(time_wait_limit)
        chosen = backend or self.backend
        choice = chosen or os.environ.get(BACKEND_ENV) or "auto"
        if choice not in BACKENDS:
            raise ProbeError(f"Unknown probe backend {choice!r}; use one of {', '.join(BACKENDS)}.")
        if choice == "psutil":
            who = "the caller" if chosen else f"{BACKEND_ENV}=psutil"
            note = f"{who} chose the psutil fallback, so {_FALLBACK_COST}."
            return psutil_snapshot(port, processes, note, time_wait_limit)
        if choice == "auto" and not sys.platform.startswith("linux"):
            note = f"sock_diag exists only on Linux, so netlens used psutil and {_FALLBACK_COST}."
            return psutil_snapshot(port, processes, note, time_wait_limit)
        try:
            return self._sock_diag(port, processes, time_wait_limit, time_wait_keep)
        except OSError as exc:
            if choice == "sock_diag":
                raise
            reason = exc.strerror or str(exc)
            note = (
                f"The kernel refused its sock_diag netlink interface ({reason}), "
                f"so netlens used psutil and {_FALLBACK_COST}."
            )
            return psutil_snapshot(port, processes, note, time_wait_limit)

    def wants_sock_diag(self) -> bool:
        """True when :meth:`snapshot` tries sock_diag first: the backend (else ``$NETLENS_PROBE_BACKEND``) is
        "sock_diag", or "auto" on Linux."""
        choice = self.backend or os.environ.get(BACKEND_ENV) or "auto"
        return choice == "sock_diag" or (choice == "auto" and sys.platform.startswith("linux"))

    def _sock_diag(
        self, port: int | None, processes: bool, time_wait_limit: int | None, time_wait_keep: Collection[int]
    ) -> Snapshot:
        return self.dump_port(port, processes, time_wait_limit, time_wait_keep)[0]

    def dump_port(
        self, port: int | None, processes: bool = True, time_wait_limit: int | None = None,
        time_wait_keep: Collection[int] = (),
    ) -> tuple[Snapshot, list[TimeWaitSeen]]:
        """:meth:`snapshot` through sock_diag only, with every TIME_WAIT socket seen (shown or not) beside it.

        The second item is empty without a ``time_wait_limit`` (then every
        TIME_WAIT socket is in the snapshot). ``OSError`` where the kernel
        refuses sock_diag.
        """
        # The garbage collector is left alone: its policy belongs to the process
        # (the TUI sets its own), not to a library's worker thread.
        parser = DumpParser(port, light_time_wait=time_wait_limit is not None)
        sock = netlink.open_sock_diag()
        try:
            ts = time.time()
            sockets = dump_tcp(sock, port=port, parser=parser)
            hidden = 0
            if parser.time_wait is not None:
                shown = pick_time_wait(parser.time_wait, time_wait_limit or 0, time_wait_keep)
                hidden = len(parser.time_wait) - len(shown)
                sockets += shown
            sockets = settle_pairs(sock, port, sockets)
        finally:
            sock.close()
        totals = read_tcp_totals()
        if processes:
            self.place_owners(sockets)
        snapshot = Snapshot(
            ts=ts, sockets=tuple(sockets), source="sock_diag", note=None, port=port,
            hidden_time_wait=hidden, totals=totals,
        )  # fmt: skip
        return snapshot, parser.time_wait or []

    def place_owners(self, sockets: list[SocketInfo]) -> None:
        """Attach their owning processes to freshly parsed ``sockets`` (records nobody else holds yet)."""
        # After the dump, so the scan knows which inodes to place (and
        # can tell when its cache cannot).
        with self._lock:
            owners = self.scanner.owners(s.inode for s in sockets)
        attach_owners(sockets, owners)

    def snapshot_connections(
        self, port: int, connections: Iterable[tuple[Address, Address]], processes: bool = True
    ) -> Snapshot:
        """The port's listeners and the ``connections`` named, found without walking the kernel's socket table.

        ``connections`` are ``(local, remote)`` address pairs the caller knows
        (a server: those it accepted, and those it closed lately, which may
        sit in TIME_WAIT). Each is looked up by its 4-tuple at both ends (the
        remote end exists when the peer is on this host), so the cost follows
        the pairs asked for, not the sockets in the namespace: every dump of
        connected sockets walks all of them, TIME_WAIT elsewhere included,
        whatever its filter (measured in ``tests/benchmarks/bench_probe_timewait.py``).
        A connection the caller does not know (one still in the accept queue,
        a SYN_RECV) is not found; the listener's queue counts it. Nothing is
        counted that was not asked for: ``hidden_time_wait`` is 0 and
        ``port_counted`` False (so nothing is claimed about "elsewhere").
        sock_diag only (``OSError`` where the kernel refuses it).
        """
        _check_port(port)
        pairs = both_ends(connections)
        sock = netlink.open_sock_diag()
        try:
            ts = time.time()
            listeners = dump_tcp(sock, port=port, states=netlink.LISTEN_ONLY)
            sockets = listeners + look_up(sock, port, pairs)
        finally:
            sock.close()
        if processes:
            self.place_owners(sockets)
        return Snapshot(ts=ts, sockets=tuple(sockets), source="sock_diag", port=port, totals=read_tcp_totals(),
                        port_counted=False)


def psutil_snapshot(
    port: int | None = None, processes: bool = True, note: str | None = None, time_wait_limit: int | None = None
) -> Snapshot:
    """Snapshot through psutil (the fallback): no queues, inode, uid, TCP_INFO, memory or timers."""
    import psutil

    from netlens.probe.fallback import psutil_sockets

    _check_port(port)
    ts = time.time()
    try:
        sockets = psutil_sockets(port, processes)
    except (psutil.Error, OSError) as exc:  # AccessDenied on macOS without root, for one
        raise ProbeError(f"Neither sock_diag nor psutil could list the TCP sockets: {exc}.") from exc
    hidden = 0
    if time_wait_limit is not None:
        waiting = [sock for sock in sockets if sock.state == "TIME_WAIT"]
        if len(waiting) > time_wait_limit:
            dropped = {id(sock) for sock in waiting[time_wait_limit:]}
            sockets = [sock for sock in sockets if id(sock) not in dropped]
            hidden = len(dropped)
    return Snapshot(
        ts=ts, sockets=tuple(sockets), source="psutil", note=note, port=port,
        hidden_time_wait=hidden, totals=read_tcp_totals(),
    )  # fmt: skip


_default_prober: Prober | None = None
_default_lock = threading.Lock()


def take_snapshot(
    port: int | None = None,
    processes: bool = True,
    backend: str | None = None,
    *,
    time_wait_limit: int | None = None,
    time_wait_keep: Collection[int] = (),
) -> Snapshot:
    """Return every TCP socket (IPv4 and IPv6) with ``port`` at either end, or all of them when ``port`` is None.

    ``processes`` maps sockets to their owning processes (the ``/proc`` scan,
    the costliest part; a process-wide :class:`Prober` keeps its cache warm
    between calls). ``backend`` is "auto" (sock_diag, falling back to psutil
    when the kernel refuses it), "sock_diag" (no fallback: ``OSError``
    propagates) or "psutil"; ``None`` reads ``$NETLENS_PROBE_BACKEND``,
    defaulting to "auto". A fallback snapshot says why in ``note``.
    ``time_wait_limit`` and ``time_wait_keep`` are as for :meth:`Prober.snapshot`.
    """
    global _default_prober
    with _default_lock:
        if _default_prober is None:
            _default_prober = Prober()
    return _default_prober.snapshot(
        port, processes, backend, time_wait_limit=time_wait_limit, time_wait_keep=time_wait_keep
    )
