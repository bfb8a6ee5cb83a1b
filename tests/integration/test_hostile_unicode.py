"""Arbitrary Unicode from the wire, through every output path, under three locales.

Hypothesis generates strings (any code point, lone surrogates included, with
C0/C1 controls, bidi and zero-width characters, wide and combining ones mixed
in) and sends each to live processes as a search value, as a content-type and
as raw request bytes: ``serve --headless`` (text and ``--json``), ``capture``
writing a pcap, and the TUI in a real pseudo-terminal. Afterwards the pcap goes
through ``read`` (plain, ``--json``, ``--ladder``, ``--follow``) and every
generated string comes back to ``client`` in one answer. Every output must
decode as strict UTF-8 and hold no raw control, bidi, zero-width or surrogate
character, and every process must still be running at the end. A few processes
per locale see many strings each, so this stays quick.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from hostile_helpers import ask, assert_printable, client_against, frame, netlens, search_frame, unsafe_chars
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pty_helpers import REPO
from waiting import wait_for

HOSTILE = ["\ud800", "\udc80", "\udc9b", "\udcff", "\udfff", "\x00", "\x07", "\x1b", "\x1b[2J", "\n", "\r", "\x7f",
           "\x85", "\x9b", "\u202e", "\u2066", "\u200f", "\u061c", "\u200b", "\u2028", "\ufeff", "🐶", "中文",
           "\u0301", "e\u0301", "\u20dd", "[bold red]x[/]"]
STRINGS = st.lists(st.one_of(st.characters(exclude_categories=()), st.sampled_from(HOSTILE)), max_size=30).map("".join)
# Terminal control sequences the TUI itself writes (CSI, OSC, DCS/APC, charset and 2-byte escapes).
_TERMINAL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[P_^][^\x1b]*\x1b\\"
                       r"|\x1b[()][0-9A-Za-z]|\x1b[ -/]*[0-~]")


def binary_frame(content_type: str, content: bytes) -> bytes:
    header = json.dumps({"byteorder": "little", "content-type": content_type, "content-encoding": "binary",
                         "content-length": len(content)}).encode()  # ensure_ascii: surrogates as \u escapes
    return frame(header, content)


class Process:
    """One command started in the background, with its output in a file (or a pty), stopped at the end."""

    def __init__(self, args: list[str], locale: str, out: Path, tty: bool = False) -> None:
        self.out = out
        self.tty = tty
        self.screen = bytearray()
        env = dict(os.environ, LANG=locale, LC_ALL=locale, PYTHONUNBUFFERED="1", TERM="xterm-256color")
        cmd = [sys.executable, "-m", "netlens", *args]
        self.master: int | None = None
        if tty:
            self.master, slave = os.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
            self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env,
                                         start_new_session=True)
            os.close(slave)
            self._reader = threading.Thread(target=self._read_tty, daemon=True)
            self._reader.start()
        else:
            with out.open("wb") as stdout:
                self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                             start_new_session=True)

    def _read_tty(self) -> None:
        assert self.master is not None
        while True:
            try:
                if not select.select([self.master], [], [], 0.2)[0]:
                    continue
                chunk = os.read(self.master, 1 << 16)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            self.screen.extend(chunk)

    def output(self) -> bytes:
        return bytes(self.screen) if self.tty else self.out.read_bytes()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self.master is not None:
            self._reader.join(2)
            os.close(self.master)
            self.master = None


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_all_ways(port: int, text: str) -> None:
    """The string as a search value, as a content-type, and as raw request bytes; each is answered."""
    escaped = json.dumps(text).encode()  # \uXXXX escapes: any string, surrogates too, travels as JSON
    assert ask(port, search_frame(escaped))
    assert ask(port, binary_frame(text, b"x"))
    assert ask(port, binary_frame("binary/custom-client-binary-type", text.encode("utf-8", "surrogatepass")))


def port_in(output: bytes) -> int | None:
    match = re.search(rb'listening on 127\.0\.0\.1:(\d+)|"address": \["127\.0\.0\.1", (\d+)\]', output)
    return int(match.group(1) or match.group(2)) if match else None


@pytest.mark.parametrize("locale", ["C", "C.UTF-8", "en_US.UTF-8"])
def test_arbitrary_unicode_through_every_output_path(tmp_path: Path, locale: str) -> None:
    sent: list[str] = []
    pcap = tmp_path / "capture.pcap"
    with ExitStack() as stack:
        def start(name: str, *args: str, tty: bool = False) -> Process:
            process = Process(list(args), locale, tmp_path / f"{name}.out", tty)
            stack.callback(process.stop)
            return process

        # Everything starts at once; each is then waited for.
        text = start("text", "serve", "--headless", "--port", "0")
        as_json = start("json", "serve", "--headless", "--port", "0", "--json")
        tui_port = free_port()
        screen = start("tui", "serve", "--port", str(tui_port), tty=True)
        text_port = wait_for(lambda: port_in(text.output()), timeout=20)
        json_port = wait_for(lambda: port_in(as_json.output()), timeout=20)
        captured = start("capture", "capture", "--port", str(text_port), "-w", str(pcap))
        wait_for(lambda: b"capturing on lo" in captured.output(), timeout=20)
        wait_for(lambda: b"Connections" in screen.output() and _listening(tui_port), timeout=30)
        ports = (text_port, json_port, tui_port)

        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(STRINGS)
        def through_the_servers(value: str) -> None:
            sent.append(value)
            for port in ports:
                send_all_ways(port, value)

        for hostile in HOSTILE:
            for port in ports:
                send_all_ways(port, hostile)
        through_the_servers()
        time.sleep(0.5)  # the TUI draws its last events; capture and the printers catch up
        for process in (text, as_json, captured, screen):
            assert process.proc.poll() is None, process.output()[-2000:]  # all still running
    for process in (text, as_json, captured):
        assert b"Traceback" not in process.output()
        assert_printable(process.output())
    for line in as_json.output().splitlines()[:-2]:  # the last two lines are stderr's summary
        if line.startswith(b"{"):
            json.loads(line)
    drawn = _TERMINAL.sub("", screen.output().decode("utf-8"))
    assert not unsafe_chars(drawn, allowed="\r\n"), ascii(sorted(set(unsafe_chars(drawn, allowed="\r\n"))))
    assert re.search(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4})", drawn)  # hostile text was on screen, as escapes
    reads = [netlens("read", str(pcap), *view, locale=locale, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for view in ([], ["--json"], ["--ladder", "2"], ["--follow", "3"])]
    code, out, err = client_against(json.dumps({"result": " | ".join(HOSTILE + sent)}).encode(), locale)
    assert code == 0, err
    assert_printable(out)
    for read in reads:
        out, err = read.communicate(timeout=60)
        assert read.returncode == 0 and b"Traceback" not in err, err[-500:]
        assert_printable(out)
