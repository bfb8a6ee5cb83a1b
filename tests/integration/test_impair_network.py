"""The lab network itself (as root): two hermetic namespaces, one wire, real TCP across it."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from impair_helpers import drain_frames, lab, raw_capture, tcp_checksum_ok, tcp_pair
from waiting import wait_for

from netlens.capture import Capture
from netlens.impair import ImpairError
from netlens.server import Server, ServerConfig


def test_a_tcp_exchange_crosses_the_wire_between_the_two_namespaces() -> None:
    with lab() as net, tcp_pair(net) as (client, server):
        client.sendall(b"hello over veth")
        assert server.recv(100) == b"hello over veth"
        server.sendall(b"and back")
        assert client.recv(100) == b"and back"
        # Each side sees the other's lab address: the packets really crossed the wire.
        assert server.getpeername()[0] == net.client.address
        assert client.getpeername()[0] == net.server.address
        # MSS on a 1500-byte link with timestamps: 1500 - 20 (IP) - 20 (TCP) - 12 (timestamps).
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) == 1448


def test_each_namespace_holds_only_lo_and_its_end_and_the_root_namespace_neither() -> None:
    with lab() as net:
        for endpoint in (net.client, net.server):
            links = endpoint.namespace.tool(["ip", "-o", "link", "show"]).stdout
            names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
            assert names == sorted(["lo", endpoint.device])
            root = subprocess.run(["ip", "link", "show", endpoint.device], capture_output=True, timeout=10)
            assert root.returncode != 0, f"{endpoint.device} leaked into the root namespace"
        # Three distinct namespaces: the root one and the two of the lab (the inodes a tracer filters on).
        root_inode = os.stat("/proc/self/ns/net").st_ino
        described = net.describe()
        inodes = {root_inode, described["client"]["netns_inode"], described["server"]["netns_inode"]}
        assert len(inodes) == 3


def test_settings_are_pinned_per_namespace_and_counters_are_the_namespaces_own() -> None:
    with lab(slow_start_after_idle=False, sysctls=(("net.ipv4.tcp_syncookies", "2"),)) as net:
        for endpoint in (net.client, net.server):
            assert endpoint.namespace.get_sysctl("net.ipv4.tcp_slow_start_after_idle") == "0"
            assert endpoint.namespace.get_sysctl("net.ipv4.tcp_syncookies") == "2"
            assert endpoint.namespace.get_sysctl("net.ipv6.conf.all.disable_ipv6") == "1"
        before = net.counters("server")["Tcp:PassiveOpens"]
        with tcp_pair(net):
            pass
        # One accepted connection in the server namespace, none in the client's: counters are per netns,
        # and they agree with nstat run inside (an outside witness).
        assert net.counters("server")["Tcp:PassiveOpens"] == before + 1
        assert net.counters("client")["Tcp:PassiveOpens"] == 0
        nstat = net.server.namespace.run(["nstat", "-asz", "TcpPassiveOpens"]).stdout
        witnessed = {line.split()[0]: int(line.split()[1]) for line in nstat.splitlines() if line[:1].isalpha()}
        assert witnessed == {"TcpPassiveOpens": before + 1}


def test_a_capture_on_the_wire_shows_mtu_sized_frames_with_real_checksums() -> None:
    with lab() as net, tcp_pair(net) as (client, server), raw_capture(net, "server") as capture:
        client.sendall(b"x" * 200_000)
        received = 0
        while received < 200_000:
            received += len(server.recv(65536))
        frames = [frame for frame, kind in drain_frames(capture) if frame[12:14] == b"\x08\x00" and frame[23] == 6]
    data = [frame for frame in frames if len(frame) > 100]
    assert len(data) >= 200_000 // 1448
    assert max(len(frame) for frame in frames) == 1514  # no 64 KB offload super-frames
    assert all(tcp_checksum_ok(frame) for frame in frames)


def test_a_congestion_control_the_host_does_not_allow_in_namespaces_is_one_clear_sentence() -> None:
    with open("/proc/sys/net/ipv4/tcp_allowed_congestion_control") as allowed_file:
        allowed = allowed_file.read().split()
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as available_file:
        refused = [name for name in available_file.read().split() if name not in allowed]
    if refused:
        with pytest.raises(ImpairError, match="TCP_CONGESTION"):
            with lab(congestion_control=refused[0]):
                pass
    with lab(congestion_control=allowed[0]) as net:
        assert net.server.namespace.get_sysctl("net.ipv4.tcp_congestion_control") == allowed[0]
        assert net.describe()["congestion_control"] == allowed[0]


def test_netlens_own_server_started_inside_the_server_namespace_serves_the_client_namespace() -> None:
    # The server binds in the calling thread and its loop thread is started there too:
    # a thread started inside a namespace stays in it, so the whole server lives in the lab.
    with lab(delay_ms=2) as net:
        with net.server.namespace.entered():
            server = Server(ServerConfig(mode="echo", host=net.server.address, port=0, idle_timeout=5.0)).start()
        try:
            assert server.address[0] == net.server.address
            with net.client.namespace.entered():
                client = socket.create_connection(server.address, timeout=5)
            with client:
                client.sendall(b"Message 1 from client.")
                assert client.recv(100) == b"Message 1 from client."
            # From the root namespace the lab address is not ours: the listener is not here.
            with socket.socket() as outsider:
                outsider.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                with pytest.raises(OSError):
                    outsider.bind(server.address)  # EADDRNOTAVAIL: no such address in the root namespace
        finally:
            server.stop()


def test_netlens_own_capture_started_inside_a_namespace_records_the_lab_wire() -> None:
    with lab() as net:
        with net.server.namespace.entered():
            listener = socket.create_server((net.server.address, 0))
            port = listener.getsockname()[1]
            capture = Capture(iface=net.server.device, port=port).start()
        try:
            with net.client.namespace.entered():
                client = socket.create_connection((net.server.address, port), timeout=5)
            with listener, client:
                accepted, _ = listener.accept()
                with accepted:
                    client.sendall(b"seen on the wire")
                    assert accepted.recv(100) == b"seen on the wire"
            wait_for(lambda: capture.stats().captured >= 4, timeout=3)  # SYN, SYN-ACK, ACK, data
        finally:
            stats = capture.stop()
    assert stats.error is None and stats.kernel_drops == 0


@pytest.mark.parametrize("delay_ms", [0, 1])
def test_the_mtu_is_what_the_lab_asks_for_on_either_kind_of_link(delay_ms: int) -> None:
    with lab(mtu=1280, delay_ms=delay_ms) as net, tcp_pair(net) as (client, _):
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) == 1280 - 20 - 20 - 12
        link = net.client.namespace.tool(["ip", "-o", "link", "show", net.client.device]).stdout
        assert " mtu 1280 " in link
