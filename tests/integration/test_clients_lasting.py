"""``netlens client hold`` / ``stream`` against the real server, with ``ss`` as the outside witness.

Also: the clients and ``netlens load`` recognise a server speaking the other
protocol and say so in one sentence, at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from waiting import wait_for

from netlens.server import Server

SS = shutil.which("ss")


def client_socket(port: int) -> tuple[str, int, int] | None:
    """(state, Recv-Q, Send-Q) of the client end of the one connection to ``port``, as ``ss`` reports it."""
    assert SS, "ss (iproute2) is the outside witness of these tests"
    out = subprocess.run([SS, "-tanH", "dport", "=", f":{port}"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    for line in out.splitlines():
        state, recv_q, send_q, *_ = line.split()
        if state != "TIME-WAIT":
            return state, int(recv_q), int(send_q)
    return None


@contextmanager
def netlens_client(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m netlens client ARGS`` in the background; terminated (SIGTERM) and reaped however the test ends."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "netlens", "client", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_hold_keeps_the_connection_established_for_the_requested_time(echo_server: Server) -> None:
    port = echo_server.address[1]
    with netlens_client("hold", "--port", str(port), "--send", "hello", "--seconds", "2.5") as proc:
        started = time.monotonic()
        wait_for(lambda: client_socket(port), timeout=5)
        states = []
        while time.monotonic() - started < 2.0:
            states.append(client_socket(port))
            time.sleep(0.2)
        code = proc.wait(10)
        took = time.monotonic() - started
        out, err = proc.communicate()
    assert {s[0] for s in states if s is not None} == {"ESTAB"} and None not in states, states
    assert code == 0 and 2.4 < took < 6, (code, took, err)
    assert "received 5 bytes: hello" in out and "time is up after 2." in err
    assert "Traceback" not in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_hold_ends_cleanly_on_sigterm_and_ctrl_c(echo_server: Server, signum: int) -> None:
    port = echo_server.address[1]
    with netlens_client("hold", "--port", str(port)) as proc:
        wait_for(lambda: client_socket(port) is not None and client_socket(port)[0] == "ESTAB", timeout=5)  # type: ignore[index]
        time.sleep(0.3)
        proc.send_signal(signum)
        code = proc.wait(3)
        _, err = proc.communicate()
    assert code == 0 and "stopped after" in err and "Traceback" not in err, err
    # Our side closed: no live client socket is left (at most its TIME_WAIT).
    wait_for(lambda: client_socket(port) is None, timeout=3)


def test_hold_reports_the_servers_rst(echo_server: Server) -> None:
    from netlens.server import AbortConnection

    port = echo_server.address[1]
    with netlens_client("hold", "--port", str(port)) as proc:
        wait_for(lambda: echo_server.snapshot(), timeout=5)
        echo_server.submit(AbortConnection(echo_server.snapshot()[0].conn)).result(3)
        code = proc.wait(3)
        _, err = proc.communicate()
    assert code == 1 and "the server reset the connection (RST)" in err, err


def test_stream_without_reading_fills_recv_q_then_send_q(echo_server: Server) -> None:
    port = echo_server.address[1]
    seen: list[tuple[float, int, int]] = []
    with netlens_client("stream", "--port", str(port), "--no-read", "--rate", "8M", "--seconds", "20") as proc:
        started = time.monotonic()
        while time.monotonic() - started < 15:
            found = client_socket(port)
            if found is not None:
                seen.append((time.monotonic() - started, found[1], found[2]))
                if found[2] > 1 << 20:
                    break
            time.sleep(0.05)
        assert proc.poll() is None  # still streaming: it was not the stream that ended
    first_recv_q = next(t for t, recv_q, _ in seen if recv_q > 0)
    first_send_q = next(t for t, _, send_q in seen if send_q > 256 * 1024)
    # Our Recv-Q (echoes we never read) fills first; then the server, its echoes stuck, stops
    # reading, and what we send piles up in our Send-Q.
    assert first_recv_q < first_send_q, seen
    assert max(send_q for _, _, send_q in seen) > 1 << 20
    assert all(state for state in seen)


def test_stream_reads_the_echo_and_stops_on_sigterm(echo_server: Server) -> None:
    port = echo_server.address[1]
    with netlens_client("stream", "--port", str(port), "--rate", "256k") as proc:
        wait_for(lambda: client_socket(port) is not None, timeout=5)
        time.sleep(1.6)
        assert client_socket(port)[0] == "ESTAB"  # type: ignore[index]
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(3)
        out, err = proc.communicate()
    assert code == 0 and "stopped after" in err, err
    progress = [line for line in out.splitlines() if "echoed back" in line]
    assert progress and "echoed back 0 B" not in progress[-1], out


@pytest.mark.parametrize("extra", [(), ("--no-read",)])
def test_stream_to_a_search_server_says_so(search_server: Server, netlens_cli, extra: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = netlens_cli("client", "stream", "--port", str(search_server.address[1]), "--seconds", "10", *extra)
    assert result.returncode == 1 and time.monotonic() - started < 5
    assert "it is not an echo server" in result.stderr and "stream needs an echo server" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_search_clients_against_an_echo_server_say_so_at_once(echo_server: Server, netlens_cli) -> None:  # type: ignore[no-untyped-def]
    port = str(echo_server.address[1])
    for args in (("client", "search", "morpheus"), ("load", "--mode", "search", "--clients", "4", "--requests", "5")):
        started = time.monotonic()
        result = netlens_cli(*args, "--port", port)
        assert time.monotonic() - started < 5, args
        assert result.returncode == 1 and "sent our request back unchanged: it is an echo server" in result.stderr
        assert "Got" not in result.stdout and "requests in" not in result.stdout
    assert "--mode echo" in result.stderr


def test_echo_clients_against_a_search_server_say_so_at_once(search_server: Server, netlens_cli) -> None:  # type: ignore[no-untyped-def]
    port = str(search_server.address[1])
    for args in (("client", "echo", "hello"), ("load", "--mode", "echo", "--clients", "4", "--requests", "5")):
        started = time.monotonic()
        result = netlens_cli(*args, "--port", port)
        assert time.monotonic() - started < 5, args
        assert result.returncode == 1 and "it is not an echo server" in result.stderr, result.stderr
    assert "--mode search" in result.stderr


def test_rate_and_size_are_checked(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    result = netlens_cli("client", "stream", "--rate", "fast")
    assert result.returncode == 2 and "'fast' is not a rate" in result.stderr
