"""``netlens read --fields``: chosen fields of every packet, tab-separated, like ``tshark -T fields -e ...``.

Only what is asked for is computed: the header fields come from one ``struct``
decode of the frame plus the stream's state, the analysis fields from the
store's marks (the full analysis runs for every packet either way), and the
costly ones — ``info`` (payload previews, application messages) and the
statistics (ACK RTT, bytes in flight) — only when named. Every value is text
netlens made or already escaped (wire bytes never reach the output unescaped),
so a tab or a newline never splits a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from netlens.capture.analysis import Mark
from netlens.capture.frames import ACK, FLAG_LETTERS, Other, Tcp, decode, format_ip
from netlens.capture.store import PacketStore
from netlens.capture.streams import Stream, direction_of, relative_numbers
from netlens.errors import UserError
from netlens.textsafe import safe_str

#: Every field ``--fields`` knows, with what it holds (the names are those of ``--json``, plus a few).
FIELDS: dict[str, str] = {
    "no": "frame number (the file's, 1-based)",
    "time": "capture time, epoch seconds with nanoseconds (tshark's frame.time_epoch)",
    "rel_time": "seconds since the first packet",
    "proto": "TCP, or what the frame is instead",
    "src": "source address",
    "sport": "source port",
    "dst": "destination address",
    "dport": "destination port",
    "flags": "TCP flags as letters (S, SA, PA, FA, R...)",
    "seq": "relative sequence number",
    "ack": "relative acknowledgment number (0 without ACK)",
    "win": "window in bytes (scaled once the handshake showed the option; tshark's tcp.window_size)",
    "len": "TCP payload length (from the IP header)",
    "stream": "stream number, 1-based in order of first packet (tshark's tcp.stream + 1)",
    "analysis": "analysis flags, comma-separated short names",
    "expert": "the analysis flags as Wireshark-style messages with their details, '; '-separated",
    "rule": "each analysis flag's rule in a sentence, '; '-separated",
    "severity": "worst severity of the flags: 0 none, 1 note, 2 warning, 3 error",
    "length": "bytes of the frame as captured",
    "info": "the packet list's info column (options, application messages, payload preview)",
    "ack_rtt": "seconds since the segment this ACKs (tshark's tcp.analysis.ack_rtt)",
    "acks_frame": "the frame this ACKs (tshark's tcp.analysis.acks_frame)",
    "bytes_in_flight": "bytes sent and not yet acknowledged (tshark's tcp.analysis.bytes_in_flight)",
    "window_size": "the calculated window of the statistics (tshark's tcp.window_size)",
}
#: Fields that need the statistics tracker (``netlens.capture.stats``).
STATS_FIELDS = frozenset({"ack_rtt", "acks_frame", "bytes_in_flight", "window_size"})
#: What ``--fields`` prints when given ``default``: the fields the benchmark asks tshark for.
DEFAULT_FIELDS = ("no", "time", "src", "sport", "dst", "dport", "flags", "seq", "ack", "win", "len", "stream",
                  "analysis", "expert")


def parse_fields(text: str) -> tuple[str, ...]:
    """The field names of a ``--fields`` argument (comma-separated; ``default`` stands for :data:`DEFAULT_FIELDS`)."""
    names: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if name:
            names.extend(DEFAULT_FIELDS if name == "default" else (name,))
    unknown = [name for name in names if name not in FIELDS]
    if unknown or not names:
        raise UserError(f"--fields takes a comma-separated list of {', '.join(FIELDS)} (or default); "
                        f"{'not ' + ', '.join(unknown) if unknown else 'none was given'}.")
    return tuple(names)


#: The fields every row has, in this order (the rest are computed only when asked for); ``time`` is two
#: values (seconds, nanoseconds), so a row has one value more than this has names.
_CHEAP = ("no", "time", "proto", "src", "sport", "dst", "dport", "flags", "seq", "ack", "win", "len", "stream",
          "analysis", "expert", "length")


def _text(value: object) -> str:
    return "" if value is None else str(value)


class FieldsFormatter:
    """Turns ``(no, ts_ns, frame)`` of an analysed packet into its ``--fields`` line (with the newline).

    ``stats`` gives the statistics fields of a packet (``netlens.capture.stats.report.json_fields``);
    it is needed only when one of :data:`STATS_FIELDS` is asked for. ``stream_ids`` maps the store's
    stream numbers to those printed (a worker of the parallel reader numbers its streams apart).
    """

    def __init__(self, names: Sequence[str], store: PacketStore,
                 stats: Callable[[int], dict[str, Any]] | None = None,
                 stream_ids: dict[int, int] | None = None) -> None:
        self.names = tuple(names)
        self.store = store
        self.stream_ids = stream_ids
        self._linktype = store.ring.linktype
        self._stats = stats
        extra = [name for name in dict.fromkeys(self.names) if name not in _CHEAP]
        #: The costly fields asked for, each computed from (no, ts_ns, marks); their values follow the cheap ones.
        self._extras = [self._getter(name) for name in extra]
        # Where each field's values are in a row (time takes two), and one %-format for the whole line:
        # formatting a line is then a single C call, whatever the fields.
        slots: dict[str, tuple[int, ...]] = {}
        position = 0
        for name in (*_CHEAP, *extra):
            width = 2 if name == "time" else 1
            slots[name] = tuple(range(position, position + width))
            position += width
        indices = [index for name in self.names for index in slots[name]]
        self._format = "\t".join("%d.%09d" if name == "time" else "%s" for name in self.names) + "\n"
        #: The values of the fields asked for, in their order, out of a row.
        self._pick: Callable[[list[Any]], tuple[Any, ...]] = (
            itemgetter(*indices) if len(indices) > 1 else lambda values: (values[indices[0]],))
        #: Per stream of the store: client host, server host, and its printed number (int and text).
        self._ends: dict[int, tuple[tuple[str, str], int, str]] = {}

    def _getter(self, name: str) -> Callable[[int, int, list[Mark]], str]:
        """How one costly field is computed (the statistics and the info column reach back to the store)."""
        getters: dict[str, Callable[[int, int, list[Mark]], str]] = {
            "rel_time": self._rel_time,
            "rule": lambda no, ts_ns, marks: "; ".join(mark.rule for mark in marks),
            "severity": lambda no, ts_ns, marks: str(max((int(mark.severity) for mark in marks), default=0)),
            "info": lambda no, ts_ns, marks: self.store.summary(no).info,
        }
        if name in getters:
            return getters[name]
        if self._stats is None:
            raise ValueError(f"the field {name} needs the statistics")
        return lambda no, ts_ns, marks: self._stat(no, name)

    def _rel_time(self, no: int, ts_ns: int, marks: list[Mark]) -> str:
        origin = self.store.ring.first_ts_ns or ts_ns
        return f"{(ts_ns - origin) / 1e9:.9f}"

    def _stat(self, no: int, name: str) -> str:
        assert self._stats is not None
        value = self._stats(no)[name]
        if name == "ack_rtt" and value is not None:
            return f"{value:.9f}"
        return _text(value)

    def line(self, no: int, ts_ns: int, frame: bytes) -> tuple[int | None, str]:
        """The stream number of packet ``no`` (analysed already) and its line: values tab-separated, a newline."""
        tcp = decode(frame, self._linktype)
        seconds, fraction = divmod(ts_ns, 1_000_000_000)
        marks: list[Mark] = []
        stream_id = None
        row: list[Any]
        if type(tcp) is not Tcp:
            assert isinstance(tcp, Other)
            row = [no, seconds, fraction, tcp.proto, tcp.src, _text(tcp.sport), tcp.dst, _text(tcp.dport), "", "", "",
                   "", "", "", "", "", len(frame)]
        else:
            store = self.store
            marks = store.analysis(no)
            stream = store.stream_of(no)
            if stream is None:
                src, dst, printed = format_ip(tcp.src), format_ip(tcp.dst), ""
                seq, ack, win = tcp.seq, tcp.ack if tcp.flags & ACK else 0, tcp.window
            else:
                d = direction_of(stream, tcp)
                ends = self._ends.get(stream.id)
                if ends is None:
                    ends = self._ends[stream.id] = self._stream_ends(stream)
                hosts, stream_id, printed = ends
                src, dst = hosts[d], hosts[1 - d]
                seq, ack, win = relative_numbers(stream, d, tcp)
            analysis = expert = ""
            if marks:
                analysis = ",".join(mark.name for mark in marks)
                expert = "; ".join(safe_str(str(mark)) for mark in marks)
            row = [no, seconds, fraction, "TCP", src, tcp.sport, dst, tcp.dport, FLAG_LETTERS[tcp.flags], seq, ack,
                   win, tcp.payload_length, printed, analysis, expert, len(frame)]
        if self._extras:
            row += [get(no, ts_ns, marks) for get in self._extras]
        return stream_id, self._format % self._pick(row)

    def _stream_ends(self, stream: Stream) -> tuple[tuple[str, str], int, str]:
        """(Client host, server host), and the number printed for ``stream`` (as an int and as text)."""
        ids = self.stream_ids
        number = stream.id if ids is None else ids[stream.id]
        return (stream.key.client[0], stream.key.server[0]), number, str(number)
