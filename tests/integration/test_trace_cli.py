"""``netlens trace`` as a user runs it: JSON lines, signals, leftovers, two at once, no root, no tracefs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from trace_helpers import abort, cookie_of, listener

_ANNOUNCE = re.compile(r" in (\S+) \(clock ")


class Cli:
    """A running ``netlens trace`` and the instance it announced."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "netlens", "trace", *args], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.announcement = self._first_line()
        match = _ANNOUNCE.search(self.announcement)
        assert match, f"netlens trace did not start: {self.announcement!r}"
        self.instance = Path(match[1])

    def _first_line(self, timeout: float = 15.0) -> str:
        assert self.proc.stderr is not None
        ready, _, _ = select.select([self.proc.stderr], [], [], timeout)
        return self.proc.stderr.readline() if ready else ""

    def finish(self, sig: int | None = None, timeout: float = 15.0) -> tuple[int, list[dict[str, object]], str]:
        """Send ``sig`` (or wait for --duration), then return (exit code, JSON events, stderr)."""
        if sig is not None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, [json.loads(line) for line in out.splitlines()], err


@contextlib.contextmanager
def cli(*args: str) -> Iterator[Cli]:
    """A ``netlens trace`` subprocess, killed if the test left it running."""
    running = Cli(*args)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(timeout=10)


def converse(server_listener: socket.socket, *, abortive: bool = False) -> tuple[int, int]:
    """One connection to ``server_listener``: a request, an answer, a close; returns (client, server) cookies."""
    port = server_listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    server, _ = server_listener.accept()
    try:
        cookies = cookie_of(client), cookie_of(server)
        client.sendall(b"hello")
        assert server.recv(5) == b"hello"
        server.sendall(b"world")
        assert client.recv(5) == b"world"
        if abortive:
            abort(client)
        else:
            client.close()
            assert server.recv(1) == b""
        server.close()
        return cookies
    finally:
        abort(client, server)


def wait_gone(path: Path, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not path.exists()


def test_json_events_and_no_instance_left_after_duration() -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    try:
        with cli("--port", str(port), "--json", "--duration", "2") as trace:
            assert trace.instance.is_dir() and trace.instance.name == f"netlens-{trace.proc.pid}"
            server_listener.listen()
            client_cookie, server_cookie = converse(server_listener, abortive=True)
            code, events, err = trace.finish()
    finally:
        server_listener.close()
    assert code == 0, err
    assert not trace.instance.exists()
    assert re.search(r"^netlens: \d+ events, \d+ filtered out, 0 lost in the kernel's buffer", err, re.MULTILINE)
    now = time.time()
    for event in events:
        assert {"time", "event", "cookie", "src", "sport", "dst", "dport"} <= event.keys()
        assert now - 10 < event["time"] <= now  # type: ignore[operator]
    states = [(e["old"], e["new"]) for e in events if e["event"] == "state" and e["cookie"] == client_cookie]
    assert states[:2] == [("CLOSE", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED")]
    assert ("ESTABLISHED", "CLOSE") in states
    resets = [e for e in events if e["event"] == "reset-sent" and e["cookie"] == client_cookie]
    assert [(e["reason"], e["dport"]) for e in resets] == [("TCP_STATE", port)]
    received = [e for e in events if e["event"] == "reset-received" and e["cookie"] == server_cookie]
    assert [e["reason"] for e in received] == ["TCP_STATE"]
    probes = [e for e in events if e["event"] == "probe" and e["cookie"] == server_cookie]
    assert probes and all({"cwnd", "ssthresh", "srtt_us", "snd_wnd", "rcv_wnd"} <= e.keys() for e in probes)
    assert probes[0]["src"] == "127.0.0.1" and probes[0]["sport"] == port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_cleanly_and_removes_the_instance(sig: int) -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    try:
        with cli("--port", str(port), "--json") as trace:
            server_listener.listen()
            client_cookie, _ = converse(server_listener)
            time.sleep(0.3)
            code, events, err = trace.finish(sig)
    finally:
        server_listener.close()
    assert code == 0, err
    assert "Traceback" not in err and not trace.instance.exists()
    assert any(e["event"] == "destroy" and e["cookie"] == client_cookie for e in events)


def test_an_instance_left_by_sigkill_is_removed_by_the_next_start() -> None:
    with cli("--port", "1") as killed:
        killed.proc.kill()
        killed.proc.wait(timeout=10)
    assert killed.instance.is_dir()  # nobody removed it: the process died at once
    try:
        with cli("--port", "1", "--duration", "0.5") as restarted:
            code, _events, err = restarted.finish()
        assert code == 0, err
        assert wait_gone(killed.instance) and not restarted.instance.exists()
        assert re.search(r"removed \d+ stale instance\(s\) of dead netlens processes", restarted.announcement)
    finally:
        with contextlib.suppress(OSError):
            killed.instance.rmdir()


def test_two_traces_at_once_do_not_disturb_each_other() -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    try:
        with cli("--port", str(port), "--json") as first, cli("--port", str(port), "--json") as second:
            assert first.instance != second.instance
            server_listener.listen()
            early, _ = converse(server_listener)
            time.sleep(0.3)
            first_code, first_events, _ = first.finish(signal.SIGTERM)
            assert not first.instance.exists() and second.instance.is_dir()
            late, _ = converse(server_listener)
            time.sleep(0.3)
            second_code, second_events, _ = second.finish(signal.SIGTERM)
    finally:
        server_listener.close()
    assert first_code == second_code == 0

    def account(events: list[dict[str, object]], cookie: int) -> list[tuple[object, ...]]:
        return [(e["event"], e.get("old"), e.get("new")) for e in events if e["cookie"] == cookie]

    def times(events: list[dict[str, object]], cookie: int) -> list[int]:
        return [int(e["time_ns"]) for e in events if e["cookie"] == cookie]  # type: ignore[call-overload]

    assert account(first_events, early) and account(first_events, early) == account(second_events, early)
    # Each instance stamps the event in its own buffer, a few hundred nanoseconds apart.
    skew = [abs(a - b) for a, b in zip(times(first_events, early), times(second_events, early), strict=True)]
    assert max(skew) < 100_000, skew
    assert account(second_events, late) and not account(first_events, late)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is not installed (util-linux)")
def test_without_root_it_says_so_in_one_sentence() -> None:
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-m", "netlens", "trace", "--duration", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "needs root" in result.stderr and "sudo" in result.stderr


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare is not installed (util-linux)")
def test_without_tracefs_it_says_what_is_missing() -> None:
    # A private mount namespace where tracefs is unmounted and /sys/kernel hidden: nothing to mount it on.
    script = ("umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; "
              "mount -t tmpfs none /sys/kernel && exec \"$0\" -m netlens trace --duration 1")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, sys.executable],
                            cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "tracefs is not available" in result.stderr and "mount -t tracefs" in result.stderr
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare is not installed (util-linux)")
def test_it_mounts_tracefs_when_it_is_absent() -> None:
    script = ("umount /sys/kernel/tracing && ! grep -q tracefs /proc/self/mounts && "
              "exec \"$0\" -m netlens trace --port 1 --duration 0.5")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, sys.executable],
                            cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "tracing port 1 in /sys/kernel/tracing/instances/netlens-" in result.stderr
