"""One packet as a row of the packet list: :class:`PacketSummary`, its text line and its JSON form; and the
pieces :meth:`netlens.capture.store.PacketStore.summaries` builds rows from.

Every string in a summary is already escaped for the terminal (no control
characters); render it with ``rich.text.Text(...)``, never as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from netlens.capture.frames import Other, Tcp
from netlens.display import endpoint
from netlens.textsafe import safe_bytes, safe_str

if TYPE_CHECKING:
    from netlens.capture.protocols import Session
    from netlens.capture.streams import Stream

#: Payload bytes a row shows when nothing names them.
PREVIEW_BYTES = 40
_PRINTABLE = bytes(range(0x20, 0x7F))
#: A protocol session's ``describe(direction, seq, length, ts_ns)`` of one direction: ``(seq, length, ts_ns)``.
Describe = Callable[[int, int, int], "str | None"]
#: What a row needs of its stream and direction: source and destination host, stream id, direction, this
#: direction's and the other's ISN (None: not known), window-scale shift, the owner protocol's describe().
Side = tuple[str, str, int, int, "int | None", "int | None", "int | None", "Describe | None"]
#: A stream's client port and address (they tell a row's direction), then its two :data:`Side`.
StreamSides = tuple[int, bytes, Side, Side]


class PacketSummary(NamedTuple):
    """The packet-list row of packet ``no``.

    ``seq``/``ack`` are relative to each direction's first sequence number
    (Wireshark-style), ``win`` is the window in bytes (scaled once the
    handshake showed the window-scale option), ``len`` is the TCP payload
    length. Non-TCP frames have ``proto`` other than ``"TCP"`` and None for
    the TCP fields.
    """

    no: int
    #: Capture time, epoch seconds (same clock as ``time.time()``).
    time: float
    #: Seconds since the first packet of the capture.
    rel_time: float
    proto: str
    src: str
    sport: int | None
    dst: str
    dport: int | None
    #: TCP flags as scapy prints them: ``S``, ``SA``, ``A``, ``PA``, ``FA``, ``R``, ``RA``...
    flags: str
    seq: int | None
    ack: int | None
    win: int | None
    len: int | None
    info: str
    #: Short names of the analysis flags (see ``netlens.capture.analysis.RULES``).
    analysis: tuple[str, ...]
    #: Stream id (None for non-TCP frames) and direction (0 client→server, 1 server→client).
    stream: int | None
    direction: int | None
    #: Bytes of the frame as captured.
    length: int
    #: The worst severity among its analysis flags (a ``netlens.capture.analysis.Severity``; 0: none).
    severity: int = 0

    @property
    def source(self) -> str:
        """``host:port`` (or just the host when there is no port)."""
        return endpoint(self.src, self.sport) if self.sport is not None else self.src

    @property
    def destination(self) -> str:
        """``host:port`` (or just the host when there is no port)."""
        return endpoint(self.dst, self.dport) if self.dport is not None else self.dst

    def line(self, absolute: bool = False) -> str:
        """One tshark-like text line: number, time, addresses, flags, numbers, info, analysis marks."""
        when = f"{self.time:.6f}" if absolute else f"{self.rel_time:11.6f}"
        head = f"{self.no:>7} {when}"
        if self.src or self.dst:
            head += f" {self.source} → {self.destination}"
        if self.seq is not None:  # a decoded segment (a frame too broken to decode has no numbers to show)
            body = f" {self.flags or '-':<3} seq={self.seq} ack={self.ack} win={self.win} len={self.len}"
        else:
            body = f" {self.proto}"
        tail = f" {self.info}" if self.info else ""
        marks = "".join(f" [{name}]" for name in self.analysis)
        return head + body + tail + marks

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``netlens capture --json`` prints for this packet."""
        return {
            "no": self.no,
            "time": self.time,
            "rel_time": round(self.rel_time, 9),
            "proto": self.proto,
            "src": self.src,
            "sport": self.sport,
            "dst": self.dst,
            "dport": self.dport,
            "flags": self.flags,
            "seq": self.seq,
            "ack": self.ack,
            "win": self.win,
            "len": self.len,
            "info": self.info,
            "analysis": list(self.analysis),
            "stream": self.stream,
            "length": self.length,
        }


def stream_sides(stream: Stream | None) -> StreamSides | None:
    """What the rows of ``stream`` need of it (None: no stream). Valid until the stream is analysed further."""
    if stream is None:
        return None
    hosts, dirs, scale = stream.hosts, stream.dirs, stream.scale
    apps = stream.apps
    session = apps.owner[1] if apps is not None and apps.owner is not None else None
    describe = [None if session is None or not _describes(session, d) else partial(session.describe, d)
                for d in (0, 1)]
    return (stream.client_port, stream.client_ip,
            (hosts[0], hosts[1], stream.id, 0, dirs[0].base, dirs[1].base, scale[0], describe[0]),
            (hosts[1], hosts[0], stream.id, 1, dirs[1].base, dirs[0].base, scale[1], describe[1]))


def _describes(session: Session, direction: int) -> bool:
    """The session may describe packets of ``direction`` (its optional ``describes(direction)``; without it,
    every direction)."""
    describes = getattr(session, "describes", None)
    return True if describes is None else bool(describes(direction))


def payload_preview(frame: bytes, start: int, length: int) -> str:
    """The info column of a payload nothing names: its first bytes (``length`` of them from ``start``), quoted."""
    data = frame[start:start + length if length <= PREVIEW_BYTES else start + PREVIEW_BYTES]
    # Printable ASCII needs no escaping (the common case, and 10x cheaper to check).
    text = data.decode("ascii") if not data.translate(None, _PRINTABLE) else safe_bytes(data)
    return f"'{text}'" if length <= PREVIEW_BYTES else f"'{text}'…"


def segment_info(completed_in: int, stream: Stream | None) -> str:
    """The info column of a segment of ``stream`` that carried part of a message completed in packet
    ``completed_in`` (0: not yet)."""
    apps = stream.apps if stream is not None else None
    name = apps.protocol_name() if apps is not None else "application"
    if completed_in:
        return f"[segment of a {name} message, reassembled in #{completed_in}]"
    return f"[segment of an unfinished {name} message]"


def other_row(no: int, ts_ns: int, rel: float, other: Tcp | Other, length: int) -> PacketSummary:
    """The row of a frame that is not a TCP segment netlens decodes (``length``: the frame's bytes)."""
    assert isinstance(other, Other)
    return PacketSummary(no, ts_ns / 1e9, rel, other.proto, other.src, other.sport, other.dst, other.dport, "",
                         None, None, None, None, safe_str(other.info), (), None, None, length)
