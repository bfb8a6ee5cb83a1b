"""The analysis rules, one function each, in the order they run on every segment.

A rule reads the segment's context (:class:`Segment`) and returns the mark's
detail text when it applies ("" for no detail), None when it does not. The
rules and their order are Wireshark's (``tcp_analyze_sequence_number``), so a
capture reads the same in both; where netlens deliberately differs, the rule's
sentence says so. A rule may keep the bookkeeping only it reads (the dup-ACK
count); the general sequence, acknowledgment and window state advances after
all rules ran (:func:`netlens.capture.analysis.advance`). To change a rule,
change its function; to add one, add a function here: its place in this file
is its place in the order.
"""

from __future__ import annotations

from netlens.capture.analysis.marks import Severity, rule
from netlens.capture.analysis.segment import BACK, CONTROL, DATA, EMPTY, KINDS, MASK, Segment, after, repeats_last_frame
from netlens.capture.frames import ACK, FIN, RST, SYN

#: A fast retransmission follows the last duplicate ACK within this time (Wireshark's 20 ms).
FAST_RETRANSMISSION_NS = 20_000_000
#: Without a handshake round trip to go by, a segment filling a gap this soon is out of order.
OUT_OF_ORDER_NS = 3_000_000


@rule("capture-duplicate", "TCP Capture Duplicate", Severity.NOTE, KINDS,
      "Capture duplicate: the same frame again (same IP id, same TCP header and payload) within 5 ms "
      "(0.2 ms without an IPv4 id to compare), as a capture on two interfaces or a mirror port records "
      "it; it is not network behaviour, so no "
      "other rule looks at it (Wireshark analyses it again and calls it a retransmission or a duplicate "
      "ACK).")
def capture_duplicate(seg: Segment) -> str | None:
    """The previous frame in this direction, byte for byte, a few milliseconds earlier."""
    f = seg.f
    if seg.ts_ns - f.dup_ts > seg.dup_window or not f.dup_ts:
        return None
    if not repeats_last_frame(f, seg.ip_id, seg.frame, seg.tcp_offset):
        return None
    seg.stop = True
    return copy_detail(seg.ts_ns - f.dup_ts)


def copy_detail(gap_ns: int) -> str:
    """The capture-duplicate mark's detail: how long after the first copy this one came, in whole µs."""
    if gap_ns < 0:  # time went back (a merged capture): the float form writes "-0"
        return f"{gap_ns / 1000:.0f} µs after the first copy"
    # Rounded half to even, as f"{gap_ns / 1000:.0f}" does, in integers (twice as cheap; every copy has one).
    return f"{(gap_ns + 500) // 1000 - (gap_ns % 2000 == 500)} µs after the first copy"


@rule("reset", "TCP RST", Severity.ERROR, (CONTROL, BACK),
      "Reset: the RST flag aborts the connection at once; data still queued is discarded and no FIN "
      "exchange follows.")
def reset(seg: Segment) -> str | None:
    """A segment with RST."""
    if not seg.flags & RST:
        return None
    return "sent by the " + ("client" if seg.d == 0 else "server")


@rule("zero-window-probe", "TCP ZeroWindowProbe", Severity.NOTE, KINDS,
      "Zero-window probe: one byte sent at the next sequence number while the peer's window is zero, "
      "to learn whether the window has opened.")
def zero_window_probe(seg: Segment) -> str | None:
    """One byte at the next sequence number while the peer's window is zero; the window rules stop here."""
    if seg.seglen != 1 or seg.seq != seg.nxt or seg.r.window != 0:
        return None
    seg.skip_rest = True
    return ""


@rule("zero-window", "TCP ZeroWindow", Severity.WARNING, (DATA, EMPTY, BACK),
      "Zero window: the sender of this segment advertises a receive window of 0, so its peer must stop "
      "sending (the receiving application is not reading fast enough).")
def zero_window(seg: Segment) -> str | None:
    """A window of zero advertised by a segment without SYN, FIN or RST."""
    return "" if seg.window == 0 and not seg.control and not seg.skip_rest else None


@rule("lost-segment", "TCP Previous segment not captured", Severity.WARNING, KINDS,
      "Previous segment not captured: this segment starts beyond everything seen so far in this "
      "direction, so some data was sent but is missing from the capture.")
def lost_segment(seg: Segment) -> str | None:
    """The segment starts after the next expected byte (RSTs aside)."""
    nxt = seg.nxt
    if not nxt or not after(seg.seq, nxt) or seg.flags & RST or seg.skip_rest:
        return None
    return f"{(seg.seq - nxt) & MASK} bytes missing before this segment"


@rule("keep-alive", "TCP Keep-Alive", Severity.NOTE, (DATA, EMPTY),
      "Keep-alive: an empty or one-byte segment whose sequence number is one below the next expected, "
      "sent to check that the peer is still there (Linux also probes a zero window this way).")
def keep_alive(seg: Segment) -> str | None:
    """At most one byte, one below the next expected sequence number."""
    return "" if seg.keepalive and not seg.skip_rest else None


@rule("window-update", "TCP Window Update", Severity.NOTE, (EMPTY,),
      "Window update: an empty segment that changes only the advertised window (same sequence and "
      "acknowledgment numbers), telling the peer how much it may now send.")
def window_update(seg: Segment) -> str | None:
    """A repeated empty ACK whose (non-zero) window changed."""
    f = seg.f
    if not seg.repeat or seg.window == 0 or seg.window == f.window or seg.skip_rest:
        return None
    old = seg.window_bytes(f.window, seg.d, f.last_syn)
    return f"window {old} → {seg.window_bytes(seg.window, seg.d, False)} bytes"


@rule("window-full", "TCP Window Full", Severity.WARNING, (DATA, BACK),
      "Window full: this segment fills the receive window the peer last advertised, so the sender "
      "must wait for an ACK or a window update before sending more. Checked only once the peer's "
      "window scale is known (from the handshake), as Wireshark does: a connection captured mid-way "
      "is never marked.")
def window_full(seg: Segment) -> str | None:
    """Data ending exactly at the edge of the peer's advertised window (scale known)."""
    if seg.skip_rest or seg.seglen == 0 or seg.control:
        return None
    window = seg.peer_window_bytes()
    if window is None or seg.end != (seg.r.lastack + window) & MASK:
        return None
    return f"{window} bytes in flight"


@rule("keep-alive-ack", "TCP Keep-Alive ACK", Severity.NOTE, (EMPTY,),
      "Keep-alive ACK: the peer's answer to a keep-alive, repeating its last acknowledgment.")
def keep_alive_ack(seg: Segment) -> str | None:
    """A repeated empty ACK, same (non-zero) window, right after the peer's keep-alive."""
    if seg.skip_rest or not seg.repeat or seg.window == 0 or seg.window != seg.f.window or not seg.r.keepalive:
        return None
    seg.skip_rest = True
    return ""


@rule("zero-window-probe-ack", "TCP ZeroWindowProbeAck", Severity.NOTE, (EMPTY,),
      "Zero-window probe ACK: the receiver's answer to a zero-window probe, repeating its last "
      "acknowledgment and its zero window.")
def zero_window_probe_ack(seg: Segment) -> str | None:
    """A repeated empty ACK, still a zero window, right after the peer's zero-window probe."""
    if seg.skip_rest or not seg.repeat or seg.window != 0 or seg.f.window != 0 or not seg.r.zwp:
        return None
    seg.skip_rest = True
    return ""


@rule("dup-ack", "TCP Dup ACK", Severity.WARNING, (EMPTY,),
      "Duplicate ACK: an empty segment repeating this side's previous acknowledgment number and window, "
      "which a receiver sends for each segment that arrives after a gap.")
def dup_ack(seg: Segment) -> str | None:
    """A repeated empty ACK, same (non-zero) window; counts the run of duplicates."""
    f = seg.f
    if seg.skip_rest or not seg.repeat or seg.window == 0 or seg.window != f.window:
        return None
    f.dupacks += 1
    return f"#{f.dupacks} of packet {f.nondup_no}"


@rule("ack-unseen", "TCP ACKed unseen segment", Severity.NOTE, KINDS,
      "ACKed unseen segment: this acknowledges data that was never captured in the other direction "
      "(beyond the highest byte captured there without a gap; marked once per gap, not again on every "
      "later ACK).")
def ack_unseen(seg: Segment) -> str | None:
    """An acknowledgment beyond the highest contiguous byte captured from the peer; the mark moves that edge."""
    r = seg.r
    if not r.maxack or not after(seg.ack, r.maxack) or not seg.flags & ACK:
        return None
    beyond = (seg.ack - r.maxack) & MASK
    r.maxack = r.nextseq
    r.unseen_stale = True
    # Mark a gap once, not on every later packet repeating the ACK: again only after the peer
    # sent something other than a duplicate ACK.
    if r.unseen_told:
        return None
    r.unseen_told = True
    return f"{beyond} bytes beyond what was captured"


def _resends(seg: Segment) -> bool:
    """Carries data (or SYN/FIN) and is not a keep-alive: the retransmission rules look at it."""
    return (seg.seglen > 0 or bool(seg.flags & (SYN | FIN))) and not seg.keepalive


@rule("spurious-retransmission", "TCP Spurious Retransmission", Severity.WARNING, (BACK,),
      "Spurious retransmission: this segment resends data the receiver had already acknowledged "
      "(its last ACK covers all of it), even when it also fills a gap in the capture.")
def spurious_retransmission(seg: Segment) -> str | None:
    """Data the receiver's last acknowledgment already covers."""
    lastack = seg.r.lastack
    if not _resends(seg) or seg.seglen == 0 or not lastack or after((seg.seq + seg.seglen) & MASK, lastack):
        return None
    return "the receiver had acknowledged it"


@rule("fast-retransmission", "TCP Fast Retransmission", Severity.WARNING, (BACK,),
      "Fast retransmission: a resend of exactly the data the receiver asked for again with two or more "
      "duplicate ACKs, the last of them under 20 ms earlier, so the sender did not wait for its timer "
      "(Wireshark also says so right after an ACKed-unseen mark, when no duplicate ACK was sent; netlens "
      "does not, and says so in that segment's mark).")
def fast_retransmission(seg: Segment) -> str | None:
    """Behind, at the acknowledged sequence number, after ≥ 2 dup ACKs, within 20 ms of the last."""
    r = seg.r
    if ("spurious-retransmission" in seg.marked or not _resends(seg) or not seg.behind or r.dupacks < 2
            or r.lastack != seg.seq or seg.ts_ns - r.lastack_ts >= FAST_RETRANSMISSION_NS):
        return None
    return f"after {r.dupacks} duplicate ACKs"


@rule("out-of-order", "TCP Out-Of-Order", Severity.WARNING, (BACK,),
      "Out-of-order: this segment starts before data already seen in this direction and arrived within "
      "one handshake round trip (3 ms if the handshake was not captured) of the highest data, too soon "
      "to be a retransmission; Wireshark's rule, which also calls a SACK-driven resend this quick "
      "out of order.")
def out_of_order(seg: Segment) -> str | None:
    """Behind, soon after the highest data, and not ending exactly where the highest data ended."""
    if any(name in seg.marked for name in ("spurious-retransmission", "fast-retransmission")):
        return None
    if not _resends(seg) or not seg.behind:
        return None
    threshold = seg.stream.first_rtt or OUT_OF_ORDER_NS
    if seg.ts_ns - seg.f.next_ts >= threshold or seg.nxt == seg.end:
        return None
    return _wireshark_says_fast(seg)


@rule("retransmission", "TCP Retransmission", Severity.WARNING, (BACK,),
      "Retransmission: this segment's sequence range was already sent earlier in this direction (it "
      "starts before the highest data seen) and it is none of the kinds above: not yet acknowledged, "
      "not asked for by duplicate ACKs, not a quick reordering.")
def retransmission(seg: Segment) -> str | None:
    """Behind, and not marked spurious, fast or out of order."""
    if any(name in seg.marked for name in ("spurious-retransmission", "fast-retransmission", "out-of-order")):
        return None
    return _wireshark_says_fast(seg) if _resends(seg) and seg.behind else None


def _wireshark_says_fast(seg: Segment) -> str:
    """Where Wireshark differs: after an ACKed-unseen mark its duplicate-ACK count of the receiver
    holds -1, read as a huge unsigned number, so it calls the next resend at the acknowledged
    sequence number a fast retransmission though no duplicate ACK was sent."""
    r = seg.r
    if r.unseen_stale and r.lastack == seg.seq and seg.ts_ns - r.lastack_ts < FAST_RETRANSMISSION_NS:
        return ("Wireshark calls this a fast retransmission: after its ACKed-unseen mark it counts the "
                "receiver's duplicate ACKs as -1 read unsigned, though none was sent")
    return ""
