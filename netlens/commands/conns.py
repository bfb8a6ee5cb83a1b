"""``netlens conns``: the kernel's view of TCP sockets, like ``ss -tanpi`` with TCP_INFO columns."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from netlens import DEFAULT_PORT
from netlens.display import endpoint
from netlens.errors import UserError

if TYPE_CHECKING:  # heavy imports stay inside run()
    from rich.console import Console
    from rich.table import Table

    from netlens.probe import ConnectionRow, Prober, Snapshot, SocketInfo

HELP = "Show TCP sockets as the kernel sees them (like ss -tanpi): state, queues, RTT, cwnd, timers, process."

# Row colours for --watch, TCPView's: new green, changed yellow, closed red.
_STATUS_STYLES = {"new": "bold green", "changed": "yellow", "closed": "red dim", "unchanged": ""}
_CHANGED_CELL = "bold yellow"
# (header, minimum width, right-aligned): the minimum keeps a narrow terminal
# from squeezing states and addresses into "…"; Process gives way first.
_COLUMNS = (
    ("State", 11, False),
    ("Recv-Q", 6, True),
    ("Send-Q", 6, True),
    ("Local Address:Port", 15, False),
    ("Peer Address:Port", 15, False),
    ("Process", 8, False),
    ("RTT ms", 6, True),
    ("cwnd", 4, True),
    ("unacked", 7, True),
    ("retrans", 7, True),
    ("Timer", 5, False),
)
# Which table column lights up when a tracked field changes.
_FIELD_COLUMN = {"state": 0, "recv_q": 1, "send_q": 2, "owners": 5, "unacked": 8, "retransmits": 9, "total_retrans": 9}


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


def _cells(sock: SocketInfo) -> list[Any]:
    """The table cells of one socket, as ``rich.text.Text`` (nothing is ever parsed as markup)."""
    from rich.text import Text

    from netlens.textsafe import safe_str

    def num(value: int | None) -> Text:
        return Text("-" if value is None else str(value), justify="right")

    if sock.owners:
        first = sock.owners[0]
        label = f"{safe_str(first.name)} pid={first.pid}" + (f" fd={first.fd}" if first.fd is not None else "")
        if len(sock.owners) > 1:
            label += f" +{len(sock.owners) - 1}"
        process = Text(label)
    else:
        process = Text("-", style="dim")
    # A listener's TCP_INFO holds no path data (its rtt and cwnd are placeholders).
    info = sock.tcp_info if sock.state != "LISTEN" else None
    rtt = "-" if info is None or info.rtt_us is None else f"{info.rtt_us / 1000:.3f}"
    retrans = "-" if info is None else f"{info.retransmits}/{info.total_retrans}"
    timer = "-" if sock.timer is None else f"{sock.timer.name},{_duration(sock.timer.expires_ms)},{sock.timer.retrans}"
    return [
        Text(sock.state),
        num(sock.recv_q),
        num(sock.send_q),
        Text(_endpoint(sock.local_addr, sock.local_port)),
        Text(_endpoint(sock.remote_addr, sock.remote_port)),
        process,
        Text(rtt, justify="right"),
        num(None if info is None else info.snd_cwnd),
        num(None if info is None else info.unacked),
        Text(retrans, justify="right"),
        Text(timer),
    ]


def _new_table(caption: str) -> Table:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False, caption=caption, caption_justify="left")
    for header, width, right in _COLUMNS:
        table.add_column(
            header,
            min_width=width,
            no_wrap=True,
            justify="right" if right else "left",
            overflow="ellipsis" if header == "Process" else "fold",
        )
    return table


def _console() -> Console:
    """A console for the table; piped output gets a wide page, as ``ss`` never cuts a line."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=240)


def _caption(snapshot: Snapshot, count: int, where: str) -> str:
    parts = [f"{count} socket{'s' if count != 1 else ''} {where}", f"source {snapshot.source}"]
    if snapshot.note:
        parts.append(snapshot.note)
    return " · ".join(parts)


def _sorted(sockets: Iterable[SocketInfo]) -> list[SocketInfo]:
    # Listeners first, then connections by address: a stable, readable order.
    return sorted(
        sockets, key=lambda s: (s.state != "LISTEN", s.family, s.local_port, s.local_addr, s.remote_addr, s.remote_port)
    )


def render_snapshot(snapshot: Snapshot, where: str) -> Table:
    """Return a Rich table of every socket in ``snapshot``, ``ss -tanp`` style plus TCP_INFO columns."""
    sockets = _sorted(snapshot.sockets)
    table = _new_table(_caption(snapshot, len(sockets), where))
    for sock in sockets:
        table.add_row(*_cells(sock))
    return table


def render_rows(rows: Iterable[ConnectionRow], snapshot: Snapshot, where: str, hold: float, baseline: float) -> Table:
    """Return a Rich table of tracked rows, coloured by what happened to each (see ``--watch``).

    Rows already there at ``baseline`` (the first refresh) are not "new":
    colour marks what happened while you watched.
    """
    rows = sorted(rows, key=lambda r: (r.socket.state != "LISTEN", r.key))
    open_count = sum(r.status.value != "closed" for r in rows)
    table = _new_table(_caption(snapshot, open_count, where) + " · green new, yellow changed, red closed")
    for row in rows:
        status = row.highlight(snapshot.ts, hold).value
        if status == "new" and row.first_seen <= baseline:
            status = "unchanged"
        cells = _cells(row.socket)
        if status == "changed":
            cells[0].stylize(_CHANGED_CELL)  # the row reads as changed even if the field has no column
            for name in row.changed:
                column = _FIELD_COLUMN.get(name)
                if column is not None:
                    cells[column].stylize(_CHANGED_CELL)
        table.add_row(*cells, style=_STATUS_STYLES[status] if status != "changed" else None)
    return table


def _snapshot_json(snapshot: Snapshot) -> str:
    import json

    # ensure_ascii: process names are untrusted; \u escapes keep the terminal safe.
    return json.dumps([sock.to_dict() for sock in _sorted(snapshot.sockets)])


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
    if args.watch is None:
        snapshot = prober.snapshot(port)
        if args.json:
            print(_snapshot_json(snapshot))
        else:
            _console().print(render_snapshot(snapshot, where))
        return 0
    try:
        if args.json:
            _watch_json(prober, port, args.watch)
        else:
            _watch_table(prober, port, args.watch, where)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --watch ends
    return 0


def _watch_json(prober: Prober, port: int | None, interval: float) -> None:
    import time

    while True:
        print(_snapshot_json(prober.snapshot(port)), flush=True)
        time.sleep(interval)


def _watch_table(prober: Prober, port: int | None, interval: float, where: str) -> None:
    import time

    from rich.live import Live

    from netlens.probe import ConnectionTracker

    # Closed rows stay three refreshes (at least 5 s); colours last two.
    tracker = ConnectionTracker(linger=max(5.0, 3 * interval))
    hold = max(2.0, 2 * interval)
    snapshot = prober.snapshot(port)
    baseline = snapshot.ts
    update = tracker.update(snapshot)
    with Live(
        render_rows(update.rows, snapshot, where, hold, baseline), console=_console(), auto_refresh=False
    ) as live:
        while True:
            time.sleep(interval)
            snapshot = prober.snapshot(port)
            update = tracker.update(snapshot)
            live.update(render_rows(update.rows, snapshot, where, hold, baseline), refresh=True)
