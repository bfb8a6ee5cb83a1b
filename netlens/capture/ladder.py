"""Ladder (sequence) diagram of one stream: data for the UI to draw, and a plain-text renderer.

The model is two endpoints and arrows in capture order; each arrow carries
its time, direction, packet number, TCP flags, numbers, payload length, the
packet's analysis flags and their worst severity, and a label built from them
(``SYN seq=0``, ``PSH,ACK len=146 search request 'morpheus'``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netlens.capture.frames import FLAG_NAMES, SYN
from netlens.capture.summary import PacketSummary

_LETTER_BITS = {letter: 1 << i for i, letter in enumerate("FSRPAUECN")}


@dataclass(frozen=True)
class Arrow:
    """One packet on the ladder."""

    no: int
    #: Epoch seconds, and seconds since the stream's first packet.
    time: float
    rel_time: float
    #: 0: client → server, 1: server → client.
    direction: int
    label: str
    marks: tuple[str, ...]
    #: TCP flag bits (``netlens.capture.frames.SYN``...), payload bytes, worst severity of ``marks``.
    flags: int = 0
    length: int = 0
    severity: int = 0


@dataclass(frozen=True)
class Ladder:
    """A stream's ladder diagram: the client on the left, the server on the right."""

    stream: int
    client: str
    server: str
    arrows: tuple[Arrow, ...]

    def render(self, width: int = 100) -> list[str]:
        """Plain-text diagram, one line per arrow, at most ``width`` columns wide."""
        return render_ladder(self, width)


def flag_bits(letters: str) -> int:
    """``"PA"`` (a summary's flags) -> the TCP flag bits."""
    bits = 0
    for letter in letters:
        bits |= _LETTER_BITS.get(letter, 0)
    return bits


def arrow_label(summary: PacketSummary) -> str:
    """The arrow's text: ``SYN seq=0``, ``SYN,ACK seq=0 ack=1``, ``FIN,ACK seq=147 ack=149``,
    ``PSH,ACK len=146 search request 'morpheus'``."""
    bits = flag_bits(summary.flags)
    names = FLAG_NAMES[bits] or "(no flags)"
    if bits & SYN:
        text = f"{names} seq={summary.seq}" + (f" ack={summary.ack}" if "A" in summary.flags else "")
    elif summary.len:
        text = f"{names} len={summary.len}"
        if summary.info:
            text += f" {summary.info}"
    else:
        text = f"{names} seq={summary.seq} ack={summary.ack}"
        if summary.info:
            text += f" {summary.info}"
    return text


def ladder(stream_id: int, client: str, server: str, rows: Iterable[PacketSummary]) -> Ladder:
    """Build the ladder of one stream from its packets' summaries (capture order)."""
    arrows = []
    start: float | None = None
    for summary in rows:
        if start is None:
            start = summary.time
        arrows.append(Arrow(summary.no, summary.time, summary.time - start, summary.direction or 0,
                            arrow_label(summary), summary.analysis, flag_bits(summary.flags), summary.len or 0,
                            summary.severity))
    return Ladder(stream_id, client, server, tuple(arrows))


def render_ladder(model: Ladder, width: int = 100) -> list[str]:
    """Text like ``#1  0.000000 |---- SYN seq=0 ---->|`` between two labelled columns."""
    prefix_width = 20  # "#123456 12.345678  " before the left rail
    lane = max(24, width - prefix_width - 2)
    left = f"client {model.client}"
    right = f"server {model.server}"
    header = " " * prefix_width + left + " " * max(1, lane + 2 - len(left) - len(right)) + right
    lines = [header]
    for arrow in model.arrows:
        label = arrow.label + "".join(f" [{m}]" for m in arrow.marks)
        room = lane - 6
        if len(label) > room:
            label = label[: room - 1] + "…"
        body = f" {label} "
        dashes = lane - 2 - len(body)
        left_dashes = dashes // 2
        right_dashes = dashes - left_dashes
        if arrow.direction == 0:
            line = "|" + "-" * left_dashes + body + "-" * (right_dashes - 1) + ">|"
        else:
            line = "|<" + "-" * (left_dashes - 1) + body + "-" * right_dashes + "|"
        lines.append(f"{'#' + str(arrow.no):>8} {arrow.rel_time:10.6f} {line}")
    return lines
