"""Kernel counters (nstat's numbers) read by netlens, in a namespace the test makes; --backlog reaches the kernel."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from netlens.probe.counters import CounterError, CounterWatch, flat, read_counters, read_counters_in_netns
from netlens.server import Server, ServerConfig

OVERFLOW = textwrap.dedent("""
    import socket, time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)                      # never accept(): the queue fills at once
    clients = []
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(listener.getsockname())
        clients.append(c)
    time.sleep(1.5)                         # the kernel retries the dropped handshakes meanwhile
""")


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"nlh-ctr-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def nstat(netns: str, name: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", netns, "nstat", "-asz", name], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(rf"^{name}\s+(\d+)", out, re.M)
    assert match, out
    return int(match.group(1))


def test_listen_overflows_in_a_namespace_match_nstat(netns: str) -> None:
    assert read_counters_in_netns(netns)["TcpExt"]["ListenOverflows"] == 0
    subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", OVERFLOW], check=True, timeout=20)
    counters = read_counters_in_netns(netns)
    overflows = counters["TcpExt"]["ListenOverflows"]
    assert overflows > 0
    assert overflows == nstat(netns, "TcpExtListenOverflows")
    assert counters["Tcp"]["ActiveOpens"] == nstat(netns, "TcpActiveOpens") >= 8
    assert flat(counters)["TcpExtListenOverflows"] == overflows
    assert "ListenOverflows" in read_counters()["TcpExt"]  # and this process's own namespace reads too


def test_a_missing_namespace_is_one_sentence() -> None:
    with pytest.raises(CounterError, match="there is no network namespace 'nlh-none'"):
        read_counters_in_netns("nlh-none")


def test_watch_counts_growth_since_it_began() -> None:
    watch = CounterWatch("Tcp", "ActiveOpens", interval=0.0)
    with Server(ServerConfig(mode="echo", port=0)) as server:
        for _ in range(3):
            socket.create_connection(server.address).close()
    assert watch.delta() >= 3 and watch.error is None


def test_backlog_option_reaches_the_kernel() -> None:
    with Server(ServerConfig(mode="search", port=0, backlog=7)) as server:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{server.address[1]}"], capture_output=True, text=True,
                             check=True).stdout.split()
        assert out[0] == "LISTEN" and out[2] == "7"  # Send-Q of a listener is its backlog
        assert server.stats().backlog == 7
