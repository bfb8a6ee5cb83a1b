"""``netlens client hold`` and ``netlens client stream``: connections that stay, for the TUI's demos.

Both stop cleanly on Ctrl-C or SIGTERM (the socket is closed and a summary
printed), after ``--seconds``, or when the server ends the connection.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from netlens.commands.options import add_endpoint, positive_float

KINDS = ("hold", "stream")


def rate(text: str) -> int | None:
    """argparse type: bytes per second (64k, 1M; 0 for no limit)."""
    from netlens.server.holding import parse_rate

    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def byte_count(text: str) -> int:
    """argparse type: a size in bytes, at least 1 (16k, 64k, 1M)."""
    value = rate(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1 byte")
    return value


def add_parsers(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``hold`` and ``stream`` subcommands of ``netlens client``."""
    hold = kinds.add_parser("hold", help="connect, optionally send TEXT, and keep the connection open",
                            description="Connect and keep the connection open until Ctrl-C, SIGTERM, --seconds, "
                                        "or the server ends it; print what arrives. After the server's FIN our "
                                        "side stays open (CLOSE_WAIT).")
    hold.add_argument("--send", metavar="TEXT", default="", help="send TEXT (raw UTF-8 bytes) after connecting")
    stream = kinds.add_parser("stream", help="send continuously to an echo server (--no-read: the slow reader)",
                              description="Send a repeating pattern to an echo server and read the echo back; "
                                          "with --no-read never read it, so the queues fill (Recv-Q, then Send-Q).")
    stream.add_argument("--rate", type=rate, default=1 << 20, metavar="R",
                        help="bytes per second, like 64k or 1M (default 1M; 0: as fast as it goes)")
    stream.add_argument("--size", type=byte_count, default=16 * 1024, metavar="N",
                        help="bytes per send() call (default 16k)")
    stream.add_argument("--no-read", action="store_true", help="never read the echo (slow-reader demo)")
    for sub in (hold, stream):
        add_endpoint(sub, "server")
        sub.add_argument("--seconds", type=positive_float, default=None, metavar="S",
                         help="stop after S seconds (default: until Ctrl-C, SIGTERM or the server ends it)")
        sub.add_argument("--timeout", type=positive_float, default=5.0, help="seconds to connect (default 5)")


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Ctrl-C and SIGTERM set ``stop`` (the client then closes and reports); returns a function undoing it."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def run(args: argparse.Namespace) -> int:
    """Hold or stream; 0 when it ended as asked (or the server closed), 1 if the server reset it."""
    from netlens.server import holding
    from netlens.textsafe import safe_str

    def say(line: str) -> None:
        print(safe_str(line), flush=True)

    stop = threading.Event()
    restore = _stop_on_signals(stop)
    try:
        if args.kind == "hold":
            outcome = holding.hold(args.host, args.port, send=args.send.encode("utf-8"), seconds=args.seconds,
                                   stop=stop, on_event=say, timeout=args.timeout or 5.0)
        else:
            outcome = holding.stream(args.host, args.port, rate=args.rate, chunk=args.size, read=not args.no_read,
                                     seconds=args.seconds, stop=stop, on_event=say, on_progress=say,
                                     timeout=args.timeout or 5.0)
    finally:
        restore()
    print(safe_str(outcome.summary()), file=sys.stderr)
    return 1 if "reset" in outcome.ended else 0
