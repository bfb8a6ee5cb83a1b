"""``netlens capture``: capture TCP packets on an interface and print one line (or JSON object) per packet."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from netlens import DEFAULT_PORT
from netlens.commands.options import port_number, positive_float, positive_int

HELP = "Capture packets on an interface (default: lo, tcp port 65432) and print one line per packet, like tshark."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``netlens capture``."""
    parser.add_argument("--iface", "-i", default="lo", help="interface to capture on (default lo)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--port", "-p", type=port_number, default=None,
                       help=f"capture tcp port PORT (default {DEFAULT_PORT})")
    which.add_argument("--filter", "-f", metavar="BPF", default=None,
                       help="any tcpdump-style capture filter instead of --port (needs libpcap)")
    parser.add_argument("--count", "-c", type=positive_int, default=None, help="stop after N packets")
    parser.add_argument("--duration", "-d", type=positive_float, default=None, help="stop after S seconds")
    parser.add_argument("--write", "-w", metavar="FILE", default=None,
                        help="also write the packets to FILE as pcap (readable by tcpdump/Wireshark)")
    parser.add_argument("--protocol", action="append", default=[], metavar="MODULE",
                        help="also decode an application protocol: a module name or .py file defining PROTOCOL "
                             "(repeatable; NETLENS_PROTOCOLS lists more, comma-separated)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per packet")
    parser.add_argument("--absolute", action="store_true", help="print epoch times instead of relative ones")


def printer(args: argparse.Namespace, fields: Any = None) -> Any:
    """A function that prints one summary the way the options ask (shared with ``netlens read``).

    ``fields(no)``, when given, adds keys to each JSON object (ACK RTT, bytes in flight, window).
    """
    out = sys.stdout
    text = formatter(args, fields)

    def emit(summary: Any) -> None:
        out.write(text(summary))
    return emit


def formatter(args: argparse.Namespace, fields: Any = None) -> Any:
    """A function giving one summary's output line (with its newline) the way the options ask."""
    from netlens.textsafe import safe_json

    if args.json:
        def text(summary: Any) -> str:
            row = summary.to_json()
            if fields is not None:
                row.update(fields(summary.no))
            # safe_json: readable text stays, controls/bidi/zero-width/surrogates become \u escapes.
            return safe_json(row) + "\n"
    else:
        absolute = getattr(args, "absolute", False)

        def text(summary: Any) -> str:
            return f"{summary.line(absolute)}\n"
    return text


def run(args: argparse.Namespace) -> int:
    """Capture until --count/--duration/Ctrl-C/SIGTERM, then print a summary on stderr."""
    from netlens.capture import Capture, PacketRing, PacketStore
    from netlens.capture.protocols import register_specs

    register_specs(args.protocol)

    port = args.port if args.port is not None or args.filter is not None else DEFAULT_PORT
    ring = PacketRing()
    capture = Capture(iface=args.iface, port=port, bpf=args.filter, ring=ring, write=args.write,
                      count=args.count)
    store = PacketStore(ring, server_ports=(port,) if port else (DEFAULT_PORT,))
    fields = None
    if args.json:
        from netlens.capture.stats import StatsTracker
        from netlens.capture.stats.report import json_fields
        fields = json_fields(StatsTracker(ring, store))
    emit = printer(args, fields)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    printed = 0
    try:
        capture.start()  # CaptureError -> one sentence, exit code 2 (via the dispatcher)
        print(f"netlens: capturing on {args.iface}: {capture.filter_note}", file=sys.stderr, flush=True)
        deadline = time.monotonic() + args.duration if args.duration is not None else None
        try:
            while True:
                wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
                capture.wait(wait)
                printed += _print_new(store, emit, args.count, printed)
                if args.count is not None and printed >= args.count:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not capture.running:
                    break
        except KeyboardInterrupt:
            pass
        stats = capture.stop()
        try:
            printed += _print_new(store, emit, args.count, printed)
        except KeyboardInterrupt:
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if capture.running:
            capture.stop()
    parts = [f"{stats.captured} packets captured", f"{stats.kernel_drops} dropped by the kernel",
             f"{stats.ring_evictions} evicted from the ring"]
    if store.skipped:
        parts.append(f"{store.skipped} evicted before they could be printed")
    if args.write and capture.writer is not None:
        parts.append(f"{capture.writer.packets} written to {args.write}")
    print(f"netlens: {', '.join(parts)}.", file=sys.stderr)
    if stats.error:
        print(f"netlens: {stats.error}", file=sys.stderr)
        return 1
    return 0


def _print_new(store: Any, emit: Any, count: int | None, printed: int) -> int:
    """Analyse and print what arrived since the last call; returns how many lines were printed."""
    done = 0
    while True:
        start = store.last + 1
        if not store.update():
            break
        for summary in store.summaries(start, store.last):
            if count is not None and printed + done >= count:
                break
            emit(summary)
            done += 1
    sys.stdout.flush()
    return done
