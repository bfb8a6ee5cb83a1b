"""``netlens serve --headless --kernel``: the kernel's events of the served port among the socket events (root)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

TRACEFS_INSTANCES = Path("/sys/kernel/tracing/instances")


def start(*args: str, env: dict[str, str] | None = None, user: bool = False) -> subprocess.Popen[str]:
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if user else []
    return subprocess.Popen([*prefix, sys.executable, "-m", "netlens", "serve", "--headless", "--port", "0",
                             "--kernel", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))


def test_json_kernel_events_interleave_with_socket_events(netlens_cli) -> None:
    proc = start("--json")
    try:
        assert proc.stdout is not None
        listening = json.loads(proc.stdout.readline())
        port = listening["address"][1]
        result = netlens_cli("client", "search", "morpheus", "--port", str(port))
        assert result.returncode == 0, result.stderr
        lines: list[dict[str, object]] = []
        # The server closes first: its end goes FIN_WAIT1 -> FIN_WAIT2, the client's LAST_ACK -> CLOSE.
        while not any(line.get("source") == "kernel" and line.get("new") == "CLOSE" and line.get("dport") == port
                      for line in lines):
            lines.append(json.loads(proc.stdout.readline()))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    kernel = [line for line in lines if line.get("source") == "kernel"]
    server_end = [(line["old"], line["new"]) for line in kernel if line["event"] == "state" and line["sport"] == port]
    client_end = [(line["old"], line["new"]) for line in kernel if line["event"] == "state" and line["dport"] == port]
    assert ("FIN_WAIT1", "FIN_WAIT2") in server_end and ("LISTEN", "SYN_RECV") in server_end
    assert client_end[:2] == [("CLOSE", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED")]
    assert client_end[-2:] == [("CLOSE_WAIT", "LAST_ACK"), ("LAST_ACK", "CLOSE")]
    assert all(line["event"] != "probe" for line in kernel)
    # One clock: the server's own "closed" comes between its FIN_WAIT1 and the client's CLOSE_WAIT... in time.
    closed = next(line for line in lines if line.get("event") == "closed")
    fin_wait1 = next(line for line in kernel if line.get("new") == "FIN_WAIT1")
    last_close = next(line for line in kernel if line.get("new") == "CLOSE" and line["dport"] == port)
    assert abs(float(closed["ts"]) - float(fin_wait1["time"])) < 0.5  # type: ignore[arg-type]
    assert float(last_close["time"]) >= float(fin_wait1["time"])  # type: ignore[arg-type]
    assert not (TRACEFS_INSTANCES / f"netlens-{proc.pid}").exists()


def test_text_lines_and_no_root_sentence(netlens_cli) -> None:
    proc = start()
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().rsplit(":", 1)[1].split()[0]
        assert netlens_cli("client", "search", "morpheus", "--port", port).returncode == 0
        seen: list[str] = []
        while not any("kernel" in line and "FIN_WAIT1 → FIN_WAIT2" in line for line in seen):
            seen.append(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    state_line = next(line for line in seen if "FIN_WAIT1 → FIN_WAIT2" in line)
    assert state_line.startswith("kernel  ") and f"127.0.0.1:{port}" in state_line

    user = start(user=True)
    try:
        assert user.stdout is not None
        assert "listening on" in user.stdout.readline()  # the server runs all the same
        user.send_signal(signal.SIGTERM)
        _, err = user.communicate(timeout=10)
    finally:
        user.kill()
    assert user.returncode == 0
    assert ("netlens: no kernel events: kernel tracing needs root (it reads tracefs at /sys/kernel/tracing): "
            "run netlens with sudo.") in err.splitlines()
