"""Per-socket timelines: the states a connection went through, when, and what else the kernel said about it.

:class:`TimelineBook` folds trace events into one :class:`SocketTimeline`
per socket lifetime (keyed by the trace's socket number, indexed by cookie and
by 4-tuple), and folds sock_diag snapshots in to supply what the tracepoints
cannot:

- cookies of sockets whose events carried none yet (joined by 4-tuple);
- TIME_WAIT. The closing side never logs it: its socket goes ``FIN_WAIT2 ->
  CLOSE`` (or ``CLOSING -> CLOSE``) and a timewait mini-socket takes over
  (with the full socket's cookie if one had been generated, else a new one;
  it is matched by cookie, then by 4-tuple). When sock_diag shows that mini-socket, the kernel's
  ``-> CLOSE`` becomes ``-> TIME_WAIT`` in :attr:`SocketTimeline.transitions`,
  timed by the FIN that caused it (the peer's ``-> LAST_ACK`` when the peer is
  traced too, as on loopback), with the timer's expiry; when the mini-socket
  is gone, ``TIME_WAIT -> CLOSE`` follows, at its expiry. An orphaned socket
  (closed before the peer's FIN) hands over already in FIN_WAIT2; sock_diag
  then shows the mini-socket in FIN_WAIT2 until the FIN comes.

The raw kernel transitions stay in :attr:`SocketTimeline.kernel_transitions`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from netlens.trace.events import (
    CongestionState,
    Drop,
    Probe,
    ResetReceived,
    ResetSent,
    Retransmit,
    SocketDestroyed,
    StateChange,
    SynAckRetransmit,
    TraceEvent,
)

Tuple4 = tuple[str, int, str, int]
_HANDOVER_FROM = ("FIN_WAIT1", "FIN_WAIT2", "CLOSING")
_PEER_FIN = ("LAST_ACK", "FIN_WAIT1", "CLOSING")


class SocketTimerLike(Protocol):
    """What :meth:`TimelineBook.fold_sockets` reads of a socket's timer (``netlens.probe.SocketTimer``)."""

    @property
    def name(self) -> str: ...
    @property
    def expires_ms(self) -> int: ...


class SocketLike(Protocol):
    """What :meth:`TimelineBook.fold_sockets` reads of a socket (``netlens.probe.SocketInfo`` has all of it)."""

    @property
    def state(self) -> str: ...
    @property
    def local_addr(self) -> str: ...
    @property
    def local_port(self) -> int: ...
    @property
    def remote_addr(self) -> str: ...
    @property
    def remote_port(self) -> int: ...
    @property
    def cookie(self) -> int | None: ...
    @property
    def timer(self) -> SocketTimerLike | None: ...


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of the TCP state machine."""

    time: float  # epoch seconds
    old: str
    new: str
    source: str = "kernel"  # "kernel" (a tracepoint) or "sock_diag" (folded from a snapshot)
    note: str = ""


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """One ``tcp_probe`` reading, for sparklines."""

    time: float
    cwnd: int
    ssthresh: int
    srtt_us: int
    snd_wnd: int
    rcv_wnd: int


@dataclass(slots=True)
class TimeWait:
    """The timewait mini-socket that took over a closed connection, as sock_diag shows it."""

    cookie: int | None
    state: str  # "TIME_WAIT", or "FIN_WAIT2" while the peer's FIN has not come
    expires: float  # epoch seconds when its timer fires
    since: float | None = None  # when TIME_WAIT began (None while in FIN_WAIT2)
    gone: float | None = None  # when it expired (None while it lives)
    seen_fin_wait2: bool = False


class SocketTimeline:
    """Everything the kernel said about one socket's lifetime."""

    __slots__ = ("cong", "cookie", "destroyed", "drops", "first_seen", "kernel_transitions", "local", "probes",
                 "remote", "resets", "retransmits", "sock", "timewait")

    def __init__(self, sock: int, first_seen: float, probe_history: int = 600) -> None:
        self.sock = sock
        self.cookie: int | None = None
        self.local: tuple[str, int] = ("", 0)
        self.remote: tuple[str, int] = ("", 0)
        self.first_seen = first_seen
        self.kernel_transitions: list[Transition] = []
        self.retransmits: list[tuple[float, str]] = []  # (time, state), SYN-ACK ones as state "SYN_RECV"
        self.resets: list[tuple[float, str, str | None]] = []  # (time, "sent"/"received", reason)
        self.drops: list[tuple[float, str]] = []
        self.cong: list[tuple[float, str]] = []
        self.probes: deque[ProbeSample] = deque(maxlen=probe_history)
        self.destroyed: float | None = None
        self.timewait: TimeWait | None = None

    @property
    def tuple(self) -> Tuple4:
        """``(local address, local port, remote address, remote port)`` as last bound."""
        return (*self.local, *self.remote)

    def _handover(self) -> int | None:
        """Index of the kernel's ``X -> CLOSE`` that a timewait socket took over, if any."""
        for index in range(len(self.kernel_transitions) - 1, -1, -1):
            step = self.kernel_transitions[index]
            if step.new == "CLOSE":
                return index if step.old in _HANDOVER_FROM else None
        return None

    @property
    def transitions(self) -> list[Transition]:
        """The state steps in time order, TIME_WAIT folded in where sock_diag showed it."""
        steps = list(self.kernel_transitions)
        tw, handover = self.timewait, self._handover()
        if tw is None or handover is None:
            return steps
        closed = steps.pop(handover)
        note = f"the kernel logs {closed.old} → CLOSE: a timewait socket took over"
        if tw.since is not None:
            steps.append(Transition(max(tw.since, closed.time), closed.old, "TIME_WAIT", "sock_diag", note))
            if tw.gone is not None:
                steps.append(Transition(tw.gone, "TIME_WAIT", "CLOSE", "sock_diag", "the TIME_WAIT timer expired"))
        elif tw.gone is not None:
            steps.append(Transition(tw.gone, closed.old, "CLOSE", "sock_diag", "the FIN_WAIT2 timer expired"))
        steps.sort(key=lambda step: step.time)
        return steps

    @property
    def states(self) -> list[str]:
        """The states visited, in order (the first one is where tracing found the socket)."""
        steps = self.transitions
        visited = [steps[0].old] if steps else []
        for step in steps:
            if not visited or visited[-1] != step.new:
                visited.append(step.new)
        tw = self.timewait
        waiting = tw is not None and tw.since is None and tw.gone is None and self._handover() is not None
        if waiting and visited[-1:] == ["CLOSE"]:
            visited.pop()  # still in FIN_WAIT2, in a timewait socket: the kernel's CLOSE is not the end yet
        return visited

    @property
    def current(self) -> str | None:
        """The state now (None before the first transition)."""
        visited = self.states
        return visited[-1] if visited else None

    def add(self, event: TraceEvent) -> None:
        """Fold one event of this socket in."""
        if event.cookie is not None:
            self.cookie = event.cookie
        if event.sport and event.src:
            self.local, self.remote = (event.src, event.sport), (event.dst, event.dport)
        when = event.time
        if isinstance(event, StateChange):
            self.kernel_transitions.append(Transition(when, event.old, event.new))
            if len(self.kernel_transitions) > 1 and self.kernel_transitions[-2].time > when:
                self.kernel_transitions.sort(key=lambda step: step.time)  # a late batch from another CPU
        elif isinstance(event, Retransmit):
            self.retransmits.append((when, event.state))
        elif isinstance(event, SynAckRetransmit):
            self.retransmits.append((when, "SYN_RECV"))
        elif isinstance(event, ResetSent):
            self.resets.append((when, "sent", event.reason))
        elif isinstance(event, ResetReceived):
            self.resets.append((when, "received", event.reason))
        elif isinstance(event, Probe):
            self.probes.append(ProbeSample(when, event.cwnd, event.ssthresh, event.srtt_us, event.snd_wnd,
                                           event.rcv_wnd))
        elif isinstance(event, CongestionState):
            self.cong.append((when, event.state))
        elif isinstance(event, Drop):
            self.drops.append((when, event.reason))
        elif isinstance(event, SocketDestroyed):
            self.destroyed = when


class TimelineBook:
    """All socket timelines of a trace session, with the joins the UI needs."""

    def __init__(self, max_timelines: int = 4096) -> None:
        self.max_timelines = max_timelines
        self._by_sock: dict[int, SocketTimeline] = {}
        self._by_cookie: dict[int, int] = {}
        self._by_tuple: dict[Tuple4, int] = {}

    def __len__(self) -> int:
        return len(self._by_sock)

    def timelines(self) -> list[SocketTimeline]:
        """Every timeline, oldest first."""
        return list(self._by_sock.values())

    def get(self, sock: int) -> SocketTimeline | None:
        """The timeline of trace socket number ``sock``."""
        return self._by_sock.get(sock)

    def by_cookie(self, cookie: int) -> SocketTimeline | None:
        """The timeline of the socket with this ``SO_COOKIE`` (server events, sock_diag)."""
        sock = self._by_cookie.get(cookie)
        return self._by_sock.get(sock) if sock is not None else None

    def by_tuple(self, local: str, lport: int, remote: str, rport: int) -> SocketTimeline | None:
        """The latest timeline with this 4-tuple (local end first)."""
        sock = self._by_tuple.get((local, lport, remote, rport))
        return self._by_sock.get(sock) if sock is not None else None

    def bind_cookie(self, cookie: int, local: str, lport: int, remote: str, rport: int) -> SocketTimeline | None:
        """Give the latest cookie-less timeline with this 4-tuple its cookie (e.g. from the server's accept)."""
        found = self.by_cookie(cookie) or self.by_tuple(local, lport, remote, rport)
        if found is not None and found.cookie in (None, cookie):
            found.cookie = cookie
            self._by_cookie[cookie] = found.sock
            return found
        return None

    def add(self, events: Iterable[TraceEvent]) -> set[int]:
        """Fold events in; returns the socket numbers whose timelines changed."""
        changed: set[int] = set()
        for event in events:
            timeline = self._timeline_for(event)
            if timeline is None:
                continue
            timeline.add(event)
            self._index(timeline)
            changed.add(timeline.sock)
        self._prune()
        return changed

    def _timeline_for(self, event: TraceEvent) -> SocketTimeline | None:
        if event.sock:
            found = self._by_sock.get(event.sock)
            if found is None:
                found = self._by_sock[event.sock] = SocketTimeline(event.sock, event.time)
            return found
        # No socket: a reset sent for an unknown port (to the peer: the tuple reversed), a drop or a
        # SYN-ACK retransmission (the connection-to-be: the same tuple).
        if isinstance(event, ResetSent):
            return self.by_tuple(event.dst, event.dport, event.src, event.sport)
        return self.by_tuple(event.src, event.sport, event.dst, event.dport) if event.sport else None

    def _index(self, timeline: SocketTimeline) -> None:
        if timeline.cookie is not None:
            self._by_cookie[timeline.cookie] = timeline.sock
        if timeline.local[1]:
            self._by_tuple[timeline.tuple] = timeline.sock

    def _prune(self) -> None:
        if len(self._by_sock) <= self.max_timelines:
            return
        # Down to 7/8 of the cap at once: sorting every timeline for each new socket
        # was a hot spot of the trace thread under a connection flood.
        excess = len(self._by_sock) - self.max_timelines * 7 // 8
        # Closed ones first (destroyed and not waiting in TIME_WAIT), oldest first.
        order = sorted(self._by_sock.values(), key=lambda t: (t.destroyed is None, t.first_seen))
        for timeline in order[:excess]:
            del self._by_sock[timeline.sock]
            if timeline.cookie is not None and self._by_cookie.get(timeline.cookie) == timeline.sock:
                del self._by_cookie[timeline.cookie]
            if self._by_tuple.get(timeline.tuple) == timeline.sock:
                del self._by_tuple[timeline.tuple]

    def fold_sockets(self, sockets: Iterable[SocketLike], ts: float, complete: bool = True) -> set[int]:
        """Fold a sock_diag snapshot taken at ``ts`` in: cookies by 4-tuple, and timewait sockets.

        ``complete``: the snapshot covers every socket of the traced
        timelines, so a timewait socket missing from it has expired.
        Returns the socket numbers whose timelines changed.
        """
        changed: set[int] = set()
        seen_timewait: set[int] = set()
        for sock in sockets:
            key = (sock.local_addr, sock.local_port, sock.remote_addr, sock.remote_port)
            timer = sock.timer
            # A timewait socket inherits the full socket's cookie when it had one (SO_COOKIE, a probe, sock_diag).
            timeline = (self.by_cookie(sock.cookie) if sock.cookie is not None else None) or self.by_tuple(*key)
            if sock.state == "TIME_WAIT" or (timer is not None and timer.name == "timewait"):
                if timeline is not None and timeline._handover() is not None:
                    self._fold_timewait(timeline, sock, ts)
                    seen_timewait.add(timeline.sock)
                    changed.add(timeline.sock)
            elif timeline is not None and sock.cookie is not None and timeline.destroyed is None:
                if timeline.cookie is None:
                    changed.add(timeline.sock)
                self.bind_cookie(sock.cookie, *key)
        if complete:
            for timeline in self._by_sock.values():
                tw = timeline.timewait
                if tw is not None and tw.gone is None and timeline.sock not in seen_timewait:
                    tw.gone = min(ts, tw.expires)
                    changed.add(timeline.sock)
        return changed

    def _fold_timewait(self, timeline: SocketTimeline, sock: SocketLike, ts: float) -> None:
        expires = ts + (sock.timer.expires_ms / 1000 if sock.timer is not None else 0.0)
        tw = timeline.timewait
        if tw is None:
            tw = timeline.timewait = TimeWait(sock.cookie, sock.state, expires)
        tw.state, tw.expires, tw.cookie = sock.state, expires, sock.cookie
        if sock.state != "TIME_WAIT":
            tw.seen_fin_wait2 = True
            return
        if tw.since is None:
            tw.since = self._time_wait_began(timeline, ts)

    def _time_wait_began(self, timeline: SocketTimeline, ts: float) -> float:
        """When the FIN that started TIME_WAIT arrived: the peer's FIN if traced, else the handover."""
        handover = timeline._handover()
        assert handover is not None
        closed = timeline.kernel_transitions[handover]
        peer = self.by_tuple(*timeline.remote, *timeline.local)
        if peer is not None:
            ours = next((s.time for s in timeline.kernel_transitions if s.new == "FIN_WAIT1"), closed.time)
            fins = [s.time for s in peer.kernel_transitions if s.new in _PEER_FIN and s.time >= ours]
            if fins:
                return max(fins[0], closed.time)
        tw = timeline.timewait
        # Seen waiting in FIN_WAIT2 first: the FIN came between that snapshot and this one.
        return ts if tw is not None and tw.seen_fin_wait2 else closed.time
