"""The analysis rules, one function each, in the order they run on every segment.

A rule reads the segment's context (:class:`Segment`) and returns the mark's
detail text when it applies ("" for no detail), None when it does not. A rule
may keep the bookkeeping only it reads (the dup-ACK count, the sequence gaps);
the general sequence, acknowledgment and window state advances after all
rules ran (:func:`netlens.capture.analysis.advance`). To change a rule, change
its function; to add one, add a function here: its place in this file is its
place in the order.
"""

from __future__ import annotations

from netlens.capture.analysis.marks import Severity, rule
from netlens.capture.analysis.segment import BACK, CONTROL, DATA, EMPTY, KINDS, MASK, Segment, after
from netlens.capture.frames import ACK, RST

#: A gap filled sooner than this after it opened is reordering, not a retransmission
#: (Wireshark's default; loopback RTTs are far below it).
OUT_OF_ORDER_NS = 3_000_000
#: Sequence gaps remembered per direction (the oldest are forgotten).
MAX_HOLES = 32


@rule("reset", "TCP RST", Severity.ERROR, (CONTROL, BACK),
      "Reset: the RST flag aborts the connection at once; data still queued is discarded and no FIN "
      "exchange follows.")
def reset(seg: Segment) -> str | None:
    """A segment with RST."""
    if not seg.flags & RST:
        return None
    return "sent by the " + ("client" if seg.d == 0 else "server")


@rule("zero-window-probe", "TCP ZeroWindowProbe", Severity.NOTE, (DATA,),
      "Zero-window probe: one byte sent at the next sequence number while the peer's window is zero, "
      "to learn whether the window has opened.")
def zero_window_probe(seg: Segment) -> str | None:
    """One byte at the next sequence number while the peer's window is zero."""
    return "" if seg.probe else None


@rule("zero-window", "TCP ZeroWindow", Severity.WARNING, (DATA, EMPTY, BACK),
      "Zero window: the sender of this segment advertises a receive window of 0, so its peer must stop "
      "sending (the receiving application is not reading fast enough).")
def zero_window(seg: Segment) -> str | None:
    """A window of zero advertised by a segment without SYN, FIN or RST."""
    return "" if seg.window == 0 and not seg.control else None


@rule("lost-segment", "TCP Previous segment not captured", Severity.WARNING, (DATA, EMPTY, CONTROL),
      "Previous segment not captured: this segment starts beyond everything seen so far in this "
      "direction, so some data was sent but is missing from the capture.")
def lost_segment(seg: Segment) -> str | None:
    """The segment starts after the next expected byte; the gap is remembered for the rules below."""
    nxt = seg.nxt
    if nxt is None or not after(seg.seq, nxt) or seg.flags & RST:
        return None
    holes = seg.f.holes
    holes.append([nxt, seg.seq, seg.ts_ns])
    if len(holes) > MAX_HOLES:
        holes.pop(0)
    return f"{(seg.seq - nxt) & MASK} bytes missing before this segment"


@rule("keep-alive", "TCP Keep-Alive", Severity.NOTE, (DATA, EMPTY),
      "Keep-alive: an empty or one-byte segment whose sequence number is one below the next expected, "
      "sent to check that the peer is still there (Linux also probes a zero window this way).")
def keep_alive(seg: Segment) -> str | None:
    """At most one byte, one below the next expected sequence number."""
    return "" if seg.keepalive else None


@rule("window-update", "TCP Window Update", Severity.NOTE, (EMPTY,),
      "Window update: an empty segment that changes only the advertised window (same sequence and "
      "acknowledgment numbers), telling the peer how much it may now send.")
def window_update(seg: Segment) -> str | None:
    """A repeated empty ACK whose (non-zero) window changed."""
    f = seg.f
    if not seg.repeat or f.window is None or seg.window == f.window or seg.window == 0:
        return None
    return f"window {f.window_bytes} → {seg.window_bytes} bytes"


@rule("keep-alive-ack", "TCP Keep-Alive ACK", Severity.NOTE, (EMPTY,),
      "Keep-alive ACK: the peer's answer to a keep-alive, repeating its last acknowledgment.")
def keep_alive_ack(seg: Segment) -> str | None:
    """A repeated empty ACK, same window, right after the peer's keep-alive."""
    return "" if seg.repeat and seg.window == seg.f.window and seg.r.keepalive else None


@rule("zero-window-probe-ack", "TCP ZeroWindowProbeAck", Severity.NOTE, (EMPTY,),
      "Zero-window probe ACK: the receiver's answer to a zero-window probe.")
def zero_window_probe_ack(seg: Segment) -> str | None:
    """A repeated empty ACK, same window, right after the peer's zero-window probe."""
    r = seg.r
    return "" if seg.repeat and seg.window == seg.f.window and not r.keepalive and r.zwp else None


@rule("dup-ack", "TCP Dup ACK", Severity.WARNING, (EMPTY,),
      "Duplicate ACK: an empty segment repeating the previous acknowledgment number and window, which "
      "a receiver sends for each segment that arrives after a gap.")
def dup_ack(seg: Segment) -> str | None:
    """A repeated empty ACK, same window, not answering a probe; counts the run of duplicates."""
    r, f = seg.r, seg.f
    if not seg.repeat or seg.window != f.window or r.keepalive or r.zwp:
        return None
    if f.dupacks == 0:
        f.dupack_of = seg.stream.last_ack_no[seg.d]
    f.dupacks += 1
    return f"#{f.dupacks} of packet {f.dupack_of}"


@rule("out-of-order", "TCP Out-Of-Order", Severity.WARNING, (BACK,),
      "Out-of-order: this segment fills a gap that later data already skipped over, and it arrived "
      "within 3 ms of that data, too soon to be a retransmission.")
def out_of_order(seg: Segment) -> str | None:
    """Going back into a known gap, within 3 ms of the segment that skipped it."""
    hole = seg.hole
    return "" if hole is not None and seg.ts_ns - hole[2] < OUT_OF_ORDER_NS else None


@rule("spurious-retransmission", "TCP Spurious Retransmission", Severity.WARNING, (BACK,),
      "Spurious retransmission: this segment resends data the receiver had already acknowledged.")
def spurious_retransmission(seg: Segment) -> str | None:
    """Going back outside any known gap, resending what the receiver had acknowledged."""
    if not seg.goes_back or seg.hole is not None or not seg.acked_already:
        return None
    return "the receiver had acknowledged it"


@rule("fast-retransmission", "TCP Fast Retransmission", Severity.WARNING, (BACK,),
      "Fast retransmission: a retransmission of the data the receiver asked for again with two or "
      "more duplicate ACKs, sent without waiting for the retransmission timer.")
def fast_retransmission(seg: Segment) -> str | None:
    """Going back outside any gap, not yet acknowledged, exactly where the duplicate ACKs point."""
    if not seg.goes_back or seg.hole is not None or seg.acked_already or not seg.answers_dupacks:
        return None
    return f"after {seg.r.dupacks} duplicate ACKs"


@rule("retransmission", "TCP Retransmission", Severity.WARNING, (BACK,),
      "Retransmission: this segment's sequence range was already sent earlier in this direction "
      "and the sender has not seen it acknowledged.")
def retransmission(seg: Segment) -> str | None:
    """Going back: into a gap later than 3 ms, or resending unacknowledged data with no dup-ACK request."""
    if not seg.goes_back:
        return None
    hole = seg.hole
    if hole is not None:
        return "" if seg.ts_ns - hole[2] >= OUT_OF_ORDER_NS else None
    return None if seg.acked_already or seg.answers_dupacks else ""


@rule("window-full", "TCP Window Full", Severity.WARNING, (DATA, BACK),
      "Window full: this segment fills the receive window the peer last advertised, so the sender "
      "must wait for an ACK or a window update before sending more.")
def window_full(seg: Segment) -> str | None:
    """Data ending exactly at the edge of the peer's advertised window."""
    r = seg.r
    if (seg.seglen == 0 or seg.control or r.window_bytes is None or r.last_ack is None or seg.probe
            or seg.end != (r.last_ack + r.window_bytes) & MASK):
        return None
    return f"{r.window_bytes} bytes in flight"


@rule("ack-unseen", "TCP ACKed unseen segment", Severity.NOTE, KINDS,
      "ACKed unseen segment: this acknowledges data that was never captured in the other direction.")
def ack_unseen(seg: Segment) -> str | None:
    """An acknowledgment beyond everything captured from the peer."""
    nxt = seg.r.next_seq
    if not seg.flags & ACK or nxt is None or not after(seg.ack, nxt):
        return None
    return f"{(seg.ack - nxt) & MASK} bytes beyond what was captured"


