"""`netlens capture` and `netlens read` as a user runs them: real processes, real signals, real files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from capture_helpers import requires_capture, run_cli, search, start_cli, wait_for_line

from netlens.server import Server

pytestmark = [requires_capture, pytest.mark.capture]


def test_capture_json_until_sigint_then_summary_and_exit_0(search_server: Server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = search_server.address[1]
    path = tmp_path / "cli.pcap"
    proc = start_cli("capture", "--port", str(port), "--json", "-w", str(path))
    try:
        wait_for_line(proc.stderr, "capturing on lo")
        search(port, "morpheus")
        time.sleep(0.4)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["flags"] for r in records] == ["S", "SA", "A", "PA", "A", "PA", "A", "FA", "FA", "A"]
    for key in ("no", "time", "src", "sport", "dst", "dport", "flags", "seq", "ack", "win", "len", "info",
                "analysis"):
        assert key in records[0]
    assert isinstance(records[0]["time"], float) and records[0]["time"] > 1.6e9
    assert records[3]["info"] == "search request 'morpheus'" and records[3]["len"] == 146
    assert records[2]["seq"] == 1 and records[2]["ack"] == 1
    assert "10 packets captured, 0 dropped by the kernel, 0 evicted from the ring, 10 written to" in err

    # The file reads back the same, from a path and from a pipe on stdin.
    again = run_cli("read", str(path), "--json")
    assert again.returncode == 0, again.stderr
    assert [json.loads(line) for line in again.stdout.splitlines()] == records
    with open(path, "rb") as stdin:
        piped = run_cli("read", "-", "--json", stdin=stdin)
    assert [json.loads(line)["flags"] for line in piped.stdout.splitlines()] == [r["flags"] for r in records]


def test_capture_text_lines_with_count_and_sigterm(search_server: Server) -> None:
    port = search_server.address[1]
    proc = start_cli("capture", "--port", str(port), "--count", "4")
    try:
        wait_for_line(proc.stderr, "capturing on lo")
        search(port, "ring")
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    assert " S " in lines[0] and f"→ 127.0.0.1:{port}" in lines[0] and "seq=0" in lines[0]
    assert "search request 'ring'" in lines[3] and "len=142" in lines[3]


def test_sigterm_flushes_and_summarises(search_server: Server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = search_server.address[1]
    path = tmp_path / "term.pcap"
    proc = start_cli("capture", "--port", str(port), "-w", str(path))
    try:
        wait_for_line(proc.stderr, "capturing on lo")
        search(port)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "10 packets captured" in err
    read = run_cli("read", str(path), "--ladder", "1")
    assert read.returncode == 0, read.stderr
    assert "search request 'morpheus'" in read.stdout and "SYN seq=0" in read.stdout


def test_capture_on_a_missing_interface_exits_2() -> None:
    result = run_cli("capture", "--iface", "nosuchif0", "--duration", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("netlens: there is no network interface named 'nosuchif0'")
    assert "Traceback" not in result.stderr


def test_streaming_read_prints_packets_as_they_arrive(search_server: Server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`... tcpdump -U -w - | netlens read -`: a growing pcap stream is printed record by record."""
    port = search_server.address[1]
    path = tmp_path / "stream.pcap"
    capture = start_cli("capture", "--port", str(port), "-w", str(path))
    try:
        wait_for_line(capture.stderr, "capturing on lo")
        search(port)
        time.sleep(0.3)
        capture.send_signal(signal.SIGINT)
        capture.communicate(timeout=20)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.communicate()
    data = path.read_bytes()
    reader = subprocess.Popen([sys.executable, "-m", "netlens", "read", "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)
    try:
        assert reader.stdin is not None and reader.stdout is not None
        # Header and the first record only: the reader must print it without waiting for EOF.
        first_end = 24 + 16 + int.from_bytes(data[24 + 8:24 + 12], "little")
        reader.stdin.write(data[:first_end])
        reader.stdin.flush()
        line = wait_for_line(reader.stdout, b" S ")  # type: ignore[arg-type]
        assert b"seq=0" in line  # type: ignore[operator]
        reader.stdin.write(data[first_end:])
        reader.stdin.close()
        out = reader.stdout.read()
        reader.wait(timeout=20)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate()
    assert reader.returncode == 0
    assert len(out.splitlines()) == 9
