"""``netlens read`` of a file's packet list on several CPUs: TCP streams split between worker processes.

TCP analysis is per stream, so each worker analyses and formats the streams
whose addresses hash to it, and the parent prints the workers' lines merged
back in frame order. Each worker reads the whole file itself (reading is cheap;
sending the frames to it would cost as much), and:

* numbers every frame as the file does, appending an empty placeholder to its
  ring for each frame another worker owns, so frame numbers, relative times and
  the batches of analysis (:data:`netlens.commands.read_listing.FLUSH_EVERY`) are the
  serial reader's;
* places every TCP segment in a :class:`StreamTable` of the whole file (the
  same rule the analysis uses), so stream numbers are assigned in first-seen
  order across all workers — tshark's ``tcp.stream`` order — and its own
  streams, numbered apart by its store, are printed with the file's numbers;
* sends one message per batch: the numbers and lines of the frames it owns.

The parent receives batch k from every worker before batch k+1, so at most one
batch per worker is held anywhere (the pipes block a worker that runs ahead):
memory does not grow with the file beyond what the serial reader's ring holds.
A file bigger than the ring (which would evict packets and forget streams
part-way) is read serially, so the output is the serial reader's, byte for byte.
"""

from __future__ import annotations

import argparse
import mmap
import os
import signal
import stat
import struct
import sys
from array import array
from typing import TYPE_CHECKING, Any

from netlens.errors import UserError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

#: Fewer packets than this are read serially unless ``--jobs`` asks (starting workers costs ~50 ms).
MIN_PACKETS = 20_000
#: Workers at most by default (each reads and places every frame, so more stop paying off).
MAX_JOBS = 4
#: Other workers' frames in a row from which a worker's store skips them in one step (each placeholder
#: frame costs a decode otherwise; a skipped one only its zero in the store's stream-number column).
SKIP_RUN = 4
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}


def jobs_for(path: str, requested: int | None) -> int:
    """How many worker processes read ``path`` (1: read serially).

    Serially: a pipe, a file bigger than the serial reader's ring; unless ``requested``, also a small
    file, or no idle CPU besides this process's (one worker per idle CPU otherwise).
    """
    from netlens.capture.ring import DEFAULT_MAX_BYTES, DEFAULT_MAX_PACKETS

    if requested == 1:
        return 1
    try:
        info = os.stat(path)
    except OSError:
        return 1  # the serial reader says why in one sentence
    if not stat.S_ISREG(info.st_mode) or info.st_size > DEFAULT_MAX_BYTES:
        return 1
    packets = count_records(path, DEFAULT_MAX_PACKETS + 1)
    if packets > DEFAULT_MAX_PACKETS:
        return 1
    if requested is not None:
        return requested
    if packets < MIN_PACKETS:
        return 1
    # Workers pay only on CPUs nobody else is using (each also reads every frame): on a busy
    # machine, one process does the same work sooner.
    cpus = len(os.sched_getaffinity(0))
    idle = cpus - (running_tasks() - 1)
    return max(1, min(MAX_JOBS, idle))


def running_tasks() -> int:
    """Tasks running or ready to run right now, this one included (the least of three looks; 1 if unknown)."""
    looks = []
    for _ in range(3):
        try:
            with open("/proc/loadavg") as loadavg:
                looks.append(int(loadavg.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return 1
    return min(looks)


def count_records(path: str, limit: int) -> int:
    """Records in the capture file at ``path``, counted up to ``limit`` (a classic pcap by its record headers)."""
    with open(path, "rb") as file:
        order = _PCAP_MAGICS.get(file.read(4))
        if order is None:
            return _count_any(path, limit)
        size = os.fstat(file.fileno()).st_size
        if size < 24:
            return 0
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            unpack = struct.Struct(order + "I").unpack_from
            pos, count = 24, 0
            while pos + 16 <= size and count < limit:
                pos += 16 + unpack(data, pos + 8)[0]
                count += 1
            return count


def _count_any(path: str, limit: int) -> int:
    """Records of a pcapng (or anything else the reader takes), up to ``limit``; 0 when it cannot be read."""
    from netlens.capture import PcapError, PcapReader

    try:
        with PcapReader(path) as reader:
            for _ in reader:
                if reader.packets >= limit:
                    break
            return reader.packets
    except PcapError:
        return 0


def read(args: argparse.Namespace, jobs: int) -> int:
    """Print the packet list of ``args.file`` analysed by ``jobs`` workers, merged in frame order."""
    import multiprocessing

    from netlens.capture import PcapReader

    with PcapReader(args.file) as reader:  # PcapError -> one sentence, before any worker starts
        name = reader.name
    context = multiprocessing.get_context("fork")  # the workers inherit the imports and the parsed options
    conns: list[Connection] = []
    workers = []
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for index in range(jobs):
            receiver, sender = context.Pipe(duplex=False)
            # The worker closes the parent's ends it inherits, so that it gets EPIPE once the parent is gone.
            worker = context.Process(target=_work, args=(args, index, jobs, sender, [*conns, receiver]),
                                     daemon=True, name=f"netlens-read-{index}")
            worker.start()
            sender.close()
            conns.append(receiver)
            workers.append(worker)
        packets, warning = _merge(conns)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join(timeout=5)
    if warning:
        print(f"netlens: {warning}", file=sys.stderr)
    print(f"netlens: {packets} packets read from {name}.", file=sys.stderr)
    return 0


def _merge(conns: list[Connection]) -> tuple[int, str | None]:
    """Write each batch's lines from every worker in frame order; returns the packet count and the reader's warning."""
    out = sys.stdout
    while True:
        messages = []
        for conn in conns:
            try:
                messages.append(conn.recv())
            except EOFError:
                raise UserError("a worker of the parallel reader stopped unexpectedly; "
                                "read the file with --jobs 1.") from None
        for message in messages:
            if message[0] == "error":
                raise UserError(message[1])
        kind, first, last = messages[0][:3]
        if kind == "end":
            return first, last
        lines = [""] * (last - first + 1)
        for _, _, _, numbers, texts in messages:
            for no, text in zip(array("I", numbers), texts, strict=True):
                lines[no - first] = text
        out.write("".join(lines))


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the parent like Ctrl-C: its workers are stopped on the way out."""
    raise KeyboardInterrupt


def _work(args: argparse.Namespace, index: int, jobs: int, conn: Connection, parents: list[Connection]) -> None:
    """One worker: analyse and format the streams that hash to ``index``; send each batch's lines."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for inherited in parents:
        inherited.close()
    try:
        _Worker(args, index, jobs, conn).run()
    except BrokenPipeError:
        pass
    except Exception as exc:  # anything a worker hits, the parent tells in one sentence
        conn.send(("error", f"the parallel reader failed ({type(exc).__name__}: {exc}); read the file with --jobs 1."))
    finally:
        conn.close()


class _Worker:
    """The state of one worker: its ring and store, the whole file's stream table, its batch."""

    def __init__(self, args: argparse.Namespace, index: int, jobs: int, conn: Connection) -> None:
        from netlens.capture import PacketRing, PacketStore, PcapReader
        from netlens.capture.stats.report import StatsOutput
        from netlens.capture.streams import StreamTable
        from netlens.commands.read_listing import Listing, listing_stats

        self.index, self.jobs, self.conn = index, jobs, conn
        self.reader = PcapReader(args.file)
        self.ring = PacketRing(linktype=self.reader.linktype)
        self.store = PacketStore(self.ring, server_ports=(args.port,))
        self.table = StreamTable((args.port,))
        #: This worker's stream numbers -> the file's.
        self.stream_ids: dict[int, int] = {}
        stats = StatsOutput(args).follow(self.ring, self.store)
        self.listing = Listing(args, self.store, listing_stats(args, stats, self.ring, self.store), self.stream_ids)
        #: Frames this worker owns, and runs of other workers' frames (first, last) its store skips over,
        #: since the last batch.
        self.owned: list[tuple[int, int, bytes]] = []
        self.skips: list[tuple[int, int]] = []

    def run(self) -> None:
        """Read the file, analysing and sending a batch every ``FLUSH_EVERY`` packets, then say how it ended."""
        from netlens.capture.frames import SYN, Tcp, decode
        from netlens.commands.read_listing import FLUSH_EVERY

        ring, table, by_key = self.ring, self.table, self.table.by_key
        append, owned, skips = ring.append, self.owned, self.skips
        linktype, index, jobs, stream_ids = ring.linktype, self.index, self.jobs, self.stream_ids
        no = pending = others = 0
        with self.reader as reader:
            for ts_ns, frame, orig_len in reader:
                no += 1
                tcp = decode(frame, linktype)
                if type(tcp) is Tcp:
                    mine = (tcp.sport + tcp.dport + tcp.src[-1] + tcp.dst[-1]) % jobs == index
                    entry = by_key.get((tcp.src, tcp.sport, tcp.dst, tcp.dport))
                    if entry is None or tcp.flags & SYN:
                        created = table.next_id
                        entry = _place(table, tcp, no, ts_ns)
                        if mine and table.next_id != created:
                            stream_ids[len(stream_ids) + 1] = entry[0].id
                else:
                    mine = no % jobs == index
                if mine:
                    if others >= SKIP_RUN:
                        skips.append((no - others, no - 1))
                    others = 0
                    append(ts_ns, frame, orig_len)
                    owned.append((no, ts_ns, frame))
                else:
                    others += 1
                    append(ts_ns, b"")
                pending += 1
                if pending >= FLUSH_EVERY:
                    if others >= SKIP_RUN:
                        skips.append((no - others + 1, no))
                    others = 0
                    self._flush()
                    pending = 0
            if others >= SKIP_RUN:
                skips.append((no - others + 1, no))
            self._flush()
            self.conn.send(("end", reader.packets, reader.warning))

    def _flush(self) -> None:
        """Analyse what was appended (skipping long runs of other workers' frames) and send this worker's lines."""
        store = self.store
        first = store.last + 1
        for start, stop in self.skips:
            while store.last < start - 1 and store.update(limit=start - 1 - store.last):
                pass
            store.skip_to(stop + 1)
        self.skips.clear()
        while store.update():
            pass
        if store.last < first:
            return
        lines = self.listing.numbered_lines(self.owned)
        self.owned.clear()
        numbers = array("I", [no for no, _ in lines]).tobytes()
        self.conn.send(("lines", first, store.last, numbers, [text for _, text in lines]))


def _place(table: Any, tcp: Any, no: int, ts_ns: int) -> Any:
    """Place a segment as the analysis does, keeping what the next placement reads (the client's SYN sequence)."""
    from netlens.capture.frames import ACK, SYN

    stream, d = entry = table.place(tcp, no, ts_ns)
    if tcp.flags & SYN and not tcp.flags & ACK and d == 0:
        stream.syn_seq = tcp.seq
    return entry
