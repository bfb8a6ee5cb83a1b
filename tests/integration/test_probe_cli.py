"""`netlens conns` end to end, in a subprocess with this interpreter, on the test's own sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from probe_helpers import Sockets
from waiting import wait_for

from netlens.probe import Prober

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux-only")

ROOT = Path(__file__).resolve().parents[2]


def conns_command() -> list[str]:
    return [sys.executable, "-m", "netlens", "conns"]


def run_conns(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*conns_command(), *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, **(env or {})})  # fmt: skip


@pytest.fixture
def socks():
    made = Sockets()
    yield made
    made.close_all()


def test_json_lists_the_tests_sockets_with_state_pid_and_tcp_info(socks: Sockets) -> None:
    listener = socks.listener()
    port = listener.getsockname()[1]
    client, server = socks.pair(listener)
    client.sendall(b"hello")
    prober = Prober(backend="sock_diag")
    wait_for(lambda: any(s.recv_q == 5 for s in prober.snapshot(port).sockets))

    result = run_conns("--json", "--port", str(port))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and len(rows) == 3
    by_state = {}
    for row in rows:
        for field in ("state", "local_addr", "local_port", "remote_addr", "remote_port", "recv_q", "send_q",
                      "pid", "process", "fd", "tcp_info", "memory", "timer"):  # fmt: skip
            assert field in row, field
        by_state.setdefault(row["state"], []).append(row)
    (listen,) = by_state["LISTEN"]
    assert (listen["local_port"], listen["pid"], listen["fd"]) == (port, os.getpid(), listener.fileno())
    assert isinstance(listen["process"], str) and listen["process"]
    unread = next(r for r in by_state["ESTABLISHED"] if r["local_port"] == port)
    assert (unread["recv_q"], unread["pid"], unread["fd"]) == (5, os.getpid(), server.fileno())
    assert unread["tcp_info"]["bytes_received"] == 5 and unread["tcp_info"]["rtt_us"] is not None
    assert unread["memory"]["rcvbuf"] > 0


def test_json_under_the_psutil_fallback_marks_unknowns_null(socks: Sockets) -> None:
    listener = socks.listener()
    port = listener.getsockname()[1]
    result = run_conns("--json", "--port", str(port), env={"NETLENS_PROBE_BACKEND": "psutil"})
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["state"], row["pid"], row["fd"]) == ("LISTEN", os.getpid(), listener.fileno())
    assert row["recv_q"] is None and row["send_q"] is None and row["tcp_info"] is None and row["memory"] is None


def test_table_output_looks_like_ss(socks: Sockets) -> None:
    listener = socks.listener()
    port = listener.getsockname()[1]
    result = run_conns("--port", str(port))
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split()[:5] == ["State", "Recv-Q", "Send-Q", "Local", "Address:Port"]
    # Recv-Q 0 (nothing queued), Send-Q 8 (the helper's listen backlog), as ss prints a listener.
    assert row.split()[:5] == ["LISTEN", "0", "8", f"127.0.0.1:{port}", "0.0.0.0:*"]
    assert f"pid={os.getpid()} fd={listener.fileno()}" in row


def test_bad_port_is_one_sentence_and_exit_1() -> None:
    result = run_conns("--port", "70000")
    assert result.returncode == 1
    assert result.stderr.strip() == "netlens: --port 70000 is not a TCP port; give a number from 1 to 65535."


def test_watch_refreshes_until_ctrl_c_and_exits_cleanly(socks: Sockets) -> None:
    listener = socks.listener()
    port = listener.getsockname()[1]
    proc = subprocess.Popen([*conns_command(), "--watch", "0.2", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(1.0)
        socks.pair(listener)  # something to notice while watching
        time.sleep(0.6)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "LISTEN" in out and f"127.0.0.1:{port}" in out


# A process that names itself with terminal controls and a bidi override, then holds a listener.
HOSTILE_OWNER = r"""
import socket, sys
with open("/proc/self/comm", "wb") as comm:
    comm.write(b"\x1b[2J\xe2\x80\xaeevil\x9b")  # ESC, U+202E (RLO), an invalid byte
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
sys.stdin.read()
"""


def test_a_hostile_process_name_is_escaped_in_text_and_json() -> None:
    owner = subprocess.Popen([sys.executable, "-c", HOSTILE_OWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert owner.stdout is not None
        port = owner.stdout.readline().strip()
        text = run_conns("--port", port)
        as_json = run_conns("--json", "--port", port)
    finally:
        owner.communicate(timeout=10)
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    for out in (text.stdout, as_json.stdout):
        assert "\x1b" not in out and "\u202e" not in out and "\x9b" not in out
    assert "\\x1b[2J\\u202eevil\\x9b pid=" in text.stdout  # the invalid byte reads as "\x9b" (backslashreplace)
    (row,) = json.loads(as_json.stdout)
    assert row["process"] == "\x1b[2J\u202eevil\\x9b" and "\\u001b[2J\\u202eevil" in as_json.stdout


def test_watch_on_a_terminal_redraws_in_place(socks: Sockets) -> None:
    import pty

    listener = socks.listener()
    port = listener.getsockname()[1]
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*conns_command(), "--watch", "0.2", "--port", str(port)], cwd=ROOT,
                            stdin=follower, stdout=follower, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "150", "LINES": "20", "TERM": "xterm"})  # fmt: skip
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        while seen.count(b"\x1b[H") < 3 and time.monotonic() < deadline:
            seen += os.read(leader, 65536)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    assert proc.returncode == 0
    assert seen.startswith(b"\x1b[2J") and seen.count(b"\x1b[H") >= 3  # cleared once, then redrawn in place
    assert b"\x1b[1mState" in seen and f"127.0.0.1:{port}".encode() in seen
