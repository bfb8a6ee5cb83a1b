"""One packet as a row of the packet list: :class:`PacketSummary`, its text line and its JSON form.

Every string in a summary is already escaped for the terminal (no control
characters); render it with ``rich.text.Text(...)``, never as markup.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from netlens.display import endpoint


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
