"""TCP streams (connections) as the analyzer tracks them: a key, two directions, and a packet index.

Direction 0 is client → server, direction 1 is server → client. The client is
whoever sent the first SYN; if the capture missed the handshake, the side on
a known server port (or the lower port) is taken to be the server.
"""

from __future__ import annotations

import socket
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netlens.capture.frames import ACK, FIN, RST, SYN, Tcp, format_ip, tcp_options
from netlens.display import endpoint

if TYPE_CHECKING:
    from netlens.capture.appdata import StreamApps

_MASK = 0xFFFFFFFF

CLIENT_TO_SERVER = 0
SERVER_TO_CLIENT = 1

# Wireshark's tcp.completeness bits.
SEEN_SYN = 1
SEEN_SYN_ACK = 2
SEEN_ACK = 4
SEEN_DATA = 8
SEEN_FIN = 16
SEEN_RST = 32
_SEEN_NAMES = ((SEEN_SYN, "SYN"), (SEEN_SYN_ACK, "SYN-ACK"), (SEEN_ACK, "ACK"),
               (SEEN_DATA, "data"), (SEEN_FIN, "FIN"), (SEEN_RST, "RST"))


@dataclass(frozen=True)
class StreamKey:
    """Who a stream connects, in a form the UI can match to a socket.

    ``family`` is ``socket.AF_INET`` or ``socket.AF_INET6``; ``client`` and
    ``server`` are ``(host, port)`` as ``socket.getsockname()`` prints them.
    """

    family: int
    client: tuple[str, int]
    server: tuple[str, int]

    def matches(self, local: tuple[str, int], remote: tuple[str, int]) -> bool:
        """True if a socket with these local/remote addresses is one end of this stream.

        Extra tuple items (IPv6 flow info, scope) are ignored, and an
        IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) matches its IPv4 form.
        """
        pair = (_plain(local), _plain(remote))
        return pair in ((self.client, self.server), (self.server, self.client))

    def __str__(self) -> str:
        return f"{endpoint(*self.client)} ⇄ {endpoint(*self.server)}"


def _plain(address: tuple) -> tuple[str, int]:  # type: ignore[type-arg]
    host = str(address[0])
    if host.lower().startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, int(address[1])


class Direction:
    """The analyzer's state for one direction of a stream (what one side has sent).

    The sequence-analysis fields follow Wireshark's (``tcp_analyze_seq_info``):
    0 means "not seen yet", as there, so the rules read like Wireshark's.
    """

    __slots__ = (
        "base", "nextseq", "next_ts", "maxack", "lastack", "lastack_ts", "window", "wscale", "syn_seen",
        "last_syn", "dupacks", "nondup_no", "unseen_told", "unseen_stale", "keepalive", "zwp", "dup_id",
        "dup_frame", "dup_offset", "dup_ts", "fin_no", "rst_no", "payload_bytes", "segments",
    )

    def __init__(self) -> None:
        #: Sequence number that relative numbers count from (the ISN).
        self.base: int | None = None
        #: One past the highest sequence number sent so far (SYN and FIN count one; 0: nothing yet),
        #: and when it last moved.
        self.nextseq = 0
        self.next_ts = 0
        #: The highest sequence number the peer may acknowledge without acking something unseen.
        self.maxack = 0
        #: The acknowledgment number of this side's *last* segment (not the highest), and its time.
        self.lastack = 0
        self.lastack_ts = 0
        #: Last raw window field this side advertised (0: none yet).
        self.window = 0
        #: Window-scale shift from this side's SYN option (None: no option seen).
        self.wscale: int | None = None
        self.syn_seen = False
        #: This side's last segment was a SYN (its window field is never scaled).
        self.last_syn = False
        #: Duplicate ACKs in a row, and the packet they repeat.
        self.dupacks = 0
        self.nondup_no = 0
        #: The peer was told this side's data went unseen; not again until this side sends more than dup ACKs.
        self.unseen_told = False
        #: The peer acknowledged unseen data of this side since this side's acknowledgment last moved
        #: (Wireshark's duplicate-ACK count is wrong then: see the fast-retransmission rule).
        self.unseen_stale = False
        #: The last segment was a keep-alive / zero-window probe.
        self.keepalive = False
        self.zwp = False
        #: This side's last frame, its IP id and where its TCP header starts, and when it came: what a
        #: capture duplicate repeats. The frame is kept by reference and compared only within the
        #: duplicate window (copying every frame's TCP bytes cost more than all the rules together).
        self.dup_id = 0
        self.dup_frame = b""
        self.dup_offset = 0
        self.dup_ts = 0
        self.fin_no = 0
        self.rst_no = 0
        self.payload_bytes = 0
        self.segments = 0


class Stream:
    """One TCP connection seen in the capture.

    Public, read-only for callers: ``id`` (1-based, in order of first
    packet), ``key``, ``client``/``server`` (``host:port`` text), ``family``,
    ``first_no``/``last_no``, ``first_ts``/``last_ts`` (epoch ns), ``seen``
    (completeness bits), ``first_fin`` (direction that closed first, or None),
    ``packets`` (packet numbers, oldest first; evicted ones are trimmed).
    """

    __slots__ = (
        "id", "version", "client_ip", "client_port", "server_ip", "server_port", "client", "server", "key",
        "hosts", "packets", "first_no", "last_no", "first_ts", "last_ts", "seen", "first_fin", "dirs", "scale",
        "syn_seq", "message_count", "apps", "syn_ts", "first_rtt",
    )

    def __init__(self, stream_id: int, version: int, client: tuple[bytes, int], server: tuple[bytes, int],
                 no: int, ts_ns: int) -> None:
        self.id = stream_id
        self.version = version
        self.client_ip, self.client_port = client
        self.server_ip, self.server_port = server
        client_host, server_host = format_ip(self.client_ip), format_ip(self.server_ip)
        self.client = endpoint(client_host, self.client_port)
        self.server = endpoint(server_host, self.server_port)
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        self.key = StreamKey(family, (client_host, self.client_port), (server_host, self.server_port))
        #: The client's and the server's address as text (a packet row shows them by direction).
        self.hosts = (client_host, server_host)
        self.packets = array("I")
        self.first_no = self.last_no = no
        self.first_ts = self.last_ts = ts_ns
        self.seen = 0
        self.first_fin: int | None = None
        self.dirs = (Direction(), Direction())
        #: Effective window-scale shift per direction: None until both SYNs were seen.
        self.scale: list[int | None] = [None, None]
        self.syn_seq: int | None = None
        self.message_count = 0
        #: When the latest SYN (without ACK) was seen, and the handshake's round trip (0: not known):
        #: Wireshark's out-of-order threshold.
        self.syn_ts = 0
        self.first_rtt = 0
        #: Application data: reassembly and protocol sessions (created with the first payload byte).
        self.apps: StreamApps | None = None

    @property
    def family(self) -> int:
        """``socket.AF_INET`` or ``socket.AF_INET6``."""
        return self.key.family

    @property
    def closed(self) -> bool:
        """True once both sides sent FIN, or either sent RST."""
        d0, d1 = self.dirs
        return bool(self.seen & SEEN_RST) or (bool(d0.fin_no) and bool(d1.fin_no))

    def endpoint(self, direction: int) -> str:
        """Text address of the sender in ``direction``."""
        return self.client if direction == CLIENT_TO_SERVER else self.server

    def completeness(self) -> str:
        """What of the connection's life was captured: ``SYN, SYN-ACK, ACK, data, FIN`` (Wireshark's idea)."""
        return ", ".join(name for bit, name in _SEEN_NAMES if self.seen & bit) or "nothing"

    def describe(self) -> str:
        """One line: who, how much, and how the connection began and ended."""
        d0, d1 = self.dirs
        parts = [f"stream {self.id}: client {self.client} → server {self.server}",
                 f"{len(self.packets)} packets",
                 f"{d0.payload_bytes} bytes up, {d1.payload_bytes} down",
                 f"seen: {self.completeness()}"]
        if d0.rst_no or d1.rst_no:
            who = "client" if d0.rst_no and (not d1.rst_no or d0.rst_no < d1.rst_no) else "server"
            parts.append(f"reset by the {who}")
        elif self.first_fin is not None:
            parts.append(f"{'client' if self.first_fin == CLIENT_TO_SERVER else 'server'} closed first")
        return "; ".join(parts)


class StreamTable:
    """Which stream each TCP segment belongs to, and each stream's handshake and teardown bookkeeping.

    ``server_ports`` helps pick the server side of streams whose handshake
    was not captured.
    """

    def __init__(self, server_ports: Iterable[int]) -> None:
        self.server_ports = frozenset(server_ports)
        self.by_id: dict[int, Stream] = {}
        self.by_key: dict[tuple[bytes, int, bytes, int], tuple[Stream, int]] = {}
        self.next_id = 1

    def place(self, tcp: Tcp, no: int, ts_ns: int) -> tuple[Stream, int]:
        """The stream of ``tcp`` (a new one for a new connection) and the segment's direction in it."""
        entry = self.by_key.get((tcp.src, tcp.sport, tcp.dst, tcp.dport))
        flags = tcp.flags
        if entry is not None and flags & SYN and not flags & ACK:
            old, d = entry
            # A fresh SYN on known addresses is a new connection, unless it resends the same ISN.
            if not (d == 0 and old.syn_seq == tcp.seq):
                entry = None
        return entry if entry is not None else self._new(tcp, no, ts_ns)

    def _client_is_source(self, tcp: Tcp) -> bool:
        flags = tcp.flags
        if flags & SYN:
            return not flags & ACK
        ports = self.server_ports
        if tcp.dport in ports and tcp.sport not in ports:
            return True
        if tcp.sport in ports and tcp.dport not in ports:
            return False
        # Servers listen on the lower, well-known port; clients get high ephemeral ones.
        return tcp.sport > tcp.dport

    def _new(self, tcp: Tcp, no: int, ts_ns: int) -> tuple[Stream, int]:
        client_is_src = self._client_is_source(tcp)
        src, dst = (tcp.src, tcp.sport), (tcp.dst, tcp.dport)
        client, server = (src, dst) if client_is_src else (dst, src)
        stream = Stream(self.next_id, tcp.version, client, server, no, ts_ns)
        self.next_id += 1
        self.by_id[stream.id] = stream
        self.by_key[(client[0], client[1], server[0], server[1])] = (stream, 0)
        self.by_key[(server[0], server[1], client[0], client[1])] = (stream, 1)
        return stream, 0 if client_is_src else 1

    def forget(self, stream: Stream) -> None:
        """Drop an evicted stream."""
        del self.by_id[stream.id]
        for key in ((stream.client_ip, stream.client_port, stream.server_ip, stream.server_port),
                    (stream.server_ip, stream.server_port, stream.client_ip, stream.client_port)):
            if self.by_key.get(key, (None,))[0] is stream:
                del self.by_key[key]


def note_segment(stream: Stream, d: int, tcp: Tcp, frame: bytes, no: int, ts_ns: int) -> None:
    """Take one segment into ``stream``'s bookkeeping: packet index, ISNs, window scale, completeness."""
    stream.packets.append(no)
    stream.last_no = no
    stream.last_ts = ts_ns
    dirs = stream.dirs
    f = dirs[d]
    flags = tcp.flags
    if f.base is None:
        # No SYN seen: count from one before, as if the handshake had been captured.
        f.base = tcp.seq if flags & SYN else (tcp.seq - 1) & _MASK
    if flags & ACK and dirs[1 - d].base is None:
        dirs[1 - d].base = (tcp.ack - 1) & _MASK
    seen = stream.seen
    if flags & SYN:
        seen = _note_syn(stream, d, tcp, frame)
    elif flags & ACK and d == 0 and seen & SEEN_SYN_ACK and not seen & SEEN_ACK:
        seen |= SEEN_ACK
    if tcp.payload_length:
        seen |= SEEN_DATA
    if flags & (FIN | RST):
        seen |= _note_end(stream, d, flags, no)
    stream.seen = seen


def _note_end(stream: Stream, d: int, flags: int, no: int) -> int:
    """FIN and RST: who ended first; returns the completeness bits to add."""
    f = stream.dirs[d]
    bits = 0
    if flags & FIN:
        bits |= SEEN_FIN
        if not f.fin_no:
            f.fin_no = no
            if stream.first_fin is None:
                stream.first_fin = d
    if flags & RST:
        bits |= SEEN_RST
        if not f.rst_no:
            f.rst_no = no
    return bits


def _note_syn(stream: Stream, d: int, tcp: Tcp, frame: bytes) -> int:
    """A SYN: the ISN, the window-scale option, scaling once both SYNs were seen; returns the completeness bits."""
    f = stream.dirs[d]
    seen = stream.seen
    if not f.syn_seen:
        f.syn_seen = True
        f.base = tcp.seq
        f.wscale = tcp_options(frame, tcp).wscale
    if tcp.flags & ACK:
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
    return seen


def direction_of(stream: Stream, tcp: Tcp) -> int:
    """0 if ``tcp`` goes client → server in ``stream``, else 1."""
    return 0 if tcp.sport == stream.client_port and tcp.src == stream.client_ip else 1


def relative_numbers(stream: Stream, d: int, tcp: Tcp) -> tuple[int, int, int]:
    """Wireshark's relative seq and ack, and the window in bytes (scaled once both SYNs showed the option)."""
    f, r = stream.dirs[d], stream.dirs[1 - d]
    seq = (tcp.seq - f.base) & _MASK if f.base is not None else tcp.seq
    if tcp.flags & ACK:
        ack = (tcp.ack - r.base) & _MASK if r.base is not None else tcp.ack
    else:
        ack = 0
    scale = stream.scale[d]
    win = tcp.window if tcp.flags & SYN or not scale else tcp.window << scale
    return seq, ack, win
