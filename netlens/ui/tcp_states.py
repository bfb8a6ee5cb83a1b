"""One connection's trip through the TCP state machine, as Rich text: the timeline and the lit diagram.

The timeline lists each transition the kernel logged (``inet_sock_set_state``)
with its offset from the first, what caused it (an application call, a timer,
or a packet: then the packet's number in the capture, found by time and
flags), and TIME_WAIT folded in from sock_diag with its remaining timer.

The diagram is RFC 793's state machine laid out as the classic figure, in
text, with the states this connection went through lit and the current one
highlighted: students look rather than read. State names are the kernel's
(``SYN_RECV``, ``FIN_WAIT1``, ``CLOSE``...), as the timeline and ``ss`` show them.
Everything here is plain Rich; no textual.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from rich.text import Text

from netlens.trace.timeline import SocketTimeline, Transition

#: The classic diagram. ``CLOSE`` appears twice: where a socket starts (top) and where it ends (bottom).
DIAGRAM = (
    "                   CLOSE",
    "       listen() ┌────┴────┐ connect()",
    "             LISTEN   SYN_SENT",
    "         SYN in │         │ SYN in",
    "            SYN_RECV ◄────┤",
    "         ACK in └────┬────┘ SYN-ACK in",
    "                ESTABLISHED",
    "      close() ┌──────┴──────┐ FIN in",
    "          FIN_WAIT1    CLOSE_WAIT",
    " ACK in ┌─────┴─────┐ FIN   │ close()",
    "    FIN_WAIT2   CLOSING  LAST_ACK",
    " FIN in └─────┬─────┘ ACK   │ ACK in",
    "          TIME_WAIT         │",
    "   2MSL timer └──► CLOSE ◄──┘",
)
_NAME = re.compile(r"\b(CLOSE|LISTEN|SYN_SENT|SYN_RECV|ESTABLISHED|FIN_WAIT1|FIN_WAIT2|CLOSING|TIME_WAIT|"
                   r"CLOSE_WAIT|LAST_ACK)\b")
LIT = "bold green"
CURRENT = "bold black on yellow"
UNVISITED = "dim"

#: What moves the machine from one state to the next: ("packet", flags the packet has, words) or
#: ("app"/"timer", "", words). Transitions missing here are described as what they are.
CAUSES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("CLOSE", "LISTEN"): ("app", "", "listen()"),
    ("CLOSE", "SYN_SENT"): ("app", "", "connect(): our SYN goes out"),
    ("LISTEN", "SYN_RECV"): ("packet", "S", "the SYN"),
    ("SYN_SENT", "SYN_RECV"): ("packet", "S", "the peer's SYN (simultaneous open)"),
    ("SYN_SENT", "ESTABLISHED"): ("packet", "SA", "the SYN-ACK"),
    ("SYN_SENT", "CLOSE"): ("packet", "R", "the RST: connection refused"),
    ("SYN_RECV", "ESTABLISHED"): ("packet", "A", "the ACK of our SYN-ACK"),
    ("ESTABLISHED", "FIN_WAIT1"): ("app", "", "close() or shutdown(): our FIN goes out"),
    ("ESTABLISHED", "CLOSE_WAIT"): ("packet", "F", "the peer's FIN"),
    ("FIN_WAIT1", "FIN_WAIT2"): ("packet", "A", "the ACK of our FIN"),
    ("FIN_WAIT1", "CLOSING"): ("packet", "F", "the peer's FIN, before the ACK of ours"),
    ("FIN_WAIT1", "TIME_WAIT"): ("packet", "F", "the peer's FIN with the ACK of ours"),
    ("FIN_WAIT2", "TIME_WAIT"): ("packet", "F", "the peer's FIN"),
    ("CLOSING", "TIME_WAIT"): ("packet", "A", "the ACK of our FIN"),
    ("CLOSE_WAIT", "LAST_ACK"): ("app", "", "close(): our FIN goes out"),
    ("LAST_ACK", "CLOSE"): ("packet", "A", "the ACK of our FIN"),
    ("TIME_WAIT", "CLOSE"): ("timer", "", "the TIME_WAIT timer expired"),
    ("LISTEN", "CLOSE"): ("app", "", "the listener was closed"),
}
#: How far from a transition its packet may be (seconds): loopback delivers within microseconds,
#: and a state set just before its segment goes out (our FIN) precedes the packet slightly.
PACKET_BEFORE = 1.0
PACKET_AFTER = 0.005


class PacketLike(Protocol):
    """What the timeline reads of a captured packet (``netlens.capture.summary.PacketSummary`` has it)."""

    @property
    def no(self) -> int: ...
    @property
    def time(self) -> float: ...
    @property
    def src(self) -> str: ...
    @property
    def sport(self) -> int | None: ...
    @property
    def flags(self) -> str: ...


def diagram(states: Sequence[str], current: str | None) -> Text:
    """The state machine with ``states`` (visited, in order) lit and ``current`` highlighted."""
    visited = set(states)
    # CLOSE at the top is where a socket starts; at the bottom, where it ends.
    start_closed = bool(states) and states[0] == "CLOSE"
    end_closed = "CLOSE" in states[1:]
    out = Text(no_wrap=True)
    closes_seen = 0
    for row, line in enumerate(DIAGRAM):
        if row:
            out.append("\n")
        position = 0
        for match in _NAME.finditer(line):
            name = match.group(1)
            if name == "CLOSE":
                top = closes_seen == 0
                closes_seen += 1
                lit = start_closed if top else end_closed
                here = current == "CLOSE" and (top != end_closed)
            else:
                lit, here = name in visited, name == current
            out.append(line[position:match.start()], style=UNVISITED)
            out.append(name, style=CURRENT if here else (LIT if lit else UNVISITED))
            position = match.end()
        out.append(line[position:], style=UNVISITED)
    return out


def _inbound(packet: PacketLike, timeline: SocketTimeline) -> bool:
    remote, port = timeline.remote
    return packet.src == remote and packet.sport == port


def cause_packet(step: Transition, timeline: SocketTimeline, packets: Sequence[PacketLike]) -> PacketLike | None:
    """The captured packet that moved the machine at ``step``: from the peer, with the flags, nearest in time."""
    cause = CAUSES.get((step.old, step.new))
    flags = cause[1] if cause is not None and cause[0] == "packet" else ("R" if step.new == "CLOSE" else None)
    if flags is None:
        return None
    best: PacketLike | None = None
    for packet in packets:
        if not step.time - PACKET_BEFORE <= packet.time <= step.time + PACKET_AFTER:
            continue
        if not _inbound(packet, timeline) or not all(flag in packet.flags for flag in flags):
            continue
        if best is None or abs(packet.time - step.time) < abs(best.time - step.time):
            best = packet
    return best


def _why(step: Transition, timeline: SocketTimeline, packets: Sequence[PacketLike]) -> Text:
    cause = CAUSES.get((step.old, step.new))
    packet = cause_packet(step, timeline, packets)
    words = cause[2] if cause is not None else ""
    if step.new == "CLOSE" and cause is None:
        words = "a RST" if packet is not None or any(r[1] == "received" for r in timeline.resets) else "abort"
    text = Text()
    if packet is not None:
        text.append(f"on packet #{packet.no}", style="bold cyan")
        text.append(f", {words}" if words else "")
    elif cause is not None and cause[0] == "packet":
        text.append(f"{words} (not captured)")
    else:
        text.append(words)
    return text


def timeline_text(timeline: SocketTimeline | None, packets: Sequence[PacketLike], now: float) -> Text:
    """The state timeline: one line per transition, its offset, its cause; TIME_WAIT's timer; resets."""
    title = Text("state timeline (kernel tracepoints; TIME_WAIT from sock_diag)", style="bold cyan")
    if timeline is None or not timeline.transitions:
        return Text("\n").join([title, Text("no state change traced for this socket yet (it opened before "
                                            "tracing began, or none happened)", style="dim")])
    steps = timeline.transitions
    origin = steps[0].time
    lines = [title]
    for step in steps:
        line = Text(no_wrap=True)
        line.append(f" +{step.time - origin:9.6f}s  ", style="dim")
        line.append(f"{step.old} → ", style="")
        line.append(step.new, style="bold")
        line.append("  ")
        line.append_text(_why(step, timeline, packets))
        if step.source == "sock_diag":
            line.append("  (sock_diag)", style="dim")
        lines.append(line)
    tw = timeline.timewait
    if tw is not None and tw.gone is None:
        lines.append(Text(f"   {tw.state} timer: {max(0.0, tw.expires - now):.1f} s left", style="yellow"))
    for when, direction, reason in timeline.resets:
        lines.append(Text(f" +{when - origin:9.6f}s  reset {direction}" + (f", reason {reason}" if reason else ""),
                          style="bold red"))
    if timeline.retransmits:
        gaps = ", ".join(f"+{when - origin:.3f}s" for when, _ in timeline.retransmits[-6:])
        lines.append(Text(f" retransmissions: {len(timeline.retransmits)} (at {gaps})", style="magenta"))
    return Text("\n").join(lines)
