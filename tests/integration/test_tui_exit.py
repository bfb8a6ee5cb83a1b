"""The TUI in a real terminal: failed starts end with exit code 2 and a sentence, never a blank screen."""

from __future__ import annotations

import socket

from pty_helpers import run_in_pty


def test_unknown_host_exits_2() -> None:
    run = run_in_pty(["serve", "--host", "no.such.invalid", "--no-capture"])
    assert not run.timed_out and run.returncode == 2
    assert b"cannot listen on 'no.such.invalid'" in run.output
    assert b"Traceback" not in run.output


def test_an_address_that_is_not_ours_exits_2() -> None:
    run = run_in_pty(["serve", "--host", "192.0.2.1", "--no-capture"])  # TEST-NET-1: never local
    assert not run.timed_out and run.returncode == 2
    assert b"is not an address of this machine" in run.output


def test_quit_in_the_port_in_use_dialog_exits_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = run_in_pty(["serve", "--port", str(port), "--no-capture"], answers=[(b"already in use", b"\x1b")])
    assert run.answered and not run.timed_out
    assert run.returncode == 2


def test_stderr_redirected_away_from_the_terminal_is_said_on_stdout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = run_in_pty(["serve", "--port", "0", "--no-capture"], stderr_to=str(tmp_path / "err.log"), timeout=10)
    assert not run.timed_out and run.returncode == 2
    text = run.output.decode()
    assert "the screen is drawn on standard error, which is redirected away from the terminal" in text
    assert (tmp_path / "err.log").read_bytes() == b""
