"""``netlens conns``: the kernel's view of TCP sockets, like ``ss -tanpi`` with TCP_INFO columns.

The text output is plain aligned lines, as ``ss`` prints: a table widget
measuring 20,000 rows cell by cell took 24 s where ``--json`` takes under 2;
here every row is one ``str.format`` call once the column widths are known
(see ``tests/benchmarks/bench_conns.py``). On a terminal the header and the
``--watch`` statuses are coloured with plain SGR codes, and the Process column
gives way so the others fit the width.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from netlens import DEFAULT_PORT
from netlens.display import endpoint
from netlens.errors import UserError
from netlens.textsafe import safe_str

if TYPE_CHECKING:  # heavy imports stay inside run()
    from netlens.probe import ConnectionRow, Prober, Snapshot, SocketInfo

HELP = "Show TCP sockets as the kernel sees them (like ss -tanpi): state, queues, RTT, cwnd, timers, process."

# (header, right-aligned)
_COLUMNS = (
    ("State", False),
    ("Recv-Q", True),
    ("Send-Q", True),
    ("Local Address:Port", False),
    ("Peer Address:Port", False),
    ("Process", False),
    ("RTT ms", True),
    ("cwnd", True),
    ("unacked", True),
    ("retrans", True),
    ("Timer", False),
)
_HEADER = tuple(name for name, _ in _COLUMNS)
_RIGHT = tuple(right for _, right in _COLUMNS)
_PROCESS = 5  # the column that gives way on a narrow terminal
_MIN_PROCESS = 8
_GAP = "  "
# Which column lights up when a tracked field changes (--watch).
_FIELD_COLUMN = {"state": 0, "recv_q": 1, "send_q": 2, "owners": 5, "unacked": 8, "retransmits": 9, "total_retrans": 9}
# SGR colours for --watch rows, TCPView's: new green, changed yellow, closed red.
_STATUS_SGR = {"new": "1;32", "closed": "2;31"}
_CHANGED_SGR = "1;33"
_HEADER_SGR = "1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``conns`` options to ``parser``."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--port",
        type=int,
        metavar="P",
        default=None,
        help=f"show sockets with port P at either end (default {DEFAULT_PORT}, the server's)",
    )
    which.add_argument("--all", action="store_true", help="show every TCP socket on the machine")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array of sockets (with --watch: one array per line per refresh)",
    )
    parser.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        default=None,
        help="refresh every SECONDS, colouring new/changed/closed rows, until Ctrl-C",
    )


def _endpoint(addr: str, port: int) -> str:
    """``addr:port`` as ss prints it: IPv6 in brackets, port 0 as ``*``."""
    return endpoint(addr, port) if port else endpoint(addr, 0)[:-1] + "*"


def _duration(ms: int) -> str:
    """A timer's time left, short: 200ms, 4.2s, 7m42s."""
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    minutes, seconds = divmod(ms // 1000, 60)
    return f"{minutes}m{seconds:02d}s"


def _text(value: int | None) -> str:
    return "-" if value is None else str(value)


def _tcp_columns(sock: SocketInfo, span_of: _SpanOf, read: _Read) -> tuple[str, str, str, str]:
    """RTT, cwnd, unacked and retrans cells, read straight from the raw TCP_INFO (no 60-field record per row)."""
    # A listener's TCP_INFO holds no path data (its rtt and cwnd are placeholders).
    span = span_of(sock.attributes) if sock.attributes and sock.state != "LISTEN" else None
    if span is None:
        return ("-", "-", "-", "-")
    retransmits, unacked, rtt_us, cwnd, total_retrans = read(sock.attributes, *span)
    rtt = "-" if rtt_us is None else f"{rtt_us / 1000:.3f}"
    return (rtt, _text(cwnd), _text(unacked), f"{_text(retransmits)}/{_text(total_retrans)}")


_SpanOf = Callable[[bytes], "tuple[int, int] | None"]
_Read = Callable[[bytes, int, int], "tuple[Any, ...]"]


@functools.cache
def _tcp_reader() -> tuple[_SpanOf, _Read]:
    """Where TCP_INFO lies in an attribute block, and a reader of the five members the table shows.

    Imported on first use: ``netlens.probe`` is not needed to parse arguments.
    """
    from netlens.probe.attributes import tcp_info_span
    from netlens.probe.tcpinfo import field_reader

    return tcp_info_span, field_reader(("retransmits", "unacked", "rtt_us", "snd_cwnd", "total_retrans"))


def socket_cells(sock: SocketInfo) -> tuple[str, ...]:
    """The table cells of one socket, as plain text: untrusted process names escaped (:mod:`netlens.textsafe`)."""
    if sock.owners:
        first = sock.owners[0]
        process = f"{safe_str(first.name)} pid={first.pid}" + (f" fd={first.fd}" if first.fd is not None else "")
        if len(sock.owners) > 1:
            process += f" +{len(sock.owners) - 1}"
    else:
        process = "-"
    timer = "-" if sock.timer is None else f"{sock.timer.name},{_duration(sock.timer.expires_ms)},{sock.timer.retrans}"
    return (
        sock.state,
        _text(sock.recv_q),
        _text(sock.send_q),
        _endpoint(sock.local_addr, sock.local_port),
        _endpoint(sock.remote_addr, sock.remote_port),
        process,
        *_tcp_columns(sock, *_tcp_reader()),
        timer,
    )


def _cells_width(text: str) -> int:
    """Terminal cells ``text`` takes (wide characters take two, combining marks none)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, ending in an ellipsis if it was longer."""
    if _cells_width(text) <= width:
        return text
    from rich.cells import set_cell_size

    return set_cell_size(text, width - 1) + "…"


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - _cells_width(text))
    return fill + text if right else text + fill


class Table:
    """Aligned plain-text lines for rows of cells, measured once over every row (as ``ss`` does).

    ``width`` (a terminal's) makes the Process column give way, cutting long
    names with an ellipsis, so the other columns fit.
    """

    def __init__(self, rows: Sequence[tuple[str, ...]], width: int | None = None) -> None:
        self.widths = [len(name) for name in _HEADER]
        for index, column in enumerate(zip(*rows, strict=True)):
            joined = "".join(column)
            longest = max(map(len, column)) if joined.isascii() else max(map(_cells_width, column))
            self.widths[index] = max(self.widths[index], longest)
        if width is not None:
            others = sum(self.widths) - self.widths[_PROCESS] + len(_GAP) * (len(_HEADER) - 1)
            self.widths[_PROCESS] = min(self.widths[_PROCESS], max(_MIN_PROCESS, width - others))
        self._format = _GAP.join(
            f"{{:{'>' if right else '<'}{w}}}" for w, right in zip(self.widths, _RIGHT, strict=True)
        )

    def line(self, cells: Sequence[str], styles: dict[int, str] | None = None) -> str:
        """One row, aligned; ``styles`` maps column indexes to SGR codes (colour on a terminal)."""
        process = cells[_PROCESS]
        if len(process) > self.widths[_PROCESS] or not process.isascii():
            cells = (*cells[:_PROCESS], _fit(process, self.widths[_PROCESS]), *cells[_PROCESS + 1 :])
        if not styles and "".join(cells).isascii():
            return self._format.format(*cells).rstrip()  # the fast path: one C call per row
        parts = []
        for index, (cell, width, right) in enumerate(zip(cells, self.widths, _RIGHT, strict=True)):
            padded = _pad(cell, width, right)
            sgr = styles.get(index) if styles else None
            parts.append(f"\x1b[{sgr}m{padded}\x1b[0m" if sgr else padded)
        return _GAP.join(parts).rstrip()

    def header(self, colour: bool) -> str:
        """The header line (bold on a terminal)."""
        return self.line(_HEADER, dict.fromkeys(range(len(_HEADER)), _HEADER_SGR) if colour else None)


def _caption(snapshot: Snapshot, count: int, where: str) -> str:
    parts = [f"{count} socket{'s' if count != 1 else ''} {where}", f"source {snapshot.source}"]
    others, waiting = snapshot.sockets_elsewhere, snapshot.time_wait_elsewhere
    if others is not None and waiting is not None:  # counted by the kernel, never listed
        parts.append(f"elsewhere {others} open, {waiting} TIME_WAIT")
    if snapshot.note:
        parts.append(snapshot.note)
    return " · ".join(parts)


def _sorted(sockets: Iterable[SocketInfo]) -> list[SocketInfo]:
    # Listeners first, then connections by address: a stable, readable order.
    return sorted(
        sockets, key=lambda s: (s.state != "LISTEN", s.family, s.local_port, s.local_addr, s.remote_addr, s.remote_port)
    )


def render_snapshot(snapshot: Snapshot, where: str, colour: bool = False, width: int | None = None) -> list[str]:
    """Every socket of ``snapshot`` as ``ss -tanp``-style lines plus TCP_INFO columns: header, rows, caption."""
    rows = [socket_cells(sock) for sock in _sorted(snapshot.sockets)]
    table = Table(rows, width)
    return [table.header(colour), *map(table.line, rows), _caption(snapshot, len(rows), where)]


def _row_styles(row: ConnectionRow, status: str) -> dict[int, str] | None:
    """Column -> SGR for one --watch row: the whole row for new/closed, the moved cells for changed."""
    if status == "changed":
        styles = {0: _CHANGED_SGR}  # the row reads as changed even if the field has no column
        for name in row.changed:
            column = _FIELD_COLUMN.get(name)
            if column is not None:
                styles[column] = _CHANGED_SGR
        return styles
    sgr = _STATUS_SGR.get(status)
    return dict.fromkeys(range(len(_HEADER)), sgr) if sgr else None


def render_rows(
    rows: Iterable[ConnectionRow],
    snapshot: Snapshot,
    where: str,
    hold: float,
    baseline: float,
    colour: bool = False,
    width: int | None = None,
) -> list[str]:
    """Tracked rows as lines, coloured (``colour``) by what happened to each (see ``--watch``).

    Rows already there at ``baseline`` (the first refresh) are not "new":
    colour marks what happened while you watched. Without colour a closed
    row still says so, in its Timer cell.
    """
    ordered = sorted(rows, key=lambda r: (r.socket.state != "LISTEN", r.key))
    now = snapshot.ts
    statuses = []
    for row in ordered:
        status = row.highlight(now, hold).value
        if status == "new" and row.first_seen <= baseline:  # there before we looked: changed at most
            status = "changed" if row.changed and now - row.last_change < hold else "unchanged"
        statuses.append(status)
    cells = [socket_cells(row.socket) for row in ordered]
    cells = [(*c[:-1], "closed") if status == "closed" else c for c, status in zip(cells, statuses, strict=True)]
    table = Table(cells, width)
    open_count = sum(status != "closed" for status in statuses)
    caption = _caption(snapshot, open_count, where) + " · green new, yellow changed, red closed"
    lines = [table.header(colour)]
    for row, status, row_cells in zip(ordered, statuses, cells, strict=True):
        lines.append(table.line(row_cells, _row_styles(row, status) if colour else None))
    return [*lines, caption]


def _snapshot_json(snapshot: Snapshot) -> str:
    import json

    # ensure_ascii: process names are untrusted; \u escapes (C1, bidi, zero-width, anything not
    # ASCII) keep a terminal that shows the JSON safe.
    return json.dumps([sock.to_dict() for sock in _sorted(snapshot.sockets)], ensure_ascii=True)


def _terminal(out: TextIO) -> tuple[bool, int | None, int | None]:
    """(colour?, width, height) for ``out``: colours and a width only on a terminal, and not under NO_COLOR."""
    if not out.isatty():
        return False, None, None
    import shutil

    size = shutil.get_terminal_size()
    colour = "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    return colour, size.columns, size.lines


def run(args: argparse.Namespace) -> int:
    """Print the sockets once, or refresh them every ``--watch`` seconds until Ctrl-C."""
    from netlens.probe import Prober

    port = None if args.all else (DEFAULT_PORT if args.port is None else args.port)
    if port is not None and not 0 < port <= 0xFFFF:
        raise UserError(f"--port {port} is not a TCP port; give a number from 1 to 65535.")
    if args.watch is not None and not args.watch > 0:
        raise UserError("--watch needs a positive number of seconds, for example --watch 1.")
    where = "on every port" if port is None else f"on port {port}"
    prober = Prober()
    out = sys.stdout
    if args.watch is None:
        snapshot = prober.snapshot(port)
        if args.json:
            out.write(_snapshot_json(snapshot) + "\n")
        else:
            colour, width, _ = _terminal(out)
            out.write("\n".join(render_snapshot(snapshot, where, colour, width)) + "\n")
        out.flush()
        return 0
    try:
        if args.json:
            _watch_json(prober, port, args.watch, out)
        else:
            _watch_text(prober, port, args.watch, where, out)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --watch ends
    return 0


def _watch_json(prober: Prober, port: int | None, interval: float, out: TextIO) -> None:
    import time

    while True:
        out.write(_snapshot_json(prober.snapshot(port)) + "\n")
        out.flush()
        time.sleep(interval)


def _watch_text(prober: Prober, port: int | None, interval: float, where: str, out: TextIO) -> None:
    """Refresh until Ctrl-C: in place on a terminal (what fits its height), else one table after another."""
    import time

    from netlens.probe import ConnectionTracker

    # Closed rows stay three refreshes (at least 5 s); colours last two.
    tracker = ConnectionTracker(linger=max(5.0, 3 * interval))
    hold = max(2.0, 2 * interval)
    snapshot = prober.snapshot(port)
    baseline = snapshot.ts
    tty = out.isatty()
    if tty:
        out.write("\x1b[2J")  # a clean screen to redraw in place
    try:
        while True:
            update = tracker.update(snapshot)
            colour, width, height = _terminal(out)
            lines = render_rows(update.rows, snapshot, where, hold, baseline, colour, width)
            if tty:
                out.write("\x1b[H" + "\x1b[K\n".join(_fit_height(lines, height)) + "\x1b[K\x1b[J")
            else:
                out.write("\n".join(lines) + "\n\n")
            out.flush()
            time.sleep(interval)
            snapshot = prober.snapshot(port)
    finally:
        if tty:
            out.write("\n")
            out.flush()


def _fit_height(lines: list[str], height: int | None) -> list[str]:
    """The header, as many rows as the terminal has room for, a line saying how many did not fit, the caption."""
    if height is None or len(lines) <= height - 1:
        return lines
    room = max(1, height - 3)
    hidden = len(lines) - 2 - room
    return [*lines[: 1 + room], f"… {hidden} more row{'s' if hidden != 1 else ''} below", lines[-1]]
