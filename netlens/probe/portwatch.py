"""The served port's snapshot, tick after tick, at a cost that does not grow with the namespace's other sockets.

Every dump of connected sockets makes the kernel walk its whole
established-socket table, whatever the port filter, the states mask or the
port fields of the request (measured with 50,000 TIME_WAIT sockets on another
port: 12 ms against 1.8 ms, nearly all of it kernel time, for each of those
forms; ``tests/benchmarks/bench_probe_timewait.py``). Only two requests skip
that walk: a dump of listening sockets (their own small table) and an exact
lookup by 4-tuple. So, per tick, :class:`PortWatch` asks for:

* the port's listeners (a LISTEN-only dump: their accept queues come with them);
* by 4-tuple, at both ends, the connections the port's server knows (those it
  holds, and those it closed since the previous tick), and every connection
  the previous snapshot showed (a socket keeps being followed until its
  lookup misses).

That is exactly the port's sockets unless one arrived that nobody named. It
takes the full port dump (:meth:`Prober.dump_port`) instead when:

* it has none yet, or the port changed (``first``);
* a listener's accept queue is not empty (``queue``): connections the server
  has not accepted, whose 4-tuples only a dump can tell (they show at once);
* the namespace's ``TCPSynRetrans`` counter moved (``syn-retrans``): a SYN-ACK
  went out again, so a half-open (SYN_RECV) connection outlived its first
  second (it shows within a tick or two of that);
* the server closed more connections since the previous tick than a tick
  looks up (``closes``, 200): a flood, whose closes the server no longer all
  remembers;
* ``full_every`` seconds passed (``period``): anything else no one named (a
  connection from this host to the same port elsewhere, a SYN_RECV gone within
  a second).

It shows ``time_wait_limit`` TIME_WAIT sockets: those it showed before, as
long as their timers run (a row swapped out would read, in the table, as a
socket the kernel closed), then the newest. Those it does not show are
counted without listing them: those of the last full dump and those the
lookups found since (each once, by cookie), until their timers run out. The snapshot has the shape and
meaning of ``Prober.snapshot(port, time_wait_limit=N)``; between full dumps,
that count still holds a TIME_WAIT socket the kernel ended early (a new SYN on
its 4-tuple, an RST) until its timer would have run out.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Protocol

from netlens.probe import netlink
from netlens.probe.lookups import Pair, both_ends, look_up, pair_of
from netlens.probe.model import Snapshot, SocketInfo
from netlens.probe.processes import Owners
from netlens.probe.snapshot import Prober, attach_owners
from netlens.probe.sockdiag import TimeWaitSeen, dump_tcp
from netlens.probe.sockstat import read_tcp_counter, read_tcp_totals

#: Seconds between two full dumps of the port when nothing asked for one sooner.
FULL_EVERY = 30.0
#: Connections closed since the previous tick that a tick looks up; more, and it dumps instead (the
#: server remembers its newest 256 closes).
CLOSED_LOOKUPS = 200
#: Seconds the closes a tick asks for reach back before the previous tick asked: the server stamps a close a
#: moment before it files it, so a close filed just after a tick asked is not lost to the next one.
CLOSE_OVERLAP = 0.25
#: Seconds a tick by lookups trusts the owning processes the last ``/proc`` scan found, while no socket it
#: cannot place appears: the scan (one listdir per process on the machine, ~2 ms) costs more than the lookups.
OWNERS_TRUSTED = 5.0


class ServerPairs(Protocol):
    """What the port's server knows of its connections, each as its own end sees it: ``(local, peer)``."""

    def open_pairs(self) -> Sequence[Pair]:
        """The connections it holds."""
        ...

    def closed_pairs(self, within: float, limit: int) -> Sequence[Pair]:
        """The newest ``limit`` (at most) of those it closed in the last ``within`` seconds."""
        ...


class PortWatch:
    """Snapshots of one port for a poller (the UI's probe worker): exact lookups per tick, a full dump when needed.

    ``prober`` makes the full dumps (and owns the ``/proc`` owner cache);
    ``time_wait_limit`` is as for :meth:`Prober.snapshot`; ``clock``
    (monotonic seconds) paces the full dumps. ``full_dumps`` and ``lookups``
    count the snapshots of each kind, and ``last_reason`` says why the
    newest full dump was taken (``None`` when the newest snapshot was lookups).
    Not thread-safe: one per poller.
    """

    def __init__(self, prober: Prober | None = None, time_wait_limit: int = 100, full_every: float = FULL_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.prober = prober or Prober()
        self.time_wait_limit = time_wait_limit
        self.full_every = full_every
        self.clock = clock
        self.full_dumps = 0
        self.lookups = 0
        self.last_reason: str | None = None
        self._port: int | None = None
        self._full_at = 0.0  # clock() of the last full dump
        self._asked_wall = 0.0  # time.time() (the server's clock) when the closes were last asked for, or dumped
        self._syn_retrans: int | None = None
        self._followed: dict[Pair, None] = {}  # 4-tuples the newest snapshot found, as their sockets see them
        # Every TIME_WAIT socket of the port counted (shown or not), as a heap of (timer's end in
        # time.monotonic, cookie), and their cookies: a socket found again is not counted twice.
        self._time_wait: list[tuple[float, int]] = []
        self._time_wait_cookies: set[int] = set()
        # Cookies of the TIME_WAIT sockets the newest snapshot showed: they stay shown until their timers run
        # out (the table keeps its TIME_WAIT rows; one displaced here would read as a socket the kernel closed).
        self._time_wait_shown: set[int] = set()
        self._owners: Owners = {}  # inode -> owners, as the last /proc scan placed them...
        self._owners_at = -OWNERS_TRUSTED  # ...at this clock()

    def snapshot(self, port: int, server: ServerPairs) -> Snapshot:
        """The sockets on ``port`` (listeners, connections at both ends, the newest TIME_WAIT ones).

        ``server`` tells what the port's server knows (asked only on ticks
        that look up: its closed connections first, then, unless there are
        too many to look up, those it holds). Falls back to what
        :meth:`Prober.snapshot` does (psutil included) where sock_diag fails.
        """
        if not self.prober.wants_sock_diag():  # psutil, as asked: it has no lookups
            self._port = None
            return self.prober.snapshot(port, time_wait_limit=self.time_wait_limit)
        syn_retrans = read_tcp_counter("TCPSynRetrans")
        reason = self._due(port, syn_retrans)
        self._syn_retrans = syn_retrans
        if reason is None:
            try:
                quick = self._look_up(port, server)
            except OSError:
                quick = None  # the full path says why, or falls back to psutil
            if isinstance(quick, Snapshot):
                self.lookups += 1
                self.last_reason = None
                return quick
            reason = quick or "sock_diag"
        return self._full(port, reason)

    def _due(self, port: int, syn_retrans: int | None) -> str | None:
        """Why a full dump is due before looking anything up, or None."""
        if port != self._port or self.full_dumps == 0:
            return "first"
        if self.clock() - self._full_at >= self.full_every:
            return "period"
        if syn_retrans != self._syn_retrans:
            return "syn-retrans"
        return None

    def _look_up(self, port: int, server: ServerPairs) -> Snapshot | str:
        """The tick's snapshot by lookups, or the reason it cannot be complete (then nothing was built)."""
        sock = netlink.open_sock_diag()
        try:
            ts = time.time()
            listeners = dump_tcp(sock, port=port, states=netlink.LISTEN_ONLY)
            if any((listener.recv_q or 0) > 0 for listener in listeners):
                return "queue"
            asked = time.time()
            closed = server.closed_pairs(max(0.0, asked - self._asked_wall) + CLOSE_OVERLAP, CLOSED_LOOKUPS + 1)
            if len(closed) > CLOSED_LOOKUPS:
                return "closes"
            self._asked_wall = asked
            # Both ends of each connection side by side: read at one moment, they never disagree.
            found = look_up(sock, port, both_ends(chain(self._followed, server.open_pairs(), closed)))
        finally:
            sock.close()
        connected: list[SocketInfo] = []
        waiting: list[SocketInfo] = []
        seen: set[int | None] = set()
        for sock_info in found:
            if sock_info.cookie not in seen:  # two 4-tuples asked may name one socket
                seen.add(sock_info.cookie)
                (waiting if sock_info.state == "TIME_WAIT" else connected).append(sock_info)
        # The TIME_WAIT sockets to show are among those found: the previous tick's, and those of the
        # connections closed since (each looked up once: only those shown are followed after).
        shown = self._keep_shown(waiting)
        counted = self._count_time_wait((_time_left(sock_info) for sock_info in waiting), reset=False)
        sockets = listeners + connected + shown
        self._followed = dict.fromkeys(pair_of(sock_info) for sock_info in connected + shown)
        self._place_owners(sockets)
        return Snapshot(ts=ts, sockets=tuple(sockets), source="sock_diag", port=port,
                        hidden_time_wait=max(0, counted - len(shown)), totals=read_tcp_totals(),
                        hidden_cookies=self._hidden_cookies())

    def _count_time_wait(self, found: Iterable[tuple[int, int]], reset: bool) -> int:
        """Count the TIME_WAIT sockets ``found`` (``(ms left, cookie)``) with those counted before; return how many
        still run their timer. ``reset``: forget those counted before (a full dump has seen them all)."""
        now = time.monotonic()
        if reset:  # thousands under a flood: one heapify, not a push each
            self._time_wait = [(now + expires_ms / 1000, cookie) for expires_ms, cookie in found]
            heapq.heapify(self._time_wait)
            self._time_wait_cookies = {cookie for _, cookie in self._time_wait}
        heap, cookies = self._time_wait, self._time_wait_cookies
        for expires_ms, cookie in () if reset else found:
            if cookie not in cookies:
                cookies.add(cookie)
                heapq.heappush(heap, (now + expires_ms / 1000, cookie))
        while heap and heap[0][0] <= now:
            cookies.discard(heapq.heappop(heap)[1])
        return len(heap)

    def _place_owners(self, sockets: list[SocketInfo]) -> None:
        """Owners from the last scan while it is recent and places every socket; else a scan (the prober's cache)."""
        inodes = {sock.inode for sock in sockets if sock.inode}
        if self.clock() - self._owners_at < OWNERS_TRUSTED and inodes <= self._owners.keys():
            attach_owners(sockets, self._owners)
            return
        self.prober.place_owners(sockets)
        self._remember_owners(sockets)

    def _remember_owners(self, sockets: Iterable[SocketInfo]) -> None:
        # An inode no process holds (another namespace's process, one we may not inspect) is remembered
        # as such: it must not make every tick scan.
        self._owners = {sock.inode: sock.owners for sock in sockets if sock.inode}
        self._owners_at = self.clock()

    def _full(self, port: int, reason: str) -> Snapshot:
        """The full port dump; it also resets what the next ticks follow and count."""
        self._port = port
        self._full_at = self.clock()
        self._asked_wall = time.time()
        self.full_dumps += 1
        self.last_reason = reason
        try:
            snapshot, time_wait = self.prober.dump_port(port, time_wait_limit=self.time_wait_limit,
                                                        time_wait_keep=self._time_wait_shown)
        except OSError:
            # No sock_diag: the prober's own choice (psutil, with a note), and no lookups next time either.
            self._port = None
            return self.prober.snapshot(port, time_wait_limit=self.time_wait_limit)
        snapshot = self._cap_time_wait(snapshot)
        self._remember(snapshot, time_wait)
        return dataclasses.replace(snapshot, hidden_cookies=self._hidden_cookies())

    def _cap_time_wait(self, snapshot: Snapshot) -> Snapshot:
        """The dump with the TIME_WAIT sockets a tick by lookups would show (see :meth:`_keep_shown`)."""
        waiting = [sock for sock in snapshot.sockets if sock.state == "TIME_WAIT"]
        shown = {id(sock) for sock in self._keep_shown(waiting)}
        if len(shown) == len(waiting):
            return snapshot
        sockets = tuple(sock for sock in snapshot.sockets if sock.state != "TIME_WAIT" or id(sock) in shown)
        return dataclasses.replace(snapshot, sockets=sockets,
                                   hidden_time_wait=snapshot.hidden_time_wait + len(waiting) - len(shown))

    def _keep_shown(self, waiting: list[SocketInfo]) -> list[SocketInfo]:
        """The TIME_WAIT sockets to show: those shown before first, then the newest, ``time_wait_limit`` in all."""
        before = self._time_wait_shown
        kept = [sock for sock in waiting if sock.cookie in before][:self.time_wait_limit]
        others = (sock for sock in waiting if sock.cookie not in before)
        shown = kept + heapq.nlargest(self.time_wait_limit - len(kept), others, key=_time_left)
        self._time_wait_shown = {sock.cookie for sock in shown if sock.cookie is not None}
        return shown

    def _hidden_cookies(self) -> frozenset[int]:
        """The counted TIME_WAIT sockets (timers running) that the snapshot does not show."""
        return frozenset(self._time_wait_cookies - self._time_wait_shown)

    def _remember(self, snapshot: Snapshot, time_wait: list[TimeWaitSeen]) -> None:
        self._followed = dict.fromkeys(pair_of(s) for s in snapshot.sockets if s.state != "LISTEN")
        self._remember_owners(snapshot.sockets)
        self._count_time_wait(((expires_ms, cookie) for expires_ms, cookie, *_ in time_wait), reset=True)


def _time_left(sock: SocketInfo) -> tuple[int, int]:
    """Milliseconds left on a TIME_WAIT socket's timer (the newest have the most), then its cookie (as the dump)."""
    return (sock.timer.expires_ms if sock.timer is not None else 0, sock.cookie or 0)

