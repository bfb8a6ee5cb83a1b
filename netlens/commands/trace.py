"""``netlens trace``: the kernel's own account of TCP, one line (or JSON object) per event."""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from netlens import DEFAULT_PORT
from netlens.commands.options import port_number, positive_float
from netlens.errors import UserError
from netlens.trace.events import KIND_LABELS as _KIND_LABELS

if TYPE_CHECKING:
    from netlens.trace import TraceFilter, TraceSession, TraceStats

HELP = ("Show the kernel's TCP events as they happen (state changes, retransmissions, resets with reasons, "
        "tcp_probe, drops); needs root.")


def _cookie(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a socket cookie (a number, e.g. 0x4c33a)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a socket cookie (cookies are positive)")
    return value


def _events(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in _KIND_LABELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown event {', '.join(unknown) or text!r}; "
                                         f"choose from {', '.join(_KIND_LABELS)}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``netlens trace``."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--port", "-p", type=port_number, nargs="+", action="extend", metavar="P", default=None,
                       help=f"events of sockets with port P at either end (default {DEFAULT_PORT}); repeatable")
    which.add_argument("--all", action="store_true", help="events of every TCP socket on the machine")
    parser.add_argument("--address", nargs="+", action="extend", metavar="ADDR", default=None,
                        help="only sockets with this IP address at either end")
    parser.add_argument("--cookie", type=_cookie, nargs="+", action="extend", metavar="C", default=None,
                        help="only the socket with this SO_COOKIE (as `netlens conns --json` shows it)")
    parser.add_argument("--events", type=_events, default=None, metavar="LIST",
                        help=f"comma-separated events to show (default all but rcv-space, which fires for every "
                             f"segment an application reads): {', '.join(_KIND_LABELS)}")
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    parser.add_argument("--duration", "-d", type=positive_float, default=None, help="stop after S seconds")


def _filter(args: argparse.Namespace) -> TraceFilter:
    from netlens.trace import TraceFilter

    if args.all:
        ports: list[int] = []
    elif args.port:
        ports = args.port
    else:
        ports = [] if args.address or args.cookie else [DEFAULT_PORT]
    if 0 in ports:
        raise UserError("--port 0 is not a port a socket can have; give a number from 1 to 65535.")
    for address in args.address or ():
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise UserError(f"--address {address!r} is not an IP address; give one such as 127.0.0.1 or ::1.") from None
    return TraceFilter.of(ports, args.address or (), args.cookie or ())


def _emitter(as_json: bool) -> Any:
    from netlens.trace import materialize
    from netlens.trace.text import line

    out = sys.stdout
    if as_json:
        def emit(record: tuple[Any, ...]) -> None:
            event = materialize(record)
            out.write(json.dumps({**event.to_dict(), "time_ns": event.ts_ns}) + "\n")
    else:
        def emit(record: tuple[Any, ...]) -> None:
            out.write(line(materialize(record)) + "\n")
    return emit


def run(args: argparse.Namespace) -> int:
    """Trace until --duration, Ctrl-C or SIGTERM, then say what was seen and lost on stderr."""
    from netlens.trace import TraceSession
    from netlens.trace.events import KINDS_BY_LABEL

    trace_filter = _filter(args)
    kinds = [KINDS_BY_LABEL[name] for name in args.events] if args.events else None
    session = TraceSession(trace_filter, kinds)
    emit = _emitter(args.json)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        session.start()  # TraceUnavailable -> one sentence, exit code 2
        _announce(session, trace_filter.describe())
        _follow(session, emit, args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        # Nothing may interrupt the clean-up: the instance must go.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stats = session.stop()
        try:
            for record in session.drain_records():
                emit(record)
            sys.stdout.flush()
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, signal.default_int_handler)
    _summary(stats, session)
    return 1 if session.error else 0


def _announce(session: TraceSession, where: str) -> None:
    clock = "tai, exact" if session.clock.exact else f"{session.clock.trace_clock}, approximate"
    parts = [f"netlens: tracing {where} in {session.path} (clock {clock})"]
    if session.removed_stale:
        parts.append(f"removed {len(session.removed_stale)} stale instance(s) of dead netlens processes")
    if session.missing:
        parts.append(f"this kernel lacks {', '.join(session.missing)}")
    print("; ".join(parts) + "; Ctrl-C stops.", file=sys.stderr, flush=True)


def _follow(session: TraceSession, emit: Any, duration: float | None) -> None:
    deadline = time.monotonic() + duration if duration is not None else None
    while session.running:
        wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
        session.wait(wait)
        for record in session.drain_records():
            emit(record)
        sys.stdout.flush()
        if deadline is not None and time.monotonic() >= deadline:
            return


def _summary(stats: TraceStats, session: TraceSession) -> None:
    parts = [f"{stats.delivered} events", f"{stats.filtered} filtered out",
             f"{stats.kernel_lost} lost in the kernel's buffer", f"{stats.dropped} dropped by a slow reader"]
    print(f"netlens: {', '.join(parts)}.", file=sys.stderr)
    if session.error:
        print(f"netlens: {session.error}", file=sys.stderr)
