"""The TUI in a real terminal: failed starts end with exit code 2 and a sentence, never a blank screen."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from pty_helpers import REPO, run_in_pty


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


TRACEFS_INSTANCES = Path("/sys/kernel/tracing/instances")


def _netlens_instances() -> set[str]:
    return {path.name for path in TRACEFS_INSTANCES.glob("netlens-*")}


def _made_by_child_of(parent: int, names: set[str]) -> set[str]:
    """The instances (``netlens-<pid>``) whose tracing process is ``parent``'s child: another netlens running
    on the machine at the same time (a second test suite) must not pass for ours."""
    ours = set()
    for name in names:
        try:
            stat = Path(f"/proc/{int(name.split('-')[1])}/stat").read_text()
        except (OSError, ValueError, IndexError):
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent:
            ours.add(name)
    return ours


@pytest.mark.parametrize(("signum", "then_hang_up"), [(signal.SIGTERM, False), (signal.SIGHUP, True),
                                                     (signal.SIGTERM, True)])
def test_a_signal_quits_like_q_and_cleans_up(signum: int, then_hang_up: bool) -> None:
    """Killed (SIGTERM) or left by its terminal (SIGHUP), the TUI still removes its tracefs instance.

    The third case is `tmux kill-session` after a SIGTERM: the terminal dies
    while Textual says goodbye to it, which must not leave the process hanging.
    """
    assert TRACEFS_INSTANCES.is_dir(), "tracefs is not mounted at /sys/kernel/tracing"
    before = _netlens_instances()
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("TEXTUAL", None)
    proc = subprocess.Popen([sys.executable, "-m", "netlens", "serve", "--port", "0"], stdin=slave, stdout=slave,
                            stderr=slave, cwd=REPO, env=env, start_new_session=True)
    os.close(slave)
    try:
        deadline = time.monotonic() + 30
        ours: set[str] = set()
        while not ours and time.monotonic() < deadline and proc.poll() is None:
            # Keep the terminal drained so the app never blocks on a full pty.
            if select.select([master], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    os.read(master, 65536)
            ours = _made_by_child_of(proc.pid, _netlens_instances() - before)
        assert ours, "the TUI never created its tracefs instance"
        if signum == signal.SIGHUP:
            os.close(master)  # the terminal is gone, as when its window is closed
            master = -1
        proc.send_signal(signum)
        if then_hang_up and master >= 0:
            time.sleep(0.05)
            os.close(master)
            master = -1
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            if master >= 0 and select.select([master], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    os.read(master, 65536)
            else:
                time.sleep(0.05)
        assert proc.returncode == 128 + signum
        # A trace helper still starting when the app ended removes the instance itself on seeing its parent go.
        deadline = time.monotonic() + 5
        while ours & _netlens_instances() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (ours & _netlens_instances()), "the tracefs instance was left behind"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        if master >= 0:
            os.close(master)
