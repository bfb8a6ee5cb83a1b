"""Wireshark-style TCP analysis flags, each with the rule behind it in one plain sentence.

:func:`analyze` looks at one segment against what its stream's two directions
sent before (sequence space, acknowledgments, windows) and returns the flags
that apply, then advances that state. It runs once per packet, in capture
order, in O(1) (the list of sequence gaps per direction is bounded).
"""

from __future__ import annotations

from dataclasses import dataclass

from netlens.capture.frames import ACK, FIN, RST, SYN, Tcp
from netlens.capture.streams import Direction, Stream

_MASK = 0xFFFFFFFF
_HALF = 0x80000000
#: A gap filled sooner than this after it opened is reordering, not a retransmission
#: (Wireshark's default; loopback RTTs are far below it).
OUT_OF_ORDER_NS = 3_000_000
MAX_HOLES = 32


@dataclass(frozen=True)
class Rule:
    """One analysis flag: its short name, Wireshark's label, and the rule in a sentence."""

    name: str
    label: str
    rule: str


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("retransmission", "TCP Retransmission",
         "Retransmission: this segment's sequence range was already sent earlier in this direction "
         "and the sender has not seen it acknowledged."),
    Rule("fast-retransmission", "TCP Fast Retransmission",
         "Fast retransmission: a retransmission of the data the receiver asked for again with two or "
         "more duplicate ACKs, sent without waiting for the retransmission timer."),
    Rule("spurious-retransmission", "TCP Spurious Retransmission",
         "Spurious retransmission: this segment resends data the receiver had already acknowledged."),
    Rule("out-of-order", "TCP Out-Of-Order",
         "Out-of-order: this segment fills a gap that later data already skipped over, and it arrived "
         "within 3 ms of that data, too soon to be a retransmission."),
    Rule("lost-segment", "TCP Previous segment not captured",
         "Previous segment not captured: this segment starts beyond everything seen so far in this "
         "direction, so some data was sent but is missing from the capture."),
    Rule("ack-unseen", "TCP ACKed unseen segment",
         "ACKed unseen segment: this acknowledges data that was never captured in the other direction."),
    Rule("dup-ack", "TCP Dup ACK",
         "Duplicate ACK: an empty segment repeating the previous acknowledgment number and window, which "
         "a receiver sends for each segment that arrives after a gap."),
    Rule("zero-window", "TCP ZeroWindow",
         "Zero window: the sender of this segment advertises a receive window of 0, so its peer must stop "
         "sending (the receiving application is not reading fast enough)."),
    Rule("zero-window-probe", "TCP ZeroWindowProbe",
         "Zero-window probe: one byte sent at the next sequence number while the peer's window is zero, "
         "to learn whether the window has opened."),
    Rule("zero-window-probe-ack", "TCP ZeroWindowProbeAck",
         "Zero-window probe ACK: the receiver's answer to a zero-window probe."),
    Rule("window-update", "TCP Window Update",
         "Window update: an empty segment that changes only the advertised window (same sequence and "
         "acknowledgment numbers), telling the peer how much it may now send."),
    Rule("window-full", "TCP Window Full",
         "Window full: this segment fills the receive window the peer last advertised, so the sender "
         "must wait for an ACK or a window update before sending more."),
    Rule("keep-alive", "TCP Keep-Alive",
         "Keep-alive: an empty or one-byte segment whose sequence number is one below the next expected, "
         "sent to check that the peer is still there (Linux also probes a zero window this way)."),
    Rule("keep-alive-ack", "TCP Keep-Alive ACK",
         "Keep-alive ACK: the peer's answer to a keep-alive, repeating its last acknowledgment."),
    Rule("reset", "TCP RST",
         "Reset: the RST flag aborts the connection at once; data still queued is discarded and no FIN "
         "exchange follows."),
)}


@dataclass(frozen=True)
class Mark:
    """One analysis flag on one packet: rule name, its sentence, and a packet-specific detail."""

    name: str
    detail: str = ""

    @property
    def rule(self) -> str:
        """The plain sentence explaining when this flag is set."""
        return RULES[self.name].rule

    @property
    def label(self) -> str:
        """Wireshark's name for the flag (``TCP Dup ACK``)."""
        return RULES[self.name].label

    def __str__(self) -> str:
        return f"{self.label} ({self.detail})" if self.detail else self.label


def _after(a: int, b: int) -> bool:
    """Sequence number ``a`` is after ``b`` (mod 2**32)."""
    return 0 < ((a - b) & _MASK) < _HALF


def _in_holes(holes: list[list[int]], seq: int, end: int) -> list[int] | None:
    for hole in holes:
        start, stop = hole[0], hole[1]
        if not _after(start, seq) and not _after(end, stop) and end != seq:
            return hole
    return None


def _fill(holes: list[list[int]], hole: list[int], seq: int, end: int) -> None:
    # Remove the filled part; keep what is still missing on either side.
    holes.remove(hole)
    if _after(seq, hole[0]):
        holes.append([hole[0], seq, hole[2]])
    if _after(hole[1], end):
        holes.append([end, hole[1], hole[2]])


def analyze(stream: Stream, d: int, tcp: Tcp, ts_ns: int, no: int) -> list[tuple[str, str]]:
    """Flags for one segment travelling in direction ``d`` of ``stream``; updates the stream's state.

    Returns ``(name, detail)`` pairs (usually none). Callers must feed each
    stream's packets in capture order.
    """
    f: Direction = stream.dirs[d]
    r: Direction = stream.dirs[1 - d]
    flags = tcp.flags
    seq, ack, window = tcp.seq, tcp.ack, tcp.window
    seglen = tcp.payload_length
    control = flags & (SYN | FIN | RST)
    end = (seq + seglen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & _MASK
    scale = stream.scale[d]
    window_bytes = window if flags & SYN else window << (scale or 0)
    marks: list[tuple[str, str]] = []
    nxt = f.next_seq

    if flags & RST:
        marks.append(("reset", "sent by the " + ("client" if d == 0 else "server")))
    probe = seglen == 1 and nxt is not None and seq == nxt and r.window == 0 and not control
    if probe:
        marks.append(("zero-window-probe", ""))
    if window == 0 and not control:
        marks.append(("zero-window", ""))
    if nxt is not None and _after(seq, nxt) and not flags & RST:
        missing = (seq - nxt) & _MASK
        marks.append(("lost-segment", f"{missing} bytes missing before this segment"))
        f.holes.append([nxt, seq, ts_ns])
        if len(f.holes) > MAX_HOLES:
            f.holes.pop(0)
    keepalive = (seglen <= 1 and not control and nxt is not None and seq == (nxt - 1) & _MASK)
    if keepalive:
        marks.append(("keep-alive", ""))
    pure_repeat = (seglen == 0 and not control and flags & ACK and nxt is not None and seq == nxt
                   and f.last_ack is not None and ack == f.last_ack)
    if pure_repeat and f.window is not None and window != f.window and window != 0:
        marks.append(("window-update", f"window {f.window_bytes} → {window_bytes} bytes"))
    elif pure_repeat and window == f.window:
        if r.keepalive:
            marks.append(("keep-alive-ack", ""))
        elif r.zwp:
            marks.append(("zero-window-probe-ack", ""))
        else:
            if f.dupacks == 0:
                f.dupack_of = stream.last_ack_no[d]
            f.dupacks += 1
            marks.append(("dup-ack", f"#{f.dupacks} of packet {f.dupack_of}"))
    if (seglen > 0 or flags & (SYN | FIN)) and nxt is not None and _after(nxt, seq) and not keepalive:
        hole = _in_holes(f.holes, seq, end)
        if hole is not None:
            name = "out-of-order" if ts_ns - hole[2] < OUT_OF_ORDER_NS else "retransmission"
            marks.append((name, ""))
            _fill(f.holes, hole, seq, end)
        elif r.last_ack is not None and not _after(end, r.last_ack) and not flags & SYN:
            marks.append(("spurious-retransmission", "the receiver had acknowledged it"))
        elif r.dupacks >= 2 and seq == r.last_ack:
            marks.append(("fast-retransmission", f"after {r.dupacks} duplicate ACKs"))
        else:
            marks.append(("retransmission", ""))
    if seglen > 0 and not control and r.window_bytes is not None and r.last_ack is not None \
            and end == (r.last_ack + r.window_bytes) & _MASK and not probe:
        marks.append(("window-full", f"{r.window_bytes} bytes in flight"))
    if flags & ACK and r.next_seq is not None and _after(ack, r.next_seq):
        marks.append(("ack-unseen", f"{(ack - r.next_seq) & _MASK} bytes beyond what was captured"))

    # Advance this direction's state.
    if nxt is None or _after(end, nxt):
        f.next_seq = end
        f.next_ts = ts_ns
    if flags & ACK and (f.last_ack is None or _after(ack, f.last_ack)):
        f.last_ack = ack
        f.dupacks = 0
        stream.last_ack_no[d] = no
    f.window = window
    f.window_bytes = window_bytes
    if probe:
        f.zwp = True
    elif seglen or control:
        f.zwp = False
    f.keepalive = keepalive
    if seglen == 0 and not control and (r.keepalive or r.zwp) and flags & ACK:
        r.keepalive = False
        r.zwp = False
    return marks
