"""The small per-segment context every analysis rule reads: one TCP segment against its stream's state.

Built once per packet; the facts several rules share (is this a keep-alive, a
pure repeat of the last ACK, did it move the sequence forward) are computed here
once, so each rule reads as the sentence it implements. The state and the
comparisons are Wireshark's (``tcp_analyze_sequence_number`` in packet-tcp.c):
sequence numbers compare modulo 2**32, and 0 stands for "not seen yet".
"""

from __future__ import annotations

from netlens.capture.frames import FIN, RST, SYN, Tcp
from netlens.capture.streams import Direction, Stream

MASK = 0xFFFFFFFF
_HALF = 0x80000000

#: Segment kinds, exactly one per segment: data without SYN/FIN/RST going forward, empty (a pure
#: ACK or window change), SYN/FIN/RST going forward, and anything carrying sequence space that goes
#: back (starts before the next expected byte) or that the receiver already acknowledged; rules
#: name the kinds they can apply to, so a forward data segment skips the retransmission rules.
DATA, EMPTY, CONTROL, BACK = "data", "empty", "control", "back"
KINDS = (DATA, EMPTY, CONTROL, BACK)
#: A frame repeating the previous one of its direction byte for byte (same IPv4 id) within this time is
#: a copy the capture made (two interfaces, a mirror port), not a packet the network carried twice.
DUPLICATE_NS = 5_000_000
#: Without an IP id to tell packets apart (IPv6, or a stack that sends id 0), only copies this close
#: count: two identical duplicate ACKs sent by a host without timestamps are further apart than that.
DUPLICATE_NO_ID_NS = 200_000


def after(a: int, b: int) -> bool:
    """Sequence number ``a`` is after ``b`` (mod 2**32)."""
    return 0 < ((a - b) & MASK) < _HALF


def duplicate_key(tcp: Tcp, frame: bytes) -> bytes:
    """What a capture duplicate repeats: the IP identification and every captured TCP byte."""
    return tcp.ip_id.to_bytes(2, "big") + frame[tcp.tcp_offset:]


def _behind(seq: int, seglen: int, flags: int, nxt: int) -> bool:
    """Sequence space (data, SYN or FIN) starting before ``nxt``, and not new data one below it."""
    if not (seglen > 0 or flags & (SYN | FIN)) or nxt == 0 or not 0 < (nxt - seq) & MASK < _HALF:
        return False
    return not (seglen > 1 and (nxt - 1) & MASK == seq)


def _acked(seq: int, seglen: int, lastack: int) -> bool:
    """Every byte of the segment is below the receiver's last acknowledgment."""
    return lastack != 0 and ((lastack - seq - seglen) & MASK) < _HALF


class Segment:
    """One segment travelling in direction ``d`` of ``stream``, before the stream's state takes it in.

    ``f`` is the sending direction's state, ``r`` the receiving one's (what
    the other side sent). Numbers are raw (absolute) sequence numbers.
    ``skip_rest`` is set by a rule after which Wireshark checks no more of
    the window/ACK rules for this segment (a zero-window probe, a keep-alive ACK).
    """

    __slots__ = (
        "stream", "d", "f", "r", "no", "ts_ns", "flags", "seq", "ack", "window", "seglen", "control", "end",
        "nxt", "keepalive", "repeat", "kind", "skip_rest", "marked", "stop", "dup_key", "dup_window", "behind",
    )

    def __init__(self, stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int, frame: bytes = b"") -> None:
        self.stream = stream
        self.d = d
        f: Direction = stream.dirs[d]
        r: Direction = stream.dirs[1 - d]
        self.f, self.r = f, r
        self.no, self.ts_ns = no, ts_ns
        flags = self.flags = tcp.flags
        seq = self.seq = tcp.seq
        ack = self.ack = tcp.ack
        self.window = tcp.window
        seglen = self.seglen = tcp.payload_length
        control = self.control = flags & (SYN | FIN | RST)
        #: One past the segment's last sequence number (SYN and FIN count one each).
        self.end = (seq + seglen + (1 if flags & (SYN | FIN) else 0)) & MASK
        #: The next sequence number expected from this sender (0: none seen yet).
        nxt = self.nxt = f.nextseq
        #: At most one byte, one below the next expected sequence number, no SYN/FIN/RST.
        self.keepalive = seglen <= 1 and not control and seq == (nxt - 1) & MASK
        #: Empty, no SYN/FIN/RST, at the next sequence number, repeating this side's last acknowledgment.
        self.repeat = seglen == 0 and not control and seq == nxt and ack == f.lastack
        #: Carries data (or SYN/FIN), is no keep-alive, and starts before the next expected byte (one
        #: below it with more than a byte of data is new data, as Wireshark has it).
        self.behind = not self.keepalive and _behind(seq, seglen, flags, nxt)
        acked = seglen > 0 and not self.keepalive and _acked(seq, seglen, r.lastack)
        self.kind = BACK if self.behind or acked else CONTROL if control else DATA if seglen else EMPTY
        self.skip_rest = False
        #: Set by a rule after which no other rule looks at the segment, nor does it change any state.
        self.stop = False
        #: Names of the marks given so far (rules after them may depend on them).
        self.marked: list[str] = []
        #: What a capture duplicate of this frame would repeat (see DUPLICATE_NS).
        self.dup_key = duplicate_key(tcp, frame)
        self.dup_window = DUPLICATE_NS if tcp.ip_id else DUPLICATE_NO_ID_NS

    def window_bytes(self, raw: int, d: int, syn: bool) -> int:
        """A raw window field of direction ``d`` in bytes (a SYN's is never scaled)."""
        scale = self.stream.scale[d]
        return raw if syn or not scale else raw << scale

    def peer_window_bytes(self) -> int | None:
        """The receive window the peer last advertised, in bytes; None while its scale is unknown.

        The scale of a side is known once its SYN was seen, or once a SYN
        without the option showed that neither side scales (Wireshark's rule).
        """
        r, f = self.r, self.f
        no_scaling = (r.syn_seen and r.wscale is None) or (f.syn_seen and f.wscale is None)
        if not r.syn_seen and not no_scaling:
            return None
        shift = 0 if no_scaling or r.last_syn else min(r.wscale or 0, 14)
        return r.window << shift
