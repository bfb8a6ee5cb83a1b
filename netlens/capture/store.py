"""The incremental analyzer over a :class:`PacketRing`: streams, flags, messages, summaries.

:meth:`PacketStore.update` processes the packets appended since the last call
(O(new packets)); everything else answers from compact state:

* per packet: only its stream id (4 bytes, in an ``array``);
* per stream: ISNs, window scale, sequence/ack/window state, a packet index,
  its application-protocol sessions (:mod:`netlens.capture.appdata`);
* per *flagged* packet: its analysis marks, message info, reassembly links
  (dicts keyed by packet number, pruned as the ring evicts).

:meth:`summary` re-decodes the frame's headers with ``struct`` and combines
them with that state, so any row of a million-packet list costs a few
microseconds and no per-packet object is kept.

Not thread-safe: one thread at a time (the CLI's loop, or a
:class:`netlens.capture.feed.PacketFeed` under its lock). The capture thread
only appends to the ring, which has its own lock.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from netlens import DEFAULT_PORT
from netlens.capture.analysis import Mark, analyze, worst
from netlens.capture.appdata import StreamApps
from netlens.capture.follow import Follow, follow
from netlens.capture.frames import ACK, FIN, FLAG_LETTERS, RST, SYN, Tcp, decode, format_ip, tcp_options
from netlens.capture.ladder import Ladder, ladder
from netlens.capture.protocols import AppProtocol, MessageEvent, registered
from netlens.capture.ring import PacketRing
from netlens.capture.streams import SEEN_ACK, SEEN_DATA, SEEN_SYN_ACK, Stream, StreamTable, direction_of, note_segment
from netlens.capture.summary import PacketSummary, StreamSides, other_row, payload_preview, segment_info, stream_sides

if TYPE_CHECKING:
    from netlens.capture.dissect import DissectContext, Layer

_MASK = 0xFFFFFFFF
#: Packets processed per update() call at most, so one call never stalls a UI frame for long.
DEFAULT_UPDATE_LIMIT = 50_000
#: Packets read from the ring at a time by update().
_SLICE = 4096
_CONTROL = SYN | FIN | RST
#: A stream is settled once both ISNs are known and data was seen: its handshake and the handshake's ACK
#: (these bits), or data without a handshake captured (SEEN_DATA alone, and a segment or ACK of each side).
#: Then note_segment() only indexes its plain segments; SYN, FIN and RST still go through it.
_SETTLING = SEEN_SYN_ACK | SEEN_ACK | SEEN_DATA
_SETTLED = _SETTLING
#: ``_tuple_new(PacketSummary, fields)`` is ``PacketSummary(*fields)`` without the NamedTuple's ``__new__``
#: (likewise for ``Mark``).
_tuple_new = tuple.__new__


class MessageRecord(NamedTuple):
    """One completed application message, as the dissection needs to rebuild it."""

    stream: int
    #: 0: client → server (a request), 1: server → client (a response).
    direction: int
    #: Packets whose payload carried the message, by number.
    packets: tuple[int, ...]
    #: Sequence number of its first byte, and its length on the wire.
    start_seq: int
    length: int


class PacketStore:
    """Incremental TCP analysis of the packets in ``ring``.

    ``server_ports`` helps pick the server side of streams whose handshake
    was not captured (the default is the workshop port); ``protocols`` are
    the application protocols offered each stream's bytes (default: the
    registry, :func:`netlens.capture.protocols.registered`).
    """

    def __init__(self, ring: PacketRing, server_ports: Iterable[int] = (DEFAULT_PORT,),
                 protocols: Sequence[AppProtocol] | None = None) -> None:
        self.ring = ring
        self.protocols = tuple(registered() if protocols is None else protocols)
        self._table = StreamTable(server_ports)
        self._by_key = self._table.by_key
        self._by_id = self._table.by_id
        self._next = ring.first
        self._sid = array("I")
        self._sid_base = self._next
        #: Each flagged packet's marks, flat: ``(name, detail, name, detail...)``. A flat tuple of strings is
        #: one the garbage collector stops tracking (unlike Marks, or tuples of fresh tuples), so a capture
        #: full of marked packets does not grow every full collection and set off more of them.
        self._marks: dict[int, tuple[str, ...]] = {}
        self._info: dict[int, str] = {}
        self._segment_of: dict[int, int] = {}
        self._messages: dict[int, list[MessageRecord]] = {}
        self._evicted_seen = ring.evicted
        #: Per stream id: what its rows need of it (:func:`stream_sides`; None: unknown), worked out once between
        #: two update() calls, the only ones to change a stream's state.
        self._row_sides: dict[int, StreamSides | None] = {}
        #: Packets the ring evicted before update() got to them (the consumer fell behind).
        self.skipped = 0

    @property
    def server_ports(self) -> frozenset[int]:
        """Ports taken to be servers' when a handshake was not captured."""
        return self._table.server_ports

    # ------------------------------------------------------------------ processing

    @property
    def last(self) -> int:
        """Number of the last packet analysed (0 before any)."""
        return self._next - 1

    @property
    def first(self) -> int:
        """Number of the oldest packet still stored."""
        return self.ring.first

    @property
    def pending(self) -> int:
        """Packets appended to the ring but not analysed yet."""
        return max(0, self.ring.last - self.last)

    def update(self, limit: int | None = DEFAULT_UPDATE_LIMIT) -> int:
        """Analyse the packets appended since the last call (at most ``limit``); returns how many.

        The ring is read in slices of ``_SLICE`` packets: every young garbage collection walks the
        lists of a slice still being analysed, so long lists (a million frames) made each one slow.
        """
        ring = self.ring
        last, linktype = ring.last, ring.linktype
        self._row_sides.clear()
        if ring.first > self._next:
            # Evicted before we saw them: nothing to analyse, but numbering must stay aligned.
            self.skip_to(ring.first)
        done = 0
        while limit is None or done < limit:
            numbers, stamps, frames = ring.columns(self._next, last, _SLICE if limit is None else
                                                   min(_SLICE, limit - done))
            if not frames:
                break
            self.skip_to(numbers[0])  # (the capture evicted more since the last slice)
            self._process(zip(numbers, stamps, frames, strict=True), linktype)
            self._next = numbers[-1] + 1
            done += len(frames)
        if ring.evicted != self._evicted_seen:
            self._evicted_seen = ring.evicted
            self._prune(ring.first)
        return done

    def skip_to(self, no: int) -> int:
        """Leave packets up to ``no`` (excluded) unanalysed, as if evicted; returns how many.

        A consumer that fell too far behind (a flood) jumps to the present
        instead of analysing the past forever: the skipped packets still list,
        with absolute numbers and no analysis, and their streams' state simply
        misses them (as Wireshark's does for packets it never captured).
        """
        missed = no - self._next
        if missed <= 0:
            return 0
        self.skipped += missed
        if missed < 1 << 20:
            self._sid.frombytes(bytes(self._sid.itemsize * missed))
        else:
            self._sid = array("I")
            self._sid_base = no
        self._next = no
        return missed

    def _process(self, batch: Iterable[tuple[int, int, bytes]], linktype: int) -> None:
        """Analyse ``batch``, in order: each packet's stream, marks and application data.

        One loop with its lookups hoisted: it runs for every packet captured, so every
        attribute lookup and call saved here shows in the per-packet cost.
        """
        by_key = self._by_key
        place = self._table.place
        sid = self._sid
        marked = self._marks
        for no, ts_ns, frame in batch:
            tcp = decode(frame, linktype)
            if type(tcp) is not Tcp:
                sid.append(0)
                continue
            _, src, dst, sport, dport, seq, _, flags, _, _, _, start, length, _, _ = tcp
            entry = by_key.get((src, sport, dst, dport))
            # A SYN may open a new connection on known addresses: the table decides.
            stream, d = entry if entry is not None and not flags & SYN else place(tcp, no, ts_ns)
            sid.append(stream.id)
            settling = stream.seen & _SETTLING  # see _SETTLED
            if flags & _CONTROL or (settling != _SETTLED and (settling != SEEN_DATA or stream.dirs[0].base is None
                                                               or stream.dirs[1].base is None)):
                note_segment(stream, d, tcp, frame, no, ts_ns)
            else:
                # All note_segment() does for a plain segment of a stream whose ISNs and data were seen.
                stream.packets.append(no)
                stream.last_no = no
                stream.last_ts = ts_ns
            marks = analyze(stream, d, tcp, ts_ns, no, frame)
            copy = False
            if marks:
                marked[no] = ((marks[0].name, marks[0].detail) if len(marks) == 1
                              else tuple([text for mark in marks for text in mark]))
                # A capture duplicate repeats bytes its first copy delivered (or held for a gap): feeding
                # them again to the protocols would change nothing.
                copy = marks[0].name == "capture-duplicate"
            apps = stream.apps
            if length:
                f = stream.dirs[d]
                f.payload_bytes += length
                f.segments += 1
                if apps is None:
                    apps = stream.apps = StreamApps([p for p in self.protocols
                                                     if p.claims(stream.client_port, stream.server_port)])
                if apps.listening[d] and not copy:  # directions no protocol reads (any more) cost nothing
                    if apps.sides[d].next_seq is None:
                        apps.start_after_syn(d, f.syn_seen, f.base)
                    events = apps.feed(d, seq, frame[start:start + length], no, ts_ns)
                    if events or apps.abandoned or apps.unfinished[d]:
                        self._took_apps(stream, d, no, events)
                elif copy and apps.unfinished[d]:
                    self._took_apps(stream, d, no, [])
            if flags & (FIN | RST) and apps is not None:
                apps.close(d)

    def _took_apps(self, stream: Stream, d: int, no: int, events: list[MessageEvent]) -> None:
        """Record what the protocol sessions made of packet ``no``: messages, given-up and unfinished ones."""
        apps = stream.apps
        assert apps is not None
        if events:
            self._record_messages(stream, d, no, events)
        if apps.abandoned:
            for part in apps.abandoned:
                if self._segment_of.get(part) == 0:
                    del self._segment_of[part]
            apps.abandoned = []
        if apps.unfinished[d] and no not in self._messages:
            self._segment_of[no] = 0

    def _record_messages(self, stream: Stream, d: int, no: int, events: list[MessageEvent]) -> None:
        texts = []
        for event in events:
            if event.error:
                texts.append(event.summary)
                continue
            stream.message_count += 1
            # Out-of-order segments contribute out of capture order; list them by number.
            packets = tuple(sorted(set(event.packets) | {no}))
            text = event.summary
            if len(packets) > 1:
                text += f" [reassembled from {len(packets)} segments #{packets[0]}–#{packets[-1]}]"
            texts.append(text)
            self._messages.setdefault(no, []).append(
                MessageRecord(stream.id, d, packets, event.start_seq, event.length))
            for part in packets:
                if part != no:
                    self._segment_of[part] = no
        self._segment_of.pop(no, None)
        previous = self._info.get(no)
        self._info[no] = "; ".join(([previous] if previous else []) + texts)

    def _prune(self, first: int) -> None:
        """Forget state about packets and streams the ring has evicted."""
        cut = first - self._sid_base
        if cut > 0:
            del self._sid[:min(cut, len(self._sid))]
            self._sid_base = first
        for table in (self._marks, self._info, self._segment_of, self._messages):
            while table:
                oldest = next(iter(table))
                if oldest >= first:
                    break
                del table[oldest]
        streams = self._table.by_id
        for stream in [s for s in streams.values() if s.last_no < first]:
            self._table.forget(stream)
        for stream in streams.values():
            packets = stream.packets
            if packets and packets[0] < first:
                del packets[:bisect_left(packets, first)]

    # ------------------------------------------------------------------ queries

    def stream_id_of(self, no: int) -> int | None:
        """Stream id of packet ``no`` (None: not TCP, not analysed yet, or evicted)."""
        index = no - self._sid_base
        if 0 <= index < len(self._sid) and no < self._next:
            return self._sid[index] or None
        return None

    def stream_of(self, no: int) -> Stream | None:
        """The stream packet ``no`` belongs to, if it is TCP and still known."""
        sid = self.stream_id_of(no)
        return self._table.by_id.get(sid) if sid else None

    def stream(self, stream_id: int) -> Stream:
        """Stream by id; KeyError if unknown or evicted."""
        return self._table.by_id[stream_id]

    def streams(self) -> list[Stream]:
        """Every known stream, in order of first packet."""
        return list(self._table.by_id.values())

    def stream_packets(self, stream_id: int) -> list[int]:
        """Packet numbers of one stream still in the ring, oldest first."""
        stream = self._table.by_id.get(stream_id)
        if stream is None:
            return []
        packets = stream.packets
        return list(packets[bisect_left(packets, self.ring.first):])

    def analysis(self, no: int) -> list[Mark]:
        """Analysis flags of packet ``no``, each able to explain its rule (``mark.rule``)."""
        flat = self._marks.get(no, ())
        return [_tuple_new(Mark, flat[i:i + 2]) for i in range(0, len(flat), 2)]

    def flagged(self) -> list[int]:
        """Numbers of stored packets that carry at least one analysis flag."""
        first = self.ring.first
        return [no for no in self._marks if no >= first]

    def messages(self, no: int) -> list[MessageRecord]:
        """Application messages completed by packet ``no`` (usually none or one)."""
        return list(self._messages.get(no, ()))

    def segment_of(self, no: int) -> int | None:
        """If packet ``no`` carried part of a multi-segment message: the packet that completed it (0: not yet)."""
        return self._segment_of.get(no)

    def summary(self, no: int) -> PacketSummary:
        """The packet-list row of packet ``no`` (IndexError if evicted or not captured yet)."""
        ts_ns, frame = self.ring.record(no)
        return self._summarize(((no, ts_ns, frame),))[0]

    def summaries(self, start: int, stop: int) -> list[PacketSummary]:
        """Rows ``start..stop`` inclusive (stored packets only), read from the ring in one pass."""
        return self._summarize(zip(*self.ring.columns(start, stop), strict=True))

    def _summarize(self, records: Iterable[tuple[int, int, bytes]]) -> list[PacketSummary]:
        """The rows of these ``(no, ts_ns, frame)``.

        It runs for every visible row of every refresh, so it is one loop with its lookups hoisted: each
        header's fields are unpacked into locals once, what a row needs of its stream (and direction) is
        worked out once between updates (:func:`stream_sides`), and each row is built without the NamedTuple's
        Python-level ``__new__``.
        """
        ring = self.ring
        origin, linktype = ring.first_ts_ns, ring.linktype
        sids, sid_base = self._sid, self._sid_base
        sid_count = len(sids)
        info_of, marks_of, segment_of = self._info, self._marks, self._segment_of
        sides = self._row_sides
        rows: list[PacketSummary] = []
        append = rows.append
        for no, ts_ns, frame in records:
            rel = (ts_ns - (origin or ts_ns)) / 1e9
            tcp = decode(frame, linktype)
            if type(tcp) is not Tcp:
                append(other_row(no, ts_ns, rel, tcp, len(frame)))
                continue
            _, src_ip, dst_ip, sport, dport, raw_seq, ack, flags, win, _, _, start, length, note, _ = tcp
            index = no - sid_base
            sid = sids[index] if 0 <= index < sid_count else 0
            known = sides.get(sid) if sid else None
            if known is None and sid and sid not in sides:
                known = sides[sid] = stream_sides(self._by_id.get(sid))
            if not flags & ACK:
                ack = 0
            if known is None:
                src, dst, stream_id, d, describe, seq = format_ip(src_ip), format_ip(dst_ip), None, None, None, raw_seq
            else:
                side = known[2] if sport == known[0] and src_ip == known[1] else known[3]
                src, dst, stream_id, d, base, peer_base, scale, describe = side
                seq = (raw_seq - base) & _MASK if base is not None else raw_seq
                if peer_base is not None and flags & ACK:
                    ack = (ack - peer_base) & _MASK
                if scale and not flags & SYN:
                    win <<= scale
            info = info_of.get(no)
            if info is None:
                if flags & SYN:
                    info = tcp_options(frame, tcp).describe()
                elif not length:
                    info = ""
                elif no in segment_of:
                    info = segment_info(segment_of[no], self.stream_of(no))
                else:
                    # What the stream's protocol says of the segment, else its first bytes.
                    info = describe(raw_seq, length, ts_ns) if describe is not None else None
                    if info is None:
                        info = payload_preview(frame, start, length)
            if note:
                info = f"{info} [{note}]" if info else f"[{note}]"
            marks = marks_of.get(no)
            if marks:
                names = marks[::2]
                severity: int = worst(names)
            else:
                names, severity = (), 0
            append(_tuple_new(PacketSummary, (no, ts_ns / 1e9, rel, "TCP", src, sport, dst, dport,
                                              FLAG_LETTERS[flags], seq, ack, win, length, info, names, stream_id,
                                              d, len(frame), severity)))
        return rows

    # ------------------------------------------------------------------ views

    def segments(self, stream_id: int) -> list[tuple[int, int, int, int, int, int, bytes]]:
        """``(no, direction, seq, ack, flags, length, payload)`` of the stream's packets still stored, in order.

        ``length`` is the payload's length by the IP header; ``payload`` is what
        was captured of it (shorter when the snaplen cut the frame).
        """
        stream = self.stream(stream_id)
        return [(no, direction_of(stream, tcp), tcp.seq, tcp.ack, tcp.flags, tcp.payload_length, data)
                for no, tcp, data in self._tcp_payloads(self.stream_packets(stream_id))]

    def _tcp_payloads(self, numbers: Iterable[int]) -> Iterator[tuple[int, Tcp, bytes]]:
        """Each still-stored TCP packet of ``numbers`` with its decoded header and captured payload."""
        ring = self.ring
        for no in numbers:
            try:
                frame = ring.frame(no)
            except IndexError:
                continue
            tcp = decode(frame, ring.linktype)
            if type(tcp) is Tcp:
                yield no, tcp, frame[tcp.payload_offset:tcp.payload_offset + tcp.payload_length]

    def follow(self, stream_id: int) -> Follow:
        """Both directions of a stream reassembled in order (see :mod:`netlens.capture.follow`)."""
        stream = self.stream(stream_id)
        return follow(stream_id, stream.client, stream.server, self.segments(stream_id))

    def ladder(self, stream_id: int) -> Ladder:
        """The ladder-diagram model of a stream (see :mod:`netlens.capture.ladder`)."""
        stream = self.stream(stream_id)
        rows = []
        for no in self.stream_packets(stream_id):
            try:
                rows.append(self.summary(no))
            except IndexError:
                continue
        return ladder(stream_id, stream.client, stream.server, rows)

    def dissect(self, no: int) -> list[Layer]:
        """Layer tree of packet ``no`` in Wireshark's words, messages shown reassembled (imports scapy)."""
        from netlens.capture.dissect import dissect_packet

        frame = self.ring.frame(no)
        return dissect_packet(frame, self.ring.linktype, self._dissect_context(no, frame))

    def _dissect_context(self, no: int, frame: bytes) -> DissectContext:
        from netlens.capture.dissect import DissectContext, Reassembled
        from netlens.capture.tcp_detail import TcpContext

        for protocol in self.protocols:
            protocol.scapy_layer()  # each binds its default port, as a full dissection expects
        stream = self.stream_of(no)
        tcp = decode(frame, self.ring.linktype)
        if stream is None or type(tcp) is not Tcp:
            return DissectContext(no=no)
        assert isinstance(tcp, Tcp)
        d = direction_of(stream, tcp)
        context = TcpContext(stream.id, stream.dirs[d].base, stream.dirs[1 - d].base, stream.scale[d])
        owner = stream.apps.owner if stream.apps is not None else None
        messages = tuple(Reassembled(record.packets, record.start_seq, self._reassemble(record))
                         for record in self._messages.get(no, ()))
        return DissectContext(no, context, owner[0].name if owner else None,
                              owner[0].scapy_layer() if owner else None, stream.server_port, messages,
                              self._segment_of.get(no))

    def _reassemble(self, record: MessageRecord) -> bytes:
        """The bytes of one (possibly multi-segment) message, rebuilt from its packets' payloads."""
        out = bytearray(record.length)
        for _no, tcp, data in self._tcp_payloads(record.packets):
            offset = (tcp.seq - record.start_seq) & _MASK
            if offset >= 0x80000000:  # the segment starts before the message
                skip = (record.start_seq - tcp.seq) & _MASK
                data, offset = data[skip:], 0
            if offset < record.length:
                piece = data[: record.length - offset]
                out[offset:offset + len(piece)] = piece
        return bytes(out)

    def hexdump(self, no: int) -> list[str]:
        """Hex dump lines of packet ``no`` (offset, hex, ASCII)."""
        from netlens.capture.hexdump import hexdump

        return hexdump(self.ring.frame(no))
