"""Start, stop, restart and resource exhaustion."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from probe_helpers import run_ss
from waiting import wait_for

from netlens.proto import encode_request
from netlens.server import PortInUseError, Server, ServerConfig, clients


def test_stop_within_a_second_closes_every_socket() -> None:
    server = Server(ServerConfig(mode="echo", port=0)).start()
    port = server.address[1]
    socks = [socket.create_connection(server.address) for _ in range(50)]
    wait_for(lambda: server.stats().active == 50)
    started = time.monotonic()
    server.stop(timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert not server.running
    for sock in socks:
        sock.settimeout(2)
        assert sock.recv(10) == b""  # every connection got its FIN
        sock.close()
    assert not [s for s in run_ss(port) if s.state in ("LISTEN", "ESTABLISHED") and s.local_port == port]


def test_port_in_use_is_one_sentence_with_exit_code_2() -> None:
    with Server(ServerConfig(port=0)) as first:
        with pytest.raises(PortInUseError) as info:
            Server(ServerConfig(port=first.address[1])).start()
    assert info.value.exit_code == 2
    assert str(info.value).startswith(f"127.0.0.1:{first.address[1]} is already in use")


def test_restart_on_the_same_port_despite_time_wait() -> None:
    with Server(ServerConfig(port=0)) as server:
        port = server.address[1]
        clients.search("127.0.0.1", port, "ring")
        wait_for(lambda: any(s.state == "TIME_WAIT" for s in run_ss(port)))
    with Server(ServerConfig(port=port)) as again:  # SO_REUSEADDR
        assert clients.search("127.0.0.1", port, "ring").response.value is not None
        assert again.address[1] == port


EMFILE_SCRIPT = textwrap.dedent("""
    import resource, sys, time
    from netlens.server import Server, ServerConfig, clients
    from netlens.server.events import ErrorEvent
    server = Server(ServerConfig(port=0, idle_timeout=0)).start()
    sub = server.subscribe()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (40, hard))
    print(server.address[1], flush=True)
    sys.stdin.readline()                      # the test has flooded us and let go
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    errors = [e for e in sub.drain() if isinstance(e, ErrorEvent) and e.op == "accept"]
    reply = clients.search(*server.address, "morpheus", timeout=3)
    print(len(errors), server.stats().refused_emfile, reply.response.value["result"])
    print(errors[0].message if errors else "")
    server.stop()
""")


def test_emfile_is_survived_and_reported() -> None:
    proc = subprocess.Popen([sys.executable, "-c", EMFILE_SCRIPT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline())
        # More connections than the server has descriptors: the kernel completes them all
        # (backlog), and the server must shed what it cannot hold instead of spinning.
        flood = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(60)]
        time.sleep(0.5)
        readable, _, _ = select.select(flood, [], [], 0.5)
        refused = 0
        for sock in readable:  # only shed connections have anything to say (EOF or RST)
            try:
                refused += sock.recv(1) == b""
            except ConnectionResetError:
                refused += 1
        for sock in flood:
            sock.close()
        time.sleep(0.3)
        out, err = proc.communicate("go\n", timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    first, message = out.splitlines()[:2]
    errors, shed, result = first.split(" ", 2)
    assert int(errors) >= 1 and int(shed) >= 1 and refused >= 1
    assert result == "Follow the white rabbit. \U0001f430"
    assert "out of file descriptors (EMFILE)" in message


def test_the_loop_sleeps_when_nothing_happens() -> None:
    import os

    with Server(ServerConfig(mode="echo", port=0)) as server:
        with socket.create_connection(server.address):
            wait_for(lambda: server.stats().active == 1)
            before = os.times()
            time.sleep(1.0)
            after = os.times()
    assert (after.user - before.user) + (after.system - before.system) < 0.05


def test_partial_sends_are_reported() -> None:
    from netlens.server import SetOption, SocketOption
    from netlens.server.events import Sent

    with Server(ServerConfig(mode="search", port=0)) as server:
        sub = server.subscribe(from_start=False)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.address)
            request = encode_request("search", "x" * 200_000)  # answered with a 200 kB "No match"
            sock.sendall(request[:10])
            conn = wait_for(lambda: server.snapshot())[0].conn
            server.submit(SetOption(conn, SocketOption.SO_SNDBUF, 4096)).result(2)
            sock.sendall(request[10:])
            data = b""
            sock.settimeout(3)
            while chunk := sock.recv(4096):
                data += chunk
        sends = [e for e in sub.drain() if isinstance(e, Sent)]
        assert len(sends) > 1 and sends[0].partial and not sends[-1].partial
        assert sum(e.nbytes for e in sends) == len(data) > 200_000
