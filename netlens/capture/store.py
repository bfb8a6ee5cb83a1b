"""The incremental analyzer over a :class:`PacketRing`: streams, flags, messages, summaries.

:meth:`PacketStore.update` processes the packets appended since the last call
(O(new packets)); everything else answers from compact state:

* per packet: only its stream id (4 bytes, in an ``array``);
* per stream: ISNs, window scale, sequence/ack/window state, a packet index;
* per *flagged* packet: its analysis marks, message info, reassembly links
  (dicts keyed by packet number, pruned as the ring evicts).

:meth:`summary` re-decodes the frame's headers with ``struct`` and combines
them with that state, so any row of a million-packet list costs a few
microseconds and no per-packet object is kept.

Not thread-safe: use a store from one thread (the UI's timer or the CLI
loop). The capture thread only appends to the ring.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from netlens import DEFAULT_PORT
from netlens.capture.analysis import Mark, analyze
from netlens.capture.frames import ACK, FIN, FLAG_LETTERS, RST, SYN, Other, Tcp, decode, format_ip, tcp_options
from netlens.capture.messages import MessageEvent
from netlens.capture.ring import PacketRing
from netlens.capture.streams import (
    SEEN_ACK,
    SEEN_DATA,
    SEEN_FIN,
    SEEN_RST,
    SEEN_SYN,
    SEEN_SYN_ACK,
    Stream,
)
from netlens.capture.summary import PacketSummary
from netlens.textsafe import safe_bytes, safe_str

if TYPE_CHECKING:
    from netlens.capture.dissect import Layer
    from netlens.capture.follow import Follow
    from netlens.capture.ladder import Ladder

_MASK = 0xFFFFFFFF
#: Packets processed per update() call at most, so one call never stalls a UI frame for long.
DEFAULT_UPDATE_LIMIT = 50_000
_PREVIEW = 40
_PRINTABLE = bytes(range(0x20, 0x7F))


class MessageRecord(NamedTuple):
    """One completed search-protocol message, as the dissection needs to rebuild it."""

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
    was not captured (the default is the workshop port).
    """

    def __init__(self, ring: PacketRing, server_ports: Iterable[int] = (DEFAULT_PORT,)) -> None:
        self.ring = ring
        self.server_ports = frozenset(server_ports)
        self._next = ring.first
        self._sid = array("I")
        self._sid_base = self._next
        self._streams: dict[int, Stream] = {}
        self._by_key: dict[tuple[bytes, int, bytes, int], tuple[Stream, int]] = {}
        self._next_stream = 1
        self._marks: dict[int, tuple[tuple[str, str], ...]] = {}
        self._info: dict[int, str] = {}
        self._segment_of: dict[int, int] = {}
        self._messages: dict[int, list[MessageRecord]] = {}
        self._evicted_seen = ring.evicted
        #: Packets the ring evicted before update() got to them (the consumer fell behind).
        self.skipped = 0

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
        """Analyse the packets appended since the last call (at most ``limit``); returns how many."""
        ring = self.ring
        first = ring.first
        if first > self._next:
            # Evicted before we saw them: nothing to analyse, but numbering must stay aligned.
            self.skip_to(first)
        batch = ring.read(self._next, limit=limit)
        if batch:
            linktype = ring.linktype
            process = self._process
            for no, ts_ns, frame in batch:
                process(no, ts_ns, frame, linktype)
            self._next = batch[-1][0] + 1
        if ring.evicted != self._evicted_seen:
            self._evicted_seen = ring.evicted
            self._prune(ring.first)
        return len(batch)

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
            self._reset_index(no)
        self._next = no
        return missed

    def _reset_index(self, first: int) -> None:
        self._sid = array("I")
        self._sid_base = first

    def _new_stream(self, tcp: Tcp, no: int, ts_ns: int) -> tuple[Stream, int]:
        flags = tcp.flags
        src, dst = (tcp.src, tcp.sport), (tcp.dst, tcp.dport)
        if flags & SYN:
            client_is_src = not flags & ACK
        elif tcp.dport in self.server_ports and tcp.sport not in self.server_ports:
            client_is_src = True
        elif tcp.sport in self.server_ports and tcp.dport not in self.server_ports:
            client_is_src = False
        else:
            # Servers listen on the lower, well-known port; clients get high ephemeral ones.
            client_is_src = tcp.sport > tcp.dport
        client, server = (src, dst) if client_is_src else (dst, src)
        stream = Stream(self._next_stream, tcp.version, client, server, no, ts_ns)
        self._next_stream += 1
        self._streams[stream.id] = stream
        self._by_key[(client[0], client[1], server[0], server[1])] = (stream, 0)
        self._by_key[(server[0], server[1], client[0], client[1])] = (stream, 1)
        return stream, 0 if client_is_src else 1

    def _process(self, no: int, ts_ns: int, frame: bytes, linktype: int) -> None:
        tcp = decode(frame, linktype)
        if type(tcp) is not Tcp:
            self._sid.append(0)
            return
        flags = tcp.flags
        entry = self._by_key.get((tcp.src, tcp.sport, tcp.dst, tcp.dport))
        if entry is not None and flags & SYN and not flags & ACK:
            old, d = entry
            # A fresh SYN on known addresses is a new connection, unless it resends the same ISN.
            if not (d == 0 and old.syn_seq == tcp.seq):
                entry = None
        stream, d = entry if entry is not None else self._new_stream(tcp, no, ts_ns)
        stream.packets.append(no)
        stream.last_no = no
        stream.last_ts = ts_ns
        self._sid.append(stream.id)
        f, r = stream.dirs[d], stream.dirs[1 - d]
        if f.base is None:
            # No SYN seen: count from one before, as if the handshake had been captured.
            f.base = tcp.seq if flags & SYN else (tcp.seq - 1) & _MASK
        if flags & ACK and r.base is None:
            r.base = (tcp.ack - 1) & _MASK
        seen = stream.seen
        if flags & SYN:
            if not f.syn_seen:
                f.syn_seen = True
                f.base = tcp.seq
                f.wscale = tcp_options(frame, tcp).wscale
            if flags & ACK:
                seen |= SEEN_SYN_ACK
            else:
                seen |= SEEN_SYN
                if d == 0:
                    stream.syn_seq = tcp.seq
            d0, d1 = stream.dirs
            if d0.syn_seen and d1.syn_seen and stream.scale[0] is None:
                # RFC 7323: scaling is on only if both SYNs carried the option.
                if d0.wscale is not None and d1.wscale is not None:
                    stream.scale = [min(d0.wscale, 14), min(d1.wscale, 14)]
                else:
                    stream.scale = [0, 0]
        elif flags & ACK and d == 0 and seen & SEEN_SYN_ACK and not seen & SEEN_ACK:
            seen |= SEEN_ACK
        length = tcp.payload_length
        if length:
            seen |= SEEN_DATA
        if flags & FIN:
            seen |= SEEN_FIN
            if not f.fin_no:
                f.fin_no = no
                if stream.first_fin is None:
                    stream.first_fin = d
        if flags & RST:
            seen |= SEEN_RST
            if not f.rst_no:
                f.rst_no = no
        stream.seen = seen
        marks = analyze(stream, d, tcp, ts_ns, no)
        if marks:
            self._marks[no] = tuple(marks)
        if length:
            f.payload_bytes += length
            f.segments += 1
            messages = f.messages
            if messages.alive:
                if messages.next_seq is None and f.syn_seen:
                    # Known ISN: the byte stream starts right after the SYN, even if
                    # the first data segment captured is not the first one sent.
                    messages.next_seq = (f.base + 1) & _MASK
                start = tcp.payload_offset
                events = messages.feed(tcp.seq, frame[start:start + length], no, d)
                if events:
                    self._record_messages(stream, d, no, events)
                if messages.abandoned:
                    for part in messages.abandoned:
                        if self._segment_of.get(part) == 0:
                            del self._segment_of[part]
                    messages.abandoned = []
                if messages.in_message and no not in self._messages:
                    self._segment_of[no] = 0
        if flags & (FIN | RST):
            f.messages.close()

    def _record_messages(self, stream: Stream, d: int, no: int, events: list[MessageEvent]) -> None:
        texts = []
        for event in events:
            if event.message is None:
                texts.append(event.info)
                continue
            stream.message_count += 1
            # Out-of-order segments contribute out of capture order; list them by number.
            packets = tuple(sorted(set(event.packets) | {no}))
            text = event.info
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
        for stream_id in [sid for sid, s in self._streams.items() if s.last_no < first]:
            stream = self._streams.pop(stream_id)
            for key in ((stream.client_ip, stream.client_port, stream.server_ip, stream.server_port),
                        (stream.server_ip, stream.server_port, stream.client_ip, stream.client_port)):
                if self._by_key.get(key, (None,))[0] is stream:
                    del self._by_key[key]
        for stream in self._streams.values():
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
        return self._streams.get(sid) if sid else None

    def stream(self, stream_id: int) -> Stream:
        """Stream by id; KeyError if unknown or evicted."""
        return self._streams[stream_id]

    def streams(self) -> list[Stream]:
        """Every known stream, in order of first packet."""
        return list(self._streams.values())

    def stream_packets(self, stream_id: int) -> list[int]:
        """Packet numbers of one stream still in the ring, oldest first."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return []
        packets = stream.packets
        return list(packets[bisect_left(packets, self.ring.first):])

    def analysis(self, no: int) -> list[Mark]:
        """Analysis flags of packet ``no``, each able to explain its rule (``mark.rule``)."""
        return [Mark(name, detail) for name, detail in self._marks.get(no, ())]

    def flagged(self) -> list[int]:
        """Numbers of stored packets that carry at least one analysis flag."""
        first = self.ring.first
        return [no for no in self._marks if no >= first]

    def messages(self, no: int) -> list[MessageRecord]:
        """Search-protocol messages completed by packet ``no`` (usually none or one)."""
        return list(self._messages.get(no, ()))

    def segment_of(self, no: int) -> int | None:
        """If packet ``no`` carried part of a multi-segment message: the packet that completed it (0: not yet)."""
        return self._segment_of.get(no)

    def summary(self, no: int) -> PacketSummary:
        """The packet-list row of packet ``no`` (IndexError if evicted or not captured yet)."""
        ts_ns, frame = self.ring.record(no)
        return self._summarize(no, ts_ns, frame)

    def summaries(self, start: int, stop: int) -> list[PacketSummary]:
        """Rows ``start..stop`` inclusive (stored packets only), read from the ring in one pass."""
        return [self._summarize(no, ts_ns, frame) for no, ts_ns, frame in self.ring.read(start, stop)]

    def _summarize(self, no: int, ts_ns: int, frame: bytes) -> PacketSummary:
        ring = self.ring
        origin = ring.first_ts_ns or ts_ns
        rel = (ts_ns - origin) / 1e9
        tcp = decode(frame, ring.linktype)
        if type(tcp) is Other:
            return PacketSummary(no, ts_ns / 1e9, rel, tcp.proto, tcp.src, tcp.sport, tcp.dst, tcp.dport, "",
                                 None, None, None, None, safe_str(tcp.info), (), None, None, len(frame))
        assert isinstance(tcp, Tcp)
        flags = tcp.flags
        index = no - self._sid_base
        sid = self._sid[index] if 0 <= index < len(self._sid) else 0
        stream = self._streams.get(sid) if sid else None
        if stream is None:
            src, dst = format_ip(tcp.src), format_ip(tcp.dst)
            seq, ack, win, stream_id, d = tcp.seq, tcp.ack if flags & ACK else 0, tcp.window, None, None
        else:
            d = 0 if tcp.sport == stream.client_port and tcp.src == stream.client_ip else 1
            f, r = stream.dirs[d], stream.dirs[1 - d]
            hosts = (stream.key.client[0], stream.key.server[0])
            src, dst = hosts[d], hosts[1 - d]
            seq = (tcp.seq - f.base) & _MASK if f.base is not None else tcp.seq
            if flags & ACK:
                ack = (tcp.ack - r.base) & _MASK if r.base is not None else tcp.ack
            else:
                ack = 0
            scale = stream.scale[d]
            win = tcp.window if flags & SYN or not scale else tcp.window << scale
            stream_id = stream.id
        info = self._info.get(no)
        if info is None:
            info = self._plain_info(no, frame, tcp)
        if tcp.note:
            info = f"{info} [{tcp.note}]" if info else f"[{tcp.note}]"
        marks = self._marks.get(no)
        names = tuple(name for name, _ in marks) if marks else ()
        return PacketSummary(no, ts_ns / 1e9, rel, "TCP", src, tcp.sport, dst, tcp.dport,
                             FLAG_LETTERS[flags], seq, ack, win, tcp.payload_length, info, names, stream_id, d,
                             len(frame))

    def _plain_info(self, no: int, frame: bytes, tcp: Tcp) -> str:
        if tcp.flags & SYN:
            return tcp_options(frame, tcp).describe()
        if not tcp.payload_length:
            return ""
        completed_in = self._segment_of.get(no)
        if completed_in is not None:
            if completed_in:
                return f"[segment of a search message, reassembled in #{completed_in}]"
            return "[segment of an unfinished search message]"
        start = tcp.payload_offset
        data = frame[start:start + min(tcp.payload_length, _PREVIEW)]
        more = "…" if tcp.payload_length > _PREVIEW else ""
        # Printable ASCII needs no escaping (the common case, and 10x cheaper to check).
        text = data.decode("ascii") if not data.translate(None, _PRINTABLE) else safe_bytes(data)
        return f"'{text}'{more}"

    # ------------------------------------------------------------------ views

    def payload(self, no: int) -> bytes:
        """TCP payload of packet ``no`` (empty for non-TCP frames)."""
        frame = self.ring.frame(no)
        tcp = decode(frame, self.ring.linktype)
        if type(tcp) is not Tcp:
            return b""
        return frame[tcp.payload_offset:tcp.payload_offset + tcp.payload_length]

    def follow(self, stream_id: int) -> Follow:
        """Both directions of a stream reassembled in order (see :mod:`netlens.capture.follow`)."""
        from netlens.capture.follow import follow

        return follow(self, stream_id)

    def ladder(self, stream_id: int) -> Ladder:
        """The ladder-diagram model of a stream (see :mod:`netlens.capture.ladder`)."""
        from netlens.capture.ladder import ladder

        return ladder(self, stream_id)

    def dissect(self, no: int) -> list[Layer]:
        """Layer tree of packet ``no`` with search messages shown reassembled (imports scapy)."""
        from netlens.capture.dissect import dissect_in_store

        return dissect_in_store(self, no)

    def hexdump(self, no: int) -> list[str]:
        """Hex dump lines of packet ``no`` (offset, hex, ASCII)."""
        from netlens.capture.hexdump import hexdump

        return hexdump(self.ring.frame(no))

