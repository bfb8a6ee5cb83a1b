"""`netlens conns` rendering: untrusted process names never act as markup or terminal controls."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from netlens.commands import conns
from netlens.errors import UserError
from netlens.probe import (
    ConnectionTracker,
    ProcessRef,
    Snapshot,
    SocketInfo,
    SocketTimer,
)


def render(snapshot: Snapshot, colour: bool = False, width: int | None = None) -> str:
    return "\n".join(conns.render_snapshot(snapshot, "on port 65432", colour, width))


def test_hostile_process_names_are_escaped_and_not_markup() -> None:
    evil = "[bold red]pwn[/]\x1b[2J\u202e"
    sock = SocketInfo("ESTABLISHED", "IPv4", "127.0.0.1", 65432, "127.0.0.1", 50000, 0, 0,
                      owners=(ProcessRef(7, evil, 4),))  # fmt: skip
    text = render(Snapshot(ts=0.0, sockets=(sock,), source="sock_diag", port=65432))
    assert "[bold red]pwn[/]\\x1b[2J\\u202e pid=7 fd=4" in text
    assert "\x1b" not in text and "\u202e" not in text


def test_table_shows_ss_columns_and_timers() -> None:
    listen = SocketInfo("LISTEN", "IPv6", "::", 65432, "::", 0, 1, 128)
    tw = SocketInfo("TIME_WAIT", "IPv4", "127.0.0.1", 65432, "127.0.0.1", 50000, 0, 0, inode=0,
                    timer=SocketTimer("timewait", 59_500, 0))  # fmt: skip
    text = render(Snapshot(ts=0.0, sockets=(tw, listen), source="sock_diag", port=65432))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["State", "Recv-Q", "Send-Q"]
    assert lines[1].split()[:5] == ["LISTEN", "1", "128", "[::]:65432", "[::]:*"]  # listeners first
    assert "timewait,59.5s,0" in lines[2]
    assert "2 sockets on port 65432 · source sock_diag" in text


def test_watch_rows_are_coloured_by_status() -> None:
    tracker = ConnectionTracker()
    a = SocketInfo("ESTABLISHED", "IPv4", "127.0.0.1", 65432, "127.0.0.1", 50000, 0, 0)
    b = SocketInfo("ESTABLISHED", "IPv4", "127.0.0.1", 65432, "127.0.0.1", 50001, 0, 0)
    tracker.update(Snapshot(ts=1.0, sockets=(a,), source="sock_diag"))
    later = Snapshot(ts=2.0, sockets=(b, dataclasses.replace(a, recv_q=7)), source="sock_diag")
    update = tracker.update(later)
    lines = conns.render_rows(update.rows, later, "on port 65432", hold=2.0, baseline=1.0, colour=True)
    changed, new = lines[1], lines[2]  # sorted by key: port 50000 then 50001
    assert new.startswith("\x1b[1;32mESTABLISHED") and new.count("\x1b[1;32m") == len(conns._HEADER)
    # A changed row lights up its state and the moved cell (Recv-Q), nothing else.
    assert changed.startswith("\x1b[1;33mESTABLISHED") and changed.count("\x1b[1;33m") == 2
    assert "\x1b[1;33m     7\x1b[0m" in changed
    gone = Snapshot(ts=3.0, sockets=(), source="sock_diag")
    closed = conns.render_rows(tracker.update(gone).rows, gone, "on port 65432", hold=2.0, baseline=1.0, colour=True)
    assert closed[1].startswith("\x1b[2;31m") and "closed" in closed[1]
    plain = conns.render_rows(tracker.rows, gone, "on port 65432", hold=2.0, baseline=1.0)
    assert "\x1b" not in "".join(plain) and plain[1].endswith("closed")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    conns.add_arguments(parser)
    return parser.parse_args(argv)


def test_bad_arguments_are_one_sentence_user_errors() -> None:
    with pytest.raises(UserError, match="not a TCP port"):
        conns.run(parse("--port", "70000"))
    with pytest.raises(UserError, match="positive number of seconds"):
        conns.run(parse("--watch", "0"))
    with pytest.raises(SystemExit):
        parse("--all", "--port", "5")


def cells_width(line: str) -> int:
    from rich.cells import cell_len

    return cell_len(line)


def test_wide_and_combining_process_names_keep_the_columns_aligned() -> None:
    names = ["plain", "宽字符进程", "e\u0301te\u0301", "x" * 3]
    base = SocketInfo("ESTABLISHED", "IPv4", "127.0.0.1", 65432, "127.0.0.1", 50000, 0, 0)
    sockets = tuple(
        dataclasses.replace(base, remote_port=50000 + n, owners=(ProcessRef(100 + n, name, 3),))
        for n, name in enumerate(names)
    )
    lines = render(Snapshot(ts=0.0, sockets=sockets, source="sock_diag", port=65432)).splitlines()
    rtt_column = cells_width(lines[0][: lines[0].index("RTT ms")])
    for line in lines[1:-1]:
        # Everything after the Process column starts at the same terminal cell in every row.
        process_end = line.index(" pid=") + len(" pid=1xx fd=3")
        assert cells_width(line[:process_end]) <= rtt_column
        assert cells_width(line[: line.rindex(" -")]) == cells_width(lines[1][: lines[1].rindex(" -")])


def test_a_narrow_terminal_cuts_the_process_column_not_the_others() -> None:
    long_name = "a-very-long-process-name-" * 4
    sock = SocketInfo("ESTABLISHED", "IPv4", "127.0.0.1", 65432, "127.0.0.1", 50000, 0, 0,
                      owners=(ProcessRef(7, long_name, 4),))  # fmt: skip
    snap = Snapshot(ts=0.0, sockets=(sock,), source="sock_diag", port=65432)
    wide = render(snap).splitlines()
    narrow = render(snap, width=120).splitlines()
    assert long_name in wide[1] and long_name not in narrow[1]
    assert all(cells_width(line) <= 120 for line in narrow[:-1])
    assert "…" in narrow[1] and narrow[1].split()[-1] == "-" and narrow[0].split()[-1] == "Timer"


def test_colour_only_when_asked_and_the_header_is_bold() -> None:
    sock = SocketInfo("LISTEN", "IPv4", "0.0.0.0", 65432, "0.0.0.0", 0, 0, 8)
    snap = Snapshot(ts=0.0, sockets=(sock,), source="sock_diag", port=65432)
    assert "\x1b" not in render(snap)
    coloured = render(snap, colour=True).splitlines()
    assert coloured[0].startswith("\x1b[1mState") and "\x1b" not in coloured[1]


def test_a_terminal_shows_what_fits_and_says_how_many_rows_did_not() -> None:
    lines = ["header", *(f"row {n}" for n in range(50)), "caption"]
    shown = conns._fit_height(lines, 10)
    assert shown == ["header", *(f"row {n}" for n in range(7)), "… 43 more rows below", "caption"]
    assert conns._fit_height(lines, 100) == lines and conns._fit_height(lines, None) == lines


def test_the_caption_counts_what_lies_outside_the_port() -> None:
    from netlens.probe import TcpTotals

    listen = SocketInfo("LISTEN", "IPv4", "0.0.0.0", 65432, "0.0.0.0", 0, 0, 8)
    tw = SocketInfo("TIME_WAIT", "IPv4", "127.0.0.1", 65432, "127.0.0.1", 50000, 0, 0)
    snap = Snapshot(ts=0.0, sockets=(listen, tw), source="sock_diag", port=65432, hidden_time_wait=3,
                    totals=TcpTotals(sockets=10, time_wait=54))  # fmt: skip
    caption = render(snap).splitlines()[-1]
    assert caption == "2 sockets on port 65432 · source sock_diag · elsewhere 9 open, 50 TIME_WAIT"
    assert "elsewhere" not in render(Snapshot(ts=0.0, sockets=(listen,), source="sock_diag", port=65432))
