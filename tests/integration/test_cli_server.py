"""The server-side commands as a user runs them: serve --headless, client, load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from waiting import wait_for

from netlens.server import Server


def start_headless(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "netlens", "serve", "--headless", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def test_headless_json_events_and_clean_sigint(netlens_cli) -> None:
    proc = start_headless("--json")
    try:
        assert proc.stdout is not None
        listening = json.loads(proc.stdout.readline())
        assert listening["event"] == "listening" and listening["mode"] == "search"
        port = str(listening["address"][1])
        result = netlens_cli("client", "search", "morpheus", "--port", port)
        assert result.returncode == 0, result.stderr
        assert "Got result: Follow the white rabbit. \U0001f430" in result.stdout
        lines = []
        while not lines or lines[-1]["event"] != "closed":
            lines.append(json.loads(proc.stdout.readline()))
        kinds = [line["event"] for line in lines]
        assert kinds[:2] == ["accepted", "mask"] and "recv" in kinds and "queued" in kinds
        recv = next(line for line in lines if line["event"] == "recv")
        assert recv["nbytes"] == 146 and '"morpheus"' in recv["data"]
        assert lines[-1]["by"] == "server"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
        assert time.monotonic() - started < 2
        assert proc.returncode == 0 and "Traceback" not in err
        assert json.loads(out.splitlines()[-1])["event"] == "stopped"
    finally:
        proc.kill()


def test_headless_human_lines_escape_the_wire(netlens_cli) -> None:
    proc = start_headless("--mode", "echo")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in first and "(echo mode)" in first
        port = first.rsplit(":", 1)[1].split()[0]
        result = netlens_cli("client", "echo", "[bold red]x[/]\x1b[2J", "--port", port)
        assert result.returncode == 0, result.stderr
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)
        assert proc.returncode == 0
        assert "\x1b" not in out and "\\x1b[2J" in out and "[bold red]x[/]" in out
        assert "closed by peer" in out
    finally:
        proc.kill()


def test_port_in_use_is_one_sentence_and_exit_2(netlens_cli) -> None:
    with _busy_port() as port:
        result = netlens_cli("serve", "--headless", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"netlens: 127.0.0.1:{port} is already in use by another program; "
                                     f"pick another port with --port (or --port 0 for any free one).")


class _busy_port:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_client_with_nothing_listening_says_how_to_start_the_server(netlens_cli) -> None:
    with _busy_port() as port:
        pass  # a port that was free a moment ago: nothing listens on it now
    result = netlens_cli("client", "search", "morpheus", "--port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (f"netlens: nothing is listening on 127.0.0.1:{port}; start the server "
                                     f"first with `netlens serve` (or `netlens serve --headless`).")


def test_client_binary_and_byte_by_byte(search_server: Server, netlens_cli) -> None:
    port = str(search_server.address[1])
    result = netlens_cli("client", "binary", "hello", "--port", port, "--byte-by-byte")
    assert result.returncode == 0
    assert "Got response: b'First 10 bytes of request: binaryhell'" in result.stdout


def test_load_prints_rate_latency_and_errors(search_server: Server, netlens_cli) -> None:
    port = str(search_server.address[1])
    result = netlens_cli("load", "--clients", "8", "--requests", "25", "--port", port, "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["completed"] == 200 and figures["errors"] == 0
    assert figures["req_per_s"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"]
    wait_for(lambda: search_server.stats().requests == 200)
    human = netlens_cli("load", "--mode", "search", "--clients", "2", "--requests", "3", "--port", port)
    assert "6 requests in" in human.stdout and "0 errors" in human.stdout


def test_load_echo_mode(echo_server: Server, netlens_cli) -> None:
    result = netlens_cli("load", "--mode", "echo", "--clients", "4", "--requests", "50",
                         "--port", str(echo_server.address[1]), "--json")
    figures = json.loads(result.stdout)
    assert figures["completed"] == 200 and figures["errors"] == 0
    assert echo_server.stats().accepted == 4


def test_headless_to_a_file_writes_every_event_line(netlens_cli, tmp_path) -> None:
    """stdout redirected to a file (the loop writes each batch itself): every event is a line, in order."""
    log = tmp_path / "events.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "netlens", "serve", "--headless", "--port", "0"],
                                stdout=out, stderr=subprocess.PIPE, text=True)
    try:
        port = wait_for(lambda: log.read_text().partition(" (search mode)")[0].rpartition(":")[2])
        for value in ("morpheus", "ring", "neo"):
            result = netlens_cli("client", "search", value, "--port", port)
            assert result.returncode == 0, result.stderr
        wait_for(lambda: log.read_text().count(" closed by server: response sent") == 3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=5)
    finally:
        proc.kill()
    lines = log.read_text().splitlines()
    assert proc.returncode == 0 and "Traceback" not in err
    printed = int(err.split(" events printed")[0].rpartition(", ")[2])
    assert printed == len(lines) and "listening on" in lines[0] and lines[-1].endswith("stopped; every socket closed")
    for conn in ("#1", "#2", "#3"):
        kinds = [line.split(f" {conn} ", 1)[1].split(" ")[0] for line in lines if f" {conn} " in line]
        assert kinds == ["accepted", "selector", "recv", "proto", "JSON", "request", "response", "selector",
                         "send", "closed"], (conn, kinds)
