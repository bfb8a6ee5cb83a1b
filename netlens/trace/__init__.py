"""The kernel's own account of TCP: state changes, retransmissions, resets with reasons, tcp_probe, drops.

Stdlib only (never textual, scapy, ``netlens.ui``, ``netlens.capture``,
``netlens.probe``). Reads tracepoints through tracefs, with no BPF and no
compiler; needs root (or a tracefs the user may write).

Tracing
    ``TraceSession(trace_filter=None, kinds=None, *, prefix="netlens", capacity=131072, interval=0.05)``
        ``.start()`` mounts tracefs at /sys/kernel/tracing if it is absent,
        removes instances left by dead netlens processes, creates a private
        instance ``instances/<prefix>-<pid>`` (its own buffer, clock, events
        and kernel-side filters) and starts a reader thread; raises
        :class:`TraceUnavailable` (a ``UserError``, exit code 2) with one
        sentence saying what is missing (root, tracefs) and how to get it.
        ``.stop()`` (idempotent, also run at exit) delivers what was read and
        removes the instance. Signals are the caller's: the CLI turns
        SIGTERM into a clean stop; a killed process's instance is removed by
        the next start.
    ``.drain_records(limit=None) -> list[TraceRecord]`` / ``.drain(limit=None) -> list[TraceEvent]``
        Everything since the last drain, oldest first: the feed a UI drains
        on its timer (never one message per event). Records are plain tuples
        (see :mod:`netlens.trace.events`); ``materialize(record)`` builds the
        dataclass only for what is shown. ``.wait(timeout)`` blocks until
        something is waiting.
    ``decode_newest=N`` decodes only the newest N records of each reading
        cycle: the older bulk of a flood is only noted in the socket directory
        (numbers, cookies, ends; resets, retransmissions and drops are always
        decoded) and counted in ``stats.skipped``, for a consumer that keeps
        only the newest anyway (the sampled helper below).
    ``.stats -> TraceStats``: ``events``, ``delivered``, ``filtered``,
        ``dropped`` (the consumer fell ``capacity`` behind), ``kernel_lost``
        (overwritten in the kernel's buffer), ``lost``, ``skipped`` (only
        noted, see ``decode_newest``); ``.error`` (why the
        reader stopped, or None), ``.missing`` (tracepoints this kernel
        lacks), ``.unfiltered`` (kernel filters refused), ``.path``,
        ``.clock`` (``tai``, exact; ``mono`` on kernels before 5.19, approximate).
    ``netlens.trace.process.TraceProcess(...)`` (same arguments, same
        consuming side): the session in a helper process (``python -m
        netlens.trace.worker``), so reading and decoding take none of the
        caller's GIL; a thread here only unpickles record batches into a
        bounded buffer. ``start()`` raises the same :class:`TraceUnavailable`
        sentences; the instance (named after the helper's pid) is removed on
        ``stop()``, on SIGTERM/SIGHUP to the helper, and when the caller dies
        (the helper reads EOF on its socket). ``sampling=Sampling(newest,
        probes_per_socket, every)`` (:mod:`netlens.trace.sample`) makes the
        helper send, per ``every`` seconds, only the newest records with
        tcp_probe thinned per socket, counting the rest in ``.skipped`` and
        ``.probes_skipped``; its session then decodes only the ``newest``
        of each cycle (``decode_newest``). The app's live feed uses it; the ``netlens
        trace`` command and labs keep the in-process session.
    ``TraceFilter.of(ports=(), addresses=(), cookies=())``: what to keep
        (empty: every TCP socket). Applied in the kernel where an event's
        fields allow, then in user space on every event; a socket that
        matched once keeps all its events (its first ``SYN_SENT`` has port 0).
    ``Kind``: ``STATE``, ``RETRANSMIT``, ``RETRANSMIT_SYNACK``,
        ``RESET_SENT``, ``RESET_RECEIVED``, ``PROBE``, ``CONG_STATE``,
        ``DESTROY``, ``RCV_SPACE`` (off by default: one per segment read),
        ``DROP`` (``skb:kfree_skb``, IP only, without NOT_SPECIFIED and
        QUEUE_PURGE); ``.label`` is the JSON ``event`` name.

The events (frozen dataclasses, one clock, one key)
    Every :class:`TraceEvent` has ``ts_ns``/``time`` (CLOCK_REALTIME, as
    packets and server events), ``cpu``, ``sock`` (netlens's number for one
    kernel socket's lifetime; 0 for none), ``cookie`` (``SO_COOKIE`` =
    sock_diag's cookie; None until some event of the socket revealed it),
    ``family``, ``src``/``sport`` (the end the event is about) and
    ``dst``/``dport``; ``to_dict()`` is the ``netlens trace --json`` object.
    Kinds add: ``StateChange.old/new`` (``SYN_SENT``...), ``Retransmit.state/err``,
    ``ResetSent.state/reason``, ``ResetReceived.reason`` (the sender's, when the
    sender is on this host), ``Probe.cwnd/ssthresh/srtt_us/snd_wnd/rcv_wnd/
    data_len/snd_nxt/snd_una``, ``CongestionState.state`` (Open, Disorder,
    CWR, Recovery, Loss), ``Drop.reason``. The ``comm``/pid of a tracepoint
    is whoever was on the CPU, so netlens does not report it; tracepoints
    are global across network namespaces (filter by port, address, cookie).

Joining (for the UI's state timeline, diagram and sparklines)
    ``TimelineBook()``: ``.add(events) -> changed socks``; ``.fold_sockets(sockets, ts)``
        folds a sock_diag snapshot (``netlens.probe`` ``SocketInfo`` objects
        fit the ``SocketLike`` protocol): cookies for sockets whose events
        carried none yet, and TIME_WAIT, which the kernel never logs as a
        state change (see :mod:`netlens.trace.timeline`).
        ``.by_cookie(cookie)`` (server events, sock_diag), ``.by_tuple(local,
        lport, remote, rport)``, ``.get(sock)``, ``.bind_cookie(...)``.
    ``SocketTimeline``: ``.transitions`` (``Transition(time, old, new,
        source, note)``, TIME_WAIT folded in), ``.states`` (visited, in
        order: light these in the diagram), ``.current``,
        ``.kernel_transitions`` (raw), ``.retransmits``, ``.resets``,
        ``.drops``, ``.cong``, ``.probes`` (``ProbeSample`` deque for
        sparklines), ``.timewait`` (``TimeWait``: state, expiry), ``.destroyed``.
    To find the packet that caused a transition, take the last packet of the
    same 4-tuple at or before ``Transition.time`` (loopback: microseconds
    before, see ``tests/integration/test_trace_clock.py``).

Text
    :func:`netlens.trace.text.line` / :func:`~netlens.trace.text.detail`:
    one escaped line per event, as ``netlens trace`` prints it.
"""

from __future__ import annotations

from netlens.trace.events import (
    CongestionState,
    Drop,
    Kind,
    Probe,
    ReceiveSpace,
    ResetReceived,
    ResetSent,
    Retransmit,
    SocketDestroyed,
    StateChange,
    SynAckRetransmit,
    TraceEvent,
    TraceRecord,
    materialize,
)
from netlens.trace.filters import TraceFilter
from netlens.trace.reader import DEFAULT_KINDS, TraceSession, TraceStats
from netlens.trace.timeline import ProbeSample, SocketTimeline, TimelineBook, TimeWait, Transition
from netlens.trace.tracefs import TraceUnavailable

__all__ = [
    "DEFAULT_KINDS",
    "CongestionState",
    "Drop",
    "Kind",
    "Probe",
    "ProbeSample",
    "ReceiveSpace",
    "ResetReceived",
    "ResetSent",
    "Retransmit",
    "SocketDestroyed",
    "SocketTimeline",
    "StateChange",
    "SynAckRetransmit",
    "TimeWait",
    "TimelineBook",
    "TraceEvent",
    "TraceFilter",
    "TraceRecord",
    "TraceSession",
    "TraceStats",
    "TraceUnavailable",
    "Transition",
    "materialize",
]
