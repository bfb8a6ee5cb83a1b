"""Run a command in a real pseudo-terminal, as a user at a terminal would, and answer what it shows."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class PtyRun:
    """What a command did in a terminal: exit code and every byte it drew."""

    returncode: int | None
    output: bytes
    stderr: bytes = b""
    timed_out: bool = False
    answered: list[str] = field(default_factory=list)


def run_in_pty(args: Sequence[str], *, answers: Sequence[tuple[bytes, bytes]] = (), timeout: float = 20.0,
               stderr_to: str | None = None, env: dict[str, str] | None = None,
               size: tuple[int, int] = (30, 110)) -> PtyRun:
    """Run ``python -m netlens ARGS`` with stdin/stdout (and stderr unless ``stderr_to``) on a pty.

    ``answers``: when the output first contains ``pattern``, type ``keys``
    (in order). The process is killed after ``timeout`` seconds.
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    full_env = dict(os.environ, TERM="xterm-256color", **(env or {}))
    full_env.pop("TEXTUAL", None)
    err_file = open(stderr_to, "wb") if stderr_to else None  # noqa: SIM115 (closed below)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "netlens", *args], stdin=slave, stdout=slave,
                                stderr=err_file if err_file else slave, cwd=REPO, env=full_env,
                                start_new_session=True)
    finally:
        os.close(slave)
    output = bytearray()
    pending = list(answers)
    answered: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's last holder went away
                    chunk = b""
                if not chunk:
                    break
                output += chunk
                if pending and pending[0][0] in output:
                    pattern, keys = pending.pop(0)
                    time.sleep(0.3)
                    os.write(master, keys)
                    answered.append(pattern.decode(errors="replace"))
            elif proc.poll() is not None:
                break
        timed_out = False
        try:
            proc.wait(max(0.5, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    finally:
        os.close(master)
        if err_file:
            err_file.close()
    stderr = Path(stderr_to).read_bytes() if stderr_to else b""
    return PtyRun(proc.returncode, bytes(output), stderr, timed_out, answered)
