"""One incremental pass over the ring: per-packet RTT/flight/window, conversations and graph series.

:class:`StatsTracker` follows a :class:`~netlens.capture.store.PacketStore`:
each :meth:`~StatsTracker.update` reads the frames the store has already
analysed (so their stream ids are known) and runs the Wireshark rules of
:mod:`.flight` over them, O(new packets). Per packet it keeps three numbers in
``array`` columns (ACK RTT, bytes in flight, calculated window); per stream a
:class:`StreamStats` with the conversation counters and the graph series.
"""

from __future__ import annotations

import struct
import threading
from array import array
from bisect import bisect_right
from typing import TYPE_CHECKING, NamedTuple

from netlens.capture.frames import ACK, FIN, RST, SYN, Tcp, decode, tcp_options
from netlens.capture.stats.columns import Columns
from netlens.capture.stats.flight import FlightResult, FlowState, analyze_flight, note_sack, note_syn
from netlens.capture.streams import SEEN_ACK, SEEN_DATA, SEEN_FIN, SEEN_RST, SEEN_SYN, SEEN_SYN_ACK

if TYPE_CHECKING:
    from netlens.capture.ring import PacketRing
    from netlens.capture.store import PacketStore
    from netlens.capture.streams import Stream

_MASK = 0xFFFFFFFF
_NONE = -1
_PAIR = struct.Struct("!II")
_NOP_NOP_TIMESTAMP = b"\x01\x01\x08"
#: Packets analysed per update() call at most, like the store's own limit.
DEFAULT_UPDATE_LIMIT = 50_000


class KernelSample(NamedTuple):
    """The kernel's own view of the sending socket at one moment (TCP_INFO or tcp_probe)."""

    ts_ns: int
    srtt_us: int
    rttvar_us: int
    #: Congestion window in bytes (segments × MSS), or 0 when unknown.
    cwnd_bytes: int
    #: Where the numbers come from: ``TCP_INFO`` (sock_diag or getsockopt) or ``tcp_probe`` (tracefs).
    source: str = "TCP_INFO"


class DirectionSeries:
    """The graph series of what one side sent, and of how the other side acknowledged it.

    Sequence numbers are relative to the sender's first one (Wireshark's
    relative numbers); times are epoch nanoseconds.
    """

    __slots__ = ("segments", "acks", "sacks", "rtts", "flight")

    def __init__(self) -> None:
        #: Data (or SYN/FIN) segments: time, first byte, one past the last byte, resent (0/1), packet number.
        self.segments = Columns("ts", "start", "end", "resent", "no")
        #: ACKs from the other side: time, acknowledged up to, right edge of the window offered, packet number.
        self.acks = Columns("ts", "ack", "window_end", "no")
        #: SACK blocks the other side reported: time, left edge, right edge, packet number.
        self.sacks = Columns("ts", "left", "right", "no")
        #: ACK RTT samples: time of the ACK, RTT in ns, Karn (1: the segment was resent), ACK's packet number.
        self.rtts = Columns("ts", "rtt", "karn", "no")
        #: Bytes in flight after each data segment: time, bytes, packet number.
        self.flight = Columns("ts", "bytes", "no")


class StreamStats:
    """Counters and series of one TCP stream (direction 0: client → server)."""

    __slots__ = ("id", "flows", "packets", "bytes", "payload", "first_ts", "last_ts", "series", "kernel",
                 "completeness")

    def __init__(self, stream_id: int, ts_ns: int) -> None:
        self.id = stream_id
        self.flows = (FlowState(), FlowState())
        #: Frames and frame bytes (as on the wire, like Wireshark's conversation table) per direction.
        self.packets = [0, 0]
        self.bytes = [0, 0]
        #: TCP payload bytes per direction (resent bytes included).
        self.payload = [0, 0]
        self.first_ts = self.last_ts = ts_ns
        self.series = (DirectionSeries(), DirectionSeries())
        #: The kernel's samples for the socket that sends data, when the UI or a test feeds them.
        self.kernel: list[KernelSample] = []
        #: Wireshark's ``tcp.completeness`` bits (see :func:`completeness_after`).
        self.completeness = 0

    def data_direction(self) -> int:
        """The direction that sent more payload (the one a sequence graph is usually about)."""
        return 0 if self.payload[0] >= self.payload[1] else 1


def completeness_after(bits: int, flags: int, seglen: int, first: bool) -> int:
    """Wireshark's conversation completeness after one more packet.

    Its rules, which differ from a state machine: only a pure SYN counts in a
    conversation's first packet (anything else there counts for nothing); later, a
    SYN-ACK, a pure ACK, an ACK carrying data, a FIN with ACK, and any RST each set
    their bit.
    """
    if first:
        return SEEN_SYN | (SEEN_DATA if seglen else 0) if flags & (SYN | ACK) == SYN else 0
    if flags & (SYN | ACK) == SYN | ACK:
        bits |= SEEN_SYN_ACK
    if flags & (SYN | ACK) == ACK:
        bits |= SEEN_DATA if seglen else SEEN_ACK
    if flags & (FIN | ACK) == FIN | ACK:
        bits |= SEEN_FIN
    if flags & RST:
        bits |= SEEN_RST
    return bits


def sack_blocks(frame: bytes, tcp: Tcp) -> list[tuple[int, int]]:
    """The SACK blocks (left, right) of ``tcp``'s options; a malformed option ends the walk."""
    i, end = tcp.tcp_offset + 20, tcp.tcp_offset + tcp.tcp_header_length
    if end - i == 12 and frame[i:i + 3] == _NOP_NOP_TIMESTAMP:
        return []  # Linux's options on every segment without SACK: nothing to walk
    blocks: list[tuple[int, int]] = []
    while i < end:
        kind = frame[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or frame[i + 1] < 2 or i + frame[i + 1] > end:
            break
        length = frame[i + 1]
        if kind == 5:
            blocks.extend(_PAIR.unpack_from(frame, j) for j in range(i + 2, i + length - 7, 8))
        i += length
    return blocks


def account(stats: StreamStats, d: int, tcp: Tcp, frame: bytes, no: int, ts_ns: int, wire_length: int) -> FlightResult:
    """Apply one segment sent in direction ``d`` to a stream's rules, counters and series.

    ``wire_length`` is the frame's length on the wire (more than ``len(frame)`` when the snaplen cut it).
    """
    fwd, rev = stats.flows[d], stats.flows[1 - d]
    flags = tcp.flags
    if flags & SYN:
        note_syn(fwd, rev, flags, tcp_options(frame, tcp).wscale)
    seglen = tcp.payload_length
    if tcp.note:
        # A frame cut by the snaplen: the segment's length is what the wire carried, not what was kept.
        seglen = max(seglen, wire_length - tcp.payload_offset)
    blocks = sack_blocks(frame, tcp) if tcp.tcp_header_length > 20 else []
    note_sack(fwd, blocks)
    result = analyze_flight(fwd, rev, tcp.seq, tcp.ack, flags, tcp.window, seglen, no, ts_ns)
    stats.completeness = completeness_after(stats.completeness, flags, seglen, not any(stats.packets))
    stats.packets[d] += 1
    stats.bytes[d] += wire_length
    stats.payload[d] += seglen
    stats.last_ts = ts_ns
    sent, acked = stats.series[d], stats.series[1 - d]
    base = fwd.base or 0
    if seglen or flags & (SYN | FIN):  # data, SYN or FIN: a point on the time-sequence graph
        start = (tcp.seq - base) & _MASK
        sent.segments.add(ts_ns, start, start + max(seglen, 1), int(result.resent), no)
    if result.bytes_in_flight is not None:
        sent.flight.add(ts_ns, result.bytes_in_flight, no)
    if flags & ACK and rev.base is not None:
        acked_rel = (tcp.ack - rev.base) & _MASK
        acked.acks.add(ts_ns, acked_rel, acked_rel + result.window_bytes, no)
        for left, right in blocks:
            acked.sacks.add(ts_ns, (left - rev.base) & _MASK, (right - rev.base) & _MASK, no)
    if result.ack_rtt_ns is not None:
        acked.rtts.add(ts_ns, result.ack_rtt_ns, int(result.karn), no)
    return result


class StatsTracker:
    """Per-packet analysis fields and per-stream statistics over ``store``'s packets."""

    def __init__(self, ring: PacketRing, store: PacketStore) -> None:
        self.ring = ring
        self.store = store
        self._next = ring.first
        self._base = self._next
        #: Per packet from ``_base`` on: ACK RTT (ns), bytes in flight, window in bytes; -1 where none.
        self._rtt = array("q")
        self._flight = array("q")
        self._window = array("q")
        self._acked = array("q")
        self._streams: dict[int, StreamStats] = {}

    @property
    def last(self) -> int:
        """Number of the last packet processed."""
        return self._next - 1

    def update(self, limit: int | None = DEFAULT_UPDATE_LIMIT) -> int:
        """Process the packets the store has analysed since the last call; returns how many."""
        stop = self.store.last
        if self._next > stop:
            return 0
        first = self.ring.first
        if first > self._next:
            self._skip(first)
        batch = self.ring.read(self._next, stop, limit=limit)
        linktype = self.ring.linktype
        for no, ts_ns, frame in batch:
            self._process(no, ts_ns, frame, linktype)
        if batch:
            self._next = batch[-1][0] + 1
        self._trim(first)
        return len(batch)

    def _skip(self, first: int) -> None:
        missed = first - self._next
        for column in self._columns():
            column.extend([_NONE] * missed)
        self._next = first

    def _trim(self, first: int) -> None:
        # Forget per-packet values of evicted packets a large slice at a time.
        cut = first - self._base
        if cut > 65536:
            for column in self._columns():
                del column[:cut]
            self._base = first
            known = {stream.id for stream in self.store.streams()}
            for sid in [sid for sid in self._streams if sid not in known]:
                del self._streams[sid]

    def _columns(self) -> tuple[array[int], ...]:
        return self._rtt, self._flight, self._window, self._acked

    def _process(self, no: int, ts_ns: int, frame: bytes, linktype: int) -> None:
        stream = self.store.stream_of(no)
        tcp = decode(frame, linktype) if stream is not None else None
        if stream is None or type(tcp) is not Tcp:
            for column in self._columns():
                column.append(_NONE)
            return
        d = 0 if (tcp.src == stream.client_ip and tcp.sport == stream.client_port) else 1
        stats = self._streams.get(stream.id)
        if stats is None:
            stats = self._streams[stream.id] = StreamStats(stream.id, ts_ns)
        result = account(stats, d, tcp, frame, no, ts_ns, self.ring.orig_len(no) if tcp.note else len(frame))
        self._rtt.append(_NONE if result.ack_rtt_ns is None else result.ack_rtt_ns)
        self._flight.append(_NONE if result.bytes_in_flight is None else result.bytes_in_flight)
        self._window.append(result.window_bytes)
        self._acked.append(_NONE if result.acked_no is None else result.acked_no)

    # ------------------------------------------------------------------ queries

    def _value(self, column: array[int], no: int) -> int | None:
        index = no - self._base
        if 0 <= index < len(column) and self.ring.first <= no < self._next:
            value = column[index]
            return None if value == _NONE else value
        return None

    def ack_rtt_ns(self, no: int) -> int | None:
        """Wireshark's ``tcp.analysis.ack_rtt`` of packet ``no``, in nanoseconds."""
        return self._value(self._rtt, no)

    def bytes_in_flight(self, no: int) -> int | None:
        """Wireshark's ``tcp.analysis.bytes_in_flight`` of packet ``no``."""
        return self._value(self._flight, no)

    def acked_packet(self, no: int) -> int | None:
        """Wireshark's ``tcp.analysis.acks_frame``: the segment packet ``no`` acknowledges (with its RTT)."""
        return self._value(self._acked, no)

    def window_bytes(self, no: int) -> int | None:
        """Wireshark's ``tcp.window_size`` (window field × scale factor) of packet ``no``."""
        return self._value(self._window, no)

    def stream(self, stream_id: int) -> StreamStats:
        """Statistics of one stream; KeyError if it has none (unknown or evicted)."""
        return self._streams[stream_id]

    def streams(self) -> list[StreamStats]:
        """Every stream with statistics, in order of id."""
        return [self._streams[sid] for sid in sorted(self._streams)]


def packet_fields(ring: PacketRing, stream: Stream, no: int, limit: int = 200_000) -> FlightResult | None:
    """The rules' result for packet ``no``, following its stream from its first stored packet up to it.

    For a packet view: O(packets of the stream before ``no``), None when that is
    more than ``limit`` or ``no`` is not a TCP packet of ``stream`` still stored.
    """
    packets = stream.packets
    end = bisect_right(packets, no)
    if not end or packets[end - 1] != no or end > limit:
        return None
    stats = StreamStats(stream.id, stream.first_ts)
    result = None
    for number in packets[:end]:
        try:
            ts_ns, frame = ring.record(number)
            wire = ring.orig_len(number)
        except IndexError:
            continue
        tcp = decode(frame, ring.linktype)
        if type(tcp) is Tcp:
            d = 0 if (tcp.src == stream.client_ip and tcp.sport == stream.client_port) else 1
            result = account(stats, d, tcp, frame, number, ts_ns, wire)
    return result if packets[end - 1] == no else None


class StreamFollower:
    """One stream's statistics, following it live: only that stream's packets are read.

    What a graph of one connection needs, at a cost proportional to that
    connection's packets. ``stream`` is the store's live :class:`Stream` (its
    packet index grows as the store analyses); ``lock`` guards ``stats`` for
    a reader on another thread.
    """

    def __init__(self, ring: PacketRing, stream: Stream) -> None:
        self.ring = ring
        self.stream = stream
        self.stats = StreamStats(stream.id, stream.first_ts)
        self.lock = threading.Lock()
        self._last = 0
        #: Packets of the stream evicted from the ring before they were read.
        self.missed = 0

    @property
    def behind(self) -> int:
        """Packets of the stream indexed but not yet read."""
        packets = self.stream.packets
        return len(packets) - bisect_right(packets, self._last)

    def update(self, limit: int = 500) -> int:
        """Read up to ``limit`` new packets of the stream; returns how many."""
        packets = self.stream.packets
        start = bisect_right(packets, self._last)
        batch = packets[start:start + limit]
        stream, ring = self.stream, self.ring
        linktype = ring.linktype
        with self.lock:
            for no in batch:
                try:
                    ts_ns, frame = ring.record(no)
                except (KeyError, IndexError):
                    self.missed += 1
                    continue
                tcp = decode(frame, linktype)
                if type(tcp) is not Tcp:
                    continue
                d = 0 if (tcp.src == stream.client_ip and tcp.sport == stream.client_port) else 1
                account(self.stats, d, tcp, frame, no, ts_ns, ring.orig_len(no) if tcp.note else len(frame))
        if batch:
            self._last = batch[-1]
        return len(batch)

    def skip_to_newest(self, keep: int) -> int:
        """Leave all but the newest ``keep`` unread packets unread for good (a flood); returns how many."""
        packets = self.stream.packets
        start = bisect_right(packets, self._last)
        skipped = max(0, len(packets) - start - keep)
        if skipped:
            self._last = packets[start + skipped - 1]
            self.missed += skipped
        return skipped
