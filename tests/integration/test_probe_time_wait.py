"""TIME_WAIT sockets the UI does not show, and the sockets outside the port: counted, never listed.

Every test runs in a network namespace of its own (exact counts, whatever else
the machine does; its TIME_WAIT sockets vanish with it), on real loopback
connections, with `ss` run in the same namespace as the witness.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
from probe_helpers import Sockets, run_in_private_netns, ss_path

from netlens.probe import Prober, Snapshot, netlink
from netlens.probe.sockdiag import DumpParser, dump_tcp

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux-only")


def leave_time_wait(listener: socket.socket, count: int, server_first: bool = True) -> list[int]:
    """Make ``count`` connections to ``listener`` that end in TIME_WAIT; return the clients' ports.

    With ``server_first`` the listener's side closes first, so the TIME_WAIT
    sockets are on the listener's port.
    """
    ports = []
    for _ in range(count):
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        server, _ = listener.accept()
        ports.append(client.getsockname()[1])
        first, second = (server, client) if server_first else (client, server)
        first.close()
        second.close()
    return ports


def ss_count(*filters: str) -> int:
    """Sockets `ss -Htan` lists with ``filters`` (run in the caller's namespace)."""
    ss = ss_path()
    assert ss, "ss not found: install Debian's iproute2"
    out = subprocess.run([ss, "-Htan", *filters], capture_output=True, text=True, timeout=20, check=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def time_wait_ports(snapshot: Snapshot) -> set[int]:
    """The client ports of the snapshot's TIME_WAIT sockets (their remote port: the server closed first)."""
    return {s.remote_port for s in snapshot.sockets if s.state == "TIME_WAIT"}


@dataclass
class Scene:
    """What a test in the namespace saw."""

    port: int
    old: list[int]
    new: list[int]
    full: Snapshot
    limited: Snapshot
    ss_time_wait: int


def build_scene(limit: int, keep_old: int = 0) -> Scene:
    """A served port with one live pair, 20 old TIME_WAIT and 5 newer ones; snapshots with and without ``limit``."""
    socks = Sockets()
    try:
        listener = socks.listener()
        port = listener.getsockname()[1]
        socks.pair(listener)
        old = leave_time_wait(listener, 20)
        time.sleep(0.3)  # the newer ones have 300 ms more left on their timers
        new = leave_time_wait(listener, 5)
        prober = Prober(backend="sock_diag")
        full = prober.snapshot(port)
        keep = {s.cookie for s in full.sockets if s.state == "TIME_WAIT" and s.remote_port in old[:keep_old]}
        limited = prober.snapshot(port, time_wait_limit=limit, time_wait_keep={c for c in keep if c is not None})
        witness = ss_count("state", "time-wait", f"( sport = :{port} or dport = :{port} )")
        return Scene(port, old, new, full, limited, witness)
    finally:
        socks.close_all()


def test_a_time_wait_limit_keeps_the_newest_and_counts_the_rest() -> None:
    scene = run_in_private_netns(lambda: build_scene(limit=5))
    assert scene.ss_time_wait == 25 == len(time_wait_ports(scene.full))
    assert time_wait_ports(scene.limited) == set(scene.new)
    assert scene.limited.hidden_time_wait == 20 and scene.full.hidden_time_wait == 0
    others = sorted((s.key, s.state) for s in scene.full.sockets if s.state != "TIME_WAIT")
    assert sorted((s.key, s.state) for s in scene.limited.sockets if s.state != "TIME_WAIT") == others
    assert len(others) == 3  # the listener and the live pair
    shown = [s for s in scene.limited.sockets if s.state == "TIME_WAIT"]
    assert all(s.timer is not None and s.timer.name == "timewait" and s.cookie for s in shown)


def test_time_wait_sockets_on_screen_are_kept_besides_the_newest() -> None:
    scene = run_in_private_netns(lambda: build_scene(limit=5, keep_old=3))
    assert time_wait_ports(scene.limited) == set(scene.new) | set(scene.old[:3])
    assert scene.limited.hidden_time_wait == 17


def test_a_limit_of_zero_shows_no_time_wait_but_counts_them() -> None:
    scene = run_in_private_netns(lambda: build_scene(limit=0))
    assert time_wait_ports(scene.limited) == set()
    assert scene.limited.hidden_time_wait == 25 == scene.ss_time_wait


def test_sockets_elsewhere_are_counted_from_the_kernels_totals_not_listed() -> None:
    def scene() -> tuple[Snapshot, int, int]:
        socks = Sockets()
        try:
            served = socks.listener()
            port = served.getsockname()[1]
            leave_time_wait(served, 4)
            other = socks.listener()
            leave_time_wait(other, 40, server_first=False)  # TIME_WAIT on the clients' ports
            socks.pair(other)  # and a live pair elsewhere
            snap = Prober(backend="sock_diag").snapshot(port, time_wait_limit=2)
            return snap, ss_count("state", "time-wait"), ss_count("state", "established", "state", "listening")
        finally:
            socks.close_all()

    snap, ss_time_wait, ss_open = run_in_private_netns(scene)
    assert ss_time_wait == 44
    assert snap.totals is not None and snap.totals.time_wait == 44
    assert snap.time_wait_elsewhere == 40
    # Open elsewhere: the other listener and its live pair; on the port: the listener.
    assert ss_open == 4 and snap.totals.sockets == 4 and snap.sockets_elsewhere == 3
    assert (len(snap.sockets), snap.hidden_time_wait) == (3, 2)
    assert snap.to_dict()["totals"] == {"sockets": 4, "time_wait": 44}


def test_one_dump_covers_both_families_as_two_per_family_dumps_do() -> None:
    socks = Sockets()
    try:
        v4 = socks.listener("127.0.0.1")
        port = v4.getsockname()[1]
        v6 = socks.keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::1", port))
        v6.listen(8)
        socks.pair(v4)
        socks.pair(v6)
        sock = netlink.open_sock_diag()
        try:
            both = dump_tcp(sock, port=port)
            apart = DumpParser(port)
            for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
                request = netlink.build_dump_request(family, 0, seq=seq, bytecode=netlink.port_filter_bytecode(port))
                netlink.run_dump(sock, request, apart.feed)
        finally:
            sock.close()
    finally:
        socks.close_all()
    assert sorted((s.key, s.state) for s in both) == sorted((s.key, s.state) for s in apart.sockets)
    assert {s.family for s in both} == {"IPv4", "IPv6"} and len(both) == 6
    assert all(s.tcp_info is not None for s in both)  # the attributes came with the one dump


def test_a_kernel_refusing_the_one_dump_form_gets_one_dump_per_family(monkeypatch: pytest.MonkeyPatch) -> None:
    real = netlink.build_compat_dump_request

    def refused_form(*args: object, **kwargs: object) -> bytes:
        # DCCPDIAG_GETSOCK: the same old form for a protocol this kernel has no handler for, so the
        # kernel answers EINVAL, as one without the TCP compat handler would.
        request = bytearray(real(*args, **kwargs))  # type: ignore[arg-type]
        struct.pack_into("=H", request, 4, 19)
        return bytes(request)

    monkeypatch.setattr(netlink, "build_compat_dump_request", refused_form)
    socks = Sockets()
    try:
        listener = socks.listener()
        port = listener.getsockname()[1]
        client, server = socks.pair(listener)
        snap = Prober(backend="sock_diag").snapshot(port)
        expected = {listener.getsockname()[1], client.getsockname()[1], server.getsockname()[1]}
        assert {s.local_port for s in snap.sockets} == expected and len(snap.sockets) == 3
    finally:
        socks.close_all()


def test_a_servers_connections_found_by_4_tuple_are_what_the_dump_lists() -> None:
    """The exact lookups (no walk of the socket table) find the same sockets as the port's full dump."""
    from collections import Counter

    from netlens.proto import encode_request
    from netlens.server import Server, ServerConfig

    def scene() -> tuple[Snapshot, Snapshot, int, int]:
        held: list[socket.socket] = []
        with Server(ServerConfig(mode="search", host="127.0.0.1", port=0)) as server:
            try:
                port = server.address[1]
                held += [socket.create_connection(server.address, timeout=5) for _ in range(3)]
                for _ in range(5):  # answered, then closed by the server first: TIME_WAIT on its side
                    with socket.create_connection(server.address, timeout=5) as client:
                        client.sendall(encode_request("search", "morpheus"))
                        while client.recv(4096):
                            pass
                deadline = time.monotonic() + 5
                while len(server.snapshot(buffers=False)) < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
                live = [(conn.local, conn.peer) for conn in server.snapshot(buffers=False)]
                closed = server.recently_closed()
                nobody = (("127.0.0.1", port), ("127.0.0.1", 9))  # no such connection: not listed
                prober = Prober(backend="sock_diag")
                exact = prober.snapshot_connections(port, [*live, *closed, nobody])
                full = prober.snapshot(port)
                return exact, full, len(closed), server.closes_within()
            finally:
                for sock in held:
                    sock.close()

    exact, full, closed, counted = run_in_private_netns(scene)
    assert sorted((s.key, s.state) for s in exact.sockets) == sorted((s.key, s.state) for s in full.sockets)
    assert Counter(s.state for s in exact.sockets) == {"LISTEN": 1, "ESTABLISHED": 6, "TIME_WAIT": 5}
    assert closed == counted == 5
    assert all(s.timer is not None and s.timer.name == "timewait" for s in exact.sockets if s.state == "TIME_WAIT")
    listener = next(s for s in exact.sockets if s.state == "LISTEN")
    assert listener.send_q == 128 and listener.tcp_info is not None  # its backlog, and the attributes
    # Only what was asked for was counted: nothing is claimed about the rest of the namespace.
    assert exact.hidden_time_wait == 0 and not exact.port_counted
    assert exact.time_wait_elsewhere is None and exact.sockets_elsewhere is None
