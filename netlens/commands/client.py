"""``netlens client``: the tutorial's clients — search, binary and echo requests."""

from __future__ import annotations

import argparse
import sys

from netlens.commands import lasting
from netlens.commands.options import add_endpoint, positive_float

HELP = ("Send one search, binary or echo request and print the answer, like the tutorial's clients; "
        "or hold a connection open, or stream to an echo server.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``netlens client``."""
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    search = kinds.add_parser("search", help="JSON search request for VALUE (e.g. morpheus, ring, 🐶)")
    search.add_argument("value", help="what to look up")
    binary = kinds.add_parser("binary", help="binary request whose content is 'binary' + TEXT")
    binary.add_argument("text", help="text to send as raw bytes")
    echo = kinds.add_parser("echo", help="send each TEXT on one connection and print the echo")
    echo.add_argument("texts", nargs="*", metavar="TEXT",
                      help="messages (default: the tutorial's two messages)")
    for sub in (search, binary, echo):
        add_endpoint(sub, "server")
        sub.add_argument("--timeout", type=positive_float, default=5.0, help="seconds to wait (default 5)")
    for sub in (search, binary):
        sub.add_argument("--byte-by-byte", action="store_true",
                         help="write the request one byte per segment (TCP_NODELAY, 5 ms apart)")
    lasting.add_parsers(kinds)


def run(args: argparse.Namespace) -> int:
    """Run the request; failures become one sentence and a non-zero exit (via UserError)."""
    if args.kind in lasting.KINDS:
        return lasting.run(args)
    from netlens.display import endpoint
    from netlens.server import clients
    from netlens.textsafe import safe_repr, safe_str

    where = endpoint(args.host, args.port)
    if args.kind == "echo":
        messages = [t.encode("utf-8") for t in args.texts] or list(clients.TUTORIAL_MESSAGES)
        clients.echo(args.host, args.port, messages, timeout=args.timeout,
                     on_event=lambda line: print(safe_str(line)))
        return 0
    action, value = ("search", args.value) if args.kind == "search" else ("binary", args.text)
    reply = clients.request(args.host, args.port, action, value, timeout=args.timeout,
                            chunk_size=1 if args.byte_by_byte else None,
                            chunk_delay=0.005 if args.byte_by_byte else 0.0)
    print(f"sent {reply.sent_bytes} bytes to {where}: {safe_str(reply.request.describe())}")
    response = reply.response
    if response.value is not None:
        if "result" in response.value:
            print(f"Got result: {safe_str(str(response.value['result']))}")
        else:
            print(f"Got response: {safe_str(str(response.value))}")
    else:
        print(f"Got response: {safe_repr(response.content)}")
    print(f"({reply.received_bytes} bytes back in {reply.elapsed * 1000:.1f} ms)", file=sys.stderr)
    if response.value is not None and "error" in response.value:
        return 1
    return 0
