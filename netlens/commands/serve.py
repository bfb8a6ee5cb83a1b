"""``netlens serve``: the TUI (default) or the headless server printing socket events."""

from __future__ import annotations

import argparse
from typing import Any

from netlens.commands.options import add_endpoint, byte_size, port_number, positive_float, positive_int

HELP = "Run the teaching server and watch its sockets, events and packets live (or --headless)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``netlens serve``."""
    parser.add_argument("--mode", choices=("search", "echo"), default="search",
                        help="protocol: the JSON search server or the echo server (default search)")
    add_endpoint(parser, "listen")
    parser.add_argument("--idle-timeout", type=positive_float, default=30.0, metavar="SECONDS",
                        help="close connections idle or stalled this long; 0 never (default 30)")
    parser.add_argument("--request-timeout", type=positive_float, default=60.0, metavar="SECONDS",
                        help="search: close a connection whose request is not complete this long after "
                             "it opened, however steadily it trickles in; 0 never (default 60)")
    parser.add_argument("--max-content-length", type=int, default=None, metavar="BYTES",
                        help="largest content-length a search request may declare (default 1 MiB)")
    parser.add_argument("--backlog", type=positive_int, default=128, metavar="N",
                        help="listen() backlog: connections the kernel queues before accept(); the kernel "
                             "caps it at net.core.somaxconn (default 128)")
    parser.add_argument("--event-buffer", type=byte_size, default=None, metavar="SIZE",
                        help="memory for socket events not yet shown/printed, e.g. 64M (default 32M)")
    parser.add_argument("--reply-cache", type=byte_size, default=None, metavar="SIZE",
                        help="memory for cached search replies, e.g. 8M; 0 turns it off (default 4M)")
    parser.add_argument("--event-log", type=byte_size, default=None, metavar="SIZE",
                        help="TUI: memory for the Events panel's history, e.g. 128M (default 64M)")
    parser.add_argument("--capture-buffer", type=byte_size, default=None, metavar="SIZE",
                        help="TUI: memory for captured frames, oldest dropped first, e.g. 256M (default 64M)")
    parser.add_argument("--headless", action="store_true",
                        help="no TUI: print one line per socket event until Ctrl-C")
    parser.add_argument("--json", action="store_true", help="with --headless: one JSON object per event")
    parser.add_argument("--kernel", action="store_true",
                        help="with --headless: also the kernel's TCP events of the port (state changes, "
                             "retransmissions, resets with reasons; needs root)")
    parser.add_argument("--iface", default="lo", help="TUI: interface to capture on (default lo)")
    parser.add_argument("--no-capture", action="store_true", help="TUI: do not capture packets")
    parser.add_argument("--capture-port", type=port_number, default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Start the headless server or the TUI."""
    from netlens.errors import UserError
    from netlens.server import ServerConfig
    from netlens.server.bus import RECORD_OVERHEAD

    kwargs: dict[str, Any] = {}
    if args.max_content_length is not None:
        if args.max_content_length < 0:
            raise UserError("--max-content-length cannot be negative.", exit_code=2)
        kwargs["max_content_length"] = args.max_content_length
    if args.event_buffer is not None:
        if args.event_buffer < 64 * RECORD_OVERHEAD:
            raise UserError(f"--event-buffer must be at least {64 * RECORD_OVERHEAD} bytes.", exit_code=2)
        kwargs["event_budget"] = args.event_buffer
    if args.reply_cache is not None:
        kwargs["reply_cache_bytes"] = args.reply_cache
    config = ServerConfig(mode=args.mode, host=args.host, port=args.port, idle_timeout=args.idle_timeout,
                          request_timeout=args.request_timeout, backlog=args.backlog, **kwargs)
    if args.headless:
        from netlens.commands.headless import serve_headless

        return serve_headless(config, as_json=args.json, kernel=args.kernel)
    from netlens.ui.launch import launch

    return launch(config, iface=args.iface, capture=not args.no_capture, event_log_bytes=args.event_log,
                  capture_bytes=args.capture_buffer)
