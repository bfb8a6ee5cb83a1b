"""``netlens read``: analyse a pcap/pcapng file or stream (``-`` for stdin) like a live capture."""

from __future__ import annotations

import argparse
import os
import select
import stat
import sys
from typing import TYPE_CHECKING

from netlens import DEFAULT_PORT
from netlens.commands.options import port_number, positive_int

if TYPE_CHECKING:
    from netlens.capture import PacketRing, PacketStore
    from netlens.capture.stats.report import StatsOutput

#: The graphs ``--graph`` draws (netlens.capture.stats.series.GRAPHS, not imported here to keep --help light).
GRAPH_KINDS = ("tsg", "throughput", "rtt", "window")
HELP = "Read a pcap file (or - for a stream on stdin) and print its packets, streams, or one stream's view."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``netlens read``."""
    parser.add_argument("file", metavar="FILE", help="pcap or pcapng file, or - for standard input")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object per packet")
    output.add_argument("--fields", metavar="NAMES",
                        help="print only these fields of each packet, tab-separated, like tshark -T fields: "
                             "comma-separated names (`--fields list` lists them; `default` is no,time,src,sport,"
                             "dst,dport,flags,seq,ack,win,len,stream,analysis,expert)")
    parser.add_argument("--absolute", action="store_true", help="print epoch times instead of relative ones")
    parser.add_argument("--port", "-p", type=port_number, default=DEFAULT_PORT,
                        help=f"the search server's port, to tell clients from servers (default {DEFAULT_PORT})")
    parser.add_argument("--write", "-w", metavar="OUT",
                        help="also save the packets read: pcapng with netlens's analysis of each packet as "
                             "packet comments (Wireshark's frame.comment), or plain pcap when OUT ends in .pcap")
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
    parser.add_argument("--jobs", "-j", type=positive_int, default=None, metavar="N",
                        help="analyse a file's packet list in N processes, streams split between them "
                             "(default: one per idle CPU for files of 20,000 packets or more; 1 to read "
                             "serially; views, --write and pipes are always read serially)")


def _is_stream(path: str) -> bool:
    """True for stdin pipes and FIFOs: print packets as they arrive instead of batching."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode if path == "-" else os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode)


def _waiting(fd: int) -> bool:
    """True when more input is ready to read at once (so a pipe is read in batches, as fast as a file)."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return False


class _Evicted:
    """What the ring let go while a file bigger than the ring was read: stream lines kept, packet range dropped."""

    def __init__(self) -> None:
        self.streams: dict[int, str] = {}
        self.seen = 0

    def before_flush(self, store: PacketStore) -> None:
        """Keep the description of every stream before the store forgets those the ring evicted."""
        if store.ring.evicted != self.seen:
            self.seen = store.ring.evicted
            for stream in store.streams():
                self.streams[stream.id] = stream.describe()

    def sentence(self, ring: PacketRing, name: str) -> str | None:
        """Exactly what is no longer held (None when nothing was evicted)."""
        if not ring.evicted:
            return None
        return (f"{name} holds more than the packet ring keeps ({ring.max_packets:,} packets or "
                f"{ring.max_bytes // (1 << 20)} MiB): packets 1-{ring.first - 1:,} were read, analysed and listed "
                f"but are no longer held, so --follow, --ladder and --dissect reach only packets "
                f"{ring.first:,}-{ring.last:,} (cut the file with `editcap -r FILE OUT FIRST-LAST` to see others).")


def run(args: argparse.Namespace) -> int:
    """Load the input into a ring, analyse it and print the chosen view."""
    from netlens.capture import PacketRing, PacketStore, PcapReader
    from netlens.capture.protocols import register_specs
    from netlens.capture.stats.report import StatsOutput
    from netlens.commands.read_listing import FLUSH_EVERY, Listing, listing_stats

    register_specs(args.protocol)
    if args.fields is not None and _fields_wanted(args.fields):
        return 0
    stats = StatsOutput(args)  # --conversations, --graph, and the statistics fields of --json/--dissect
    listing = not (args.streams or args.follow or args.ladder or args.dissect or stats.view)
    streaming = _is_stream(args.file)
    if listing and not streaming and not args.write:
        from netlens.commands import read_parallel

        jobs = read_parallel.jobs_for(args.file, args.jobs)
        if jobs > 1:
            return read_parallel.read(args, jobs)
    reader = PcapReader(args.file)  # PcapError -> one sentence (exit code 2)
    ring = PacketRing(linktype=reader.linktype)
    store = PacketStore(ring, server_ports=(args.port,))
    lines = Listing(args, store, listing_stats(args, stats.follow(ring, store), ring, store))
    evicted = _Evicted()
    fd = sys.stdin.fileno() if args.file == "-" else -1
    out = sys.stdout

    batch: list[tuple[int, int, bytes]] = []  # what was read since the last flush: (no, ts_ns, frame)

    def flush() -> None:
        evicted.before_flush(store)
        while store.update():
            pass
        if listing:
            first = ring.first  # a packet evicted before it was analysed is not listed
            out.write("".join(lines.lines([record for record in batch if record[0] >= first])))
            if streaming:
                out.flush()
        batch.clear()

    try:
        with reader:
            for ts_ns, frame, orig_len in reader:
                batch.append((ring.append(ts_ns, frame, orig_len), ts_ns, frame))
                # A file is analysed FLUSH_EVERY packets at a time; a pipe too while more is ready, and
                # at once when it runs dry (so packets show as they arrive).
                if len(batch) >= FLUSH_EVERY or (streaming and not reader.buffered and not _waiting(fd)):
                    flush()
    except KeyboardInterrupt:
        pass
    flush()
    stats.catch_up()
    if reader.warning:
        print(f"netlens: {reader.warning}", file=sys.stderr)
    dropped = evicted.sentence(ring, reader.name)
    if dropped:
        print(f"netlens: {dropped}", file=sys.stderr)
    if args.write:
        _save(args.write, ring, store)
    _print_view(args, ring, store, stats, evicted, reader.name)
    print(f"netlens: {reader.packets} packets read from {reader.name}.", file=sys.stderr)
    return 0


def _fields_wanted(text: str) -> bool:
    """Check a ``--fields`` list (UserError if wrong); True when it asked for the list of fields (printed)."""
    from netlens.capture.packet_fields import FIELDS, parse_fields

    if text.strip() != "list":
        parse_fields(text)
        return False
    width = max(map(len, FIELDS))
    sys.stdout.writelines(f"{name:<{width}}  {meaning}\n" for name, meaning in FIELDS.items())
    return True


def _print_view(args: argparse.Namespace, ring: PacketRing, store: PacketStore, stats: StatsOutput,
                evicted: _Evicted, name: str) -> None:
    """Print the one view the options chose (streams, follow, ladder, dissection, statistics)."""
    from netlens.errors import UserError

    out = sys.stdout
    if args.streams:
        described = dict(evicted.streams)
        described.update((stream.id, stream.describe()) for stream in store.streams())
        for stream_id in sorted(described):
            out.write(described[stream_id] + "\n")
    elif args.follow or args.ladder:
        stream_id = args.follow or args.ladder
        try:
            store.stream(stream_id)
        except KeyError:
            where = ("it was among the packets no longer held (see above)" if stream_id in evicted.streams
                     else f"list them with `netlens read {args.file} --streams`")
            raise UserError(f"there is no stream {stream_id} in {name}; {where}.") from None
        lines = store.follow(stream_id).render() if args.follow else store.ladder(stream_id).render()
        out.write("\n".join(lines) + "\n")
    elif args.dissect:
        if args.dissect not in ring:
            raise UserError(f"there is no packet {args.dissect} in {name} (it has {ring.last}).")
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


def _save(path: str, ring: PacketRing, store: PacketStore) -> None:
    """Write what the ring holds: pcapng with each packet's analysis as comments, or pcap for ``*.pcap``."""
    from netlens.capture import write_pcap
    from netlens.capture.annotate import packet_comments
    from netlens.capture.pcapng import write_pcapng

    if path.endswith(".pcap"):
        count = write_pcap(path, ring)
    else:
        count = write_pcapng(path, ring, packet_comments(store))
    print(f"netlens: wrote {count} packets to {path}.", file=sys.stderr)
