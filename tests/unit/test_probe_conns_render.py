"""`netlens conns` rendering: untrusted process names never act as markup or terminal controls."""

from __future__ import annotations

import argparse

import pytest
from rich.console import Console

from netlens.commands import conns
from netlens.errors import UserError
from netlens.probe import (
    ConnectionTracker,
    ProcessRef,
    Snapshot,
    SocketInfo,
    SocketTimer,
)


def render(snapshot: Snapshot) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(conns.render_snapshot(snapshot, "on port 65432"))
    return console.export_text()


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
    first = Snapshot(ts=1.0, sockets=(a,), source="sock_diag")
    tracker.update(first)
    gone = Snapshot(ts=2.0, sockets=(), source="sock_diag")
    table = conns.render_rows(tracker.update(gone).rows, gone, "on port 65432", hold=2.0, baseline=1.0)
    assert table.rows[0].style == "red dim"


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
