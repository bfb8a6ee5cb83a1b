"""``netlens read``: analyse a pcap/pcapng file or stream (``-`` for stdin) like a live capture."""

from __future__ import annotations

import argparse
import os
import stat
import sys

from netlens import DEFAULT_PORT
from netlens.commands.options import port_number, positive_int

#: The graphs ``--graph`` draws (netlens.capture.stats.series.GRAPHS, not imported here to keep --help light).
GRAPH_KINDS = ("tsg", "throughput", "rtt", "window")
HELP = "Read a pcap file (or - for a stream on stdin) and print its packets, streams, or one stream's view."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``netlens read``."""
    parser.add_argument("file", metavar="FILE", help="pcap or pcapng file, or - for standard input")
    parser.add_argument("--json", action="store_true", help="print one JSON object per packet")
    parser.add_argument("--absolute", action="store_true", help="print epoch times instead of relative ones")
    parser.add_argument("--port", "-p", type=port_number, default=DEFAULT_PORT,
                        help=f"the search server's port, to tell clients from servers (default {DEFAULT_PORT})")
    parser.add_argument("--protocol", action="append", default=[], metavar="MODULE",
                        help="also decode an application protocol: a module name or .py file defining PROTOCOL "
                             "(repeatable; NETLENS_PROTOCOLS lists more, comma-separated)")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--stream", type=positive_int, metavar="N", help="print only the packets of stream N")
    view.add_argument("--streams", action="store_true", help="list the TCP streams instead of packets")
    view.add_argument("--follow", type=positive_int, metavar="N", help="print stream N's bytes, both directions")
    view.add_argument("--ladder", type=positive_int, metavar="N", help="print stream N as a ladder diagram")
    view.add_argument("--dissect", type=positive_int, metavar="NO", help="dissect packet NO fully, with a hex dump")
    view.add_argument("--conversations", action="store_true",
                      help="list the TCP conversations: packets and bytes each way, start, duration, completeness")
    parser.add_argument("--graph", choices=GRAPH_KINDS,
                        help="draw stream N's graph (with --stream N and --output FILE.svg or .png)")
    parser.add_argument("--output", "-o", metavar="FILE", help="the file --graph writes (.svg or .png)")
    parser.add_argument("--direction", choices=("c2s", "s2c"),
                        help="whose data --graph shows (default: the side that sent more)")


def _is_stream(path: str) -> bool:
    """True for stdin pipes and FIFOs: print packets as they arrive instead of batching."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode if path == "-" else os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode)


def run(args: argparse.Namespace) -> int:
    """Load the input into a ring, analyse it and print the chosen view."""
    from netlens.capture import PacketRing, PacketStore, PcapReader
    from netlens.capture.protocols import register_specs
    from netlens.capture.stats.report import StatsOutput
    from netlens.commands.capture import printer
    from netlens.errors import UserError

    register_specs(args.protocol)

    stats = StatsOutput(args)  # --conversations, --graph, and the statistics fields of --json/--dissect
    listing = not (args.streams or args.follow or args.ladder or args.dissect or stats.view)
    streaming = _is_stream(args.file)
    batch = 1 if streaming else 2048
    reader = PcapReader(args.file)  # PcapError -> one sentence (exit code 2)
    ring = PacketRing(linktype=reader.linktype)
    store = PacketStore(ring, server_ports=(args.port,))
    emit = printer(args, stats.follow(ring, store))

    def flush() -> None:
        start = store.last + 1
        while store.update():
            if listing:
                for summary in store.summaries(start, store.last):
                    if args.stream is None or summary.stream == args.stream:
                        emit(summary)
            start = store.last + 1
        if listing and streaming:
            sys.stdout.flush()

    try:
        with reader:
            pending = 0
            for ts_ns, frame, orig_len in reader:
                ring.append(ts_ns, frame, orig_len)
                pending += 1
                if pending >= batch:
                    flush()
                    pending = 0
    except KeyboardInterrupt:
        pass
    flush()
    stats.catch_up()
    if reader.warning:
        print(f"netlens: {reader.warning}", file=sys.stderr)
    out = sys.stdout
    if args.streams:
        for stream in store.streams():
            out.write(stream.describe() + "\n")
    elif args.follow or args.ladder:
        stream_id = args.follow or args.ladder
        try:
            store.stream(stream_id)
        except KeyError:
            raise UserError(f"there is no stream {stream_id} in {reader.name}; "
                            f"list them with `netlens read {args.file} --streams`.") from None
        lines = store.follow(stream_id).render() if args.follow else store.ladder(stream_id).render()
        out.write("\n".join(lines) + "\n")
    elif args.dissect:
        if args.dissect not in ring:
            raise UserError(f"there is no packet {args.dissect} in {reader.name} (it has {ring.last}).")
        out.write(store.summary(args.dissect).line() + "\n")
        for layer in store.dissect(args.dissect):
            out.write("\n".join(layer.lines()) + "\n")
        marks = store.analysis(args.dissect)
        for mark in marks:
            out.write(f"{mark}: {mark.rule}\n")
        out.writelines(line + "\n" for line in stats.dissect_lines(args.dissect))
        out.write("\n".join(store.hexdump(args.dissect)) + "\n")
    elif stats.view:
        stats.print_view(out)
    print(f"netlens: {reader.packets} packets read from {reader.name}.", file=sys.stderr)
    return 0
