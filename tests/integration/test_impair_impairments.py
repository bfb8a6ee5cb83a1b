"""Loss, blackhole, rate and delay (as root), each measured from outside the code that set it up."""

from __future__ import annotations

import os
import resource
import socket
import statistics

from impair_helpers import (
    PACKET_HOST,
    PACKET_OUTGOING,
    connect_time,
    drain_frames,
    lab,
    raw_capture,
    receive_all,
    send_udp,
    tcp_pair,
    timed_bulk,
    udp_port_of,
    udp_receiver,
)

from netlens.impair import LabNetwork

DATAGRAMS = 400


def _udp_run(net: LabNetwork, count: int) -> tuple[set[int], int, int]:
    """Send ``count`` datagrams to the server.

    Returns the numbers the server's socket received, and how many of them a
    capture saw arriving on the server's device and leaving the client's.
    """
    with udp_receiver(net) as receiver, raw_capture(net, "server") as arriving, \
            raw_capture(net, "client") as leaving:
        port = receiver.getsockname()[1]
        send_udp(net, port, count)
        received = receive_all(receiver)
        seen_in = sum(1 for frame, kind in drain_frames(arriving, settle=0.05)
                      if kind == PACKET_HOST and udp_port_of(frame) == port)
        seen_out = sum(1 for frame, kind in drain_frames(leaving, settle=0.05)
                       if kind == PACKET_OUTGOING and udp_port_of(frame) == port)
    return received, seen_in, seen_out


def test_loss_on_ingress_drops_about_n_percent_and_the_capture_still_shows_every_original() -> None:
    with lab() as net:
        net.set_loss(30, toward="server")
        received, seen_in, seen_out = _udp_run(net, DATAGRAMS)
        dropped = DATAGRAMS - len(received)
        # Binomial(400, 0.3): mean 120, sd 9.2; 80..160 is more than 4 sd either way.
        assert 80 <= dropped <= 160, dropped
        # The kernel's own count of what the rule dropped matches what the socket missed, exactly...
        assert net.drops("server").loss == dropped
        assert net.drops("client").total == 0
        # ...and captures on the receiving device and on the sender's saw every original, lost ones included.
        assert seen_in == seen_out == DATAGRAMS
        # Nothing was lost to the socket buffer instead (nstat inside the namespace agrees).
        counters = net.counters("server")
        assert counters["Udp:RcvbufErrors"] == 0
        assert counters["Udp:InDatagrams"] == len(received)
        net.set_loss(0, toward="server")
        received, _, _ = _udp_run(net, 100)
        assert len(received) == 100
        assert net.drops("server").loss == dropped  # the counter survives the rule change


def test_the_blackhole_drops_everything_until_it_is_turned_off() -> None:
    with lab() as net:
        with net.server.namespace.entered():
            listener = socket.create_server((net.server.address, 0))
        with listener:
            port = listener.getsockname()[1]
            net.set_blackhole(True, toward="server")
            received, seen_in, _ = _udp_run(net, 50)
            assert received == set() and seen_in == 50
            assert net.drops("server").blackhole == 50
            try:
                connect_time(net, port, timeout=0.3)
                raise AssertionError("a TCP connect crossed the blackhole")
            except TimeoutError:
                pass
            net.set_blackhole(False, toward="server")
            received, _, _ = _udp_run(net, 50)
            assert received == set(range(50))
            assert connect_time(net, port) < 0.1


def test_the_rate_limit_holds_a_bulk_transfer_to_the_configured_rate() -> None:
    rate_kbit = 20_000
    total, skip = 3_000_000, 500_000
    with lab() as net, tcp_pair(net) as (client, server):
        net.set_rate(rate_kbit, toward="client")
        qdiscs = net.server.namespace.tool(["tc", "qdisc", "show", "dev", net.server.device]).stdout
        assert "tbf" in qdiscs and "20Mbit" in qdiscs
        elapsed, counted = timed_bulk(server, client, total, skip=skip)
        goodput = counted / elapsed
        # tbf counts whole frames: 1448 payload bytes travel in 1514-byte frames.
        expected = rate_kbit * 1000 / 8 * 1448 / 1514
        assert abs(goodput - expected) / expected < 0.12, (goodput, expected)
        net.set_rate(None, toward="client")
        qdiscs = net.server.namespace.tool(["tc", "qdisc", "show", "dev", net.server.device]).stdout
        assert "tbf" not in qdiscs


def test_the_tap_relay_delays_each_direction_so_the_round_trip_is_twice_the_delay() -> None:
    delay_ms = 20
    with lab(delay_ms=delay_ms) as net:
        assert net.describe()["link"] == "tap" and net.relay is not None
        with net.server.namespace.entered():
            listener = socket.create_server((net.server.address, 0))
        with listener:
            port = listener.getsockname()[1]
            # A connect takes one round trip: SYN there (delay_ms), SYN-ACK back (delay_ms).
            times = [connect_time(net, port) for _ in range(5)]
            assert min(times) >= 2 * delay_ms / 1000
            assert statistics.median(times) < (2 * delay_ms + 15) / 1000, times
            net.set_delay(5)
            times = [connect_time(net, port) for _ in range(5)]
            assert 0.010 <= statistics.median(times) < 0.025, times
        # The link is an Ethernet link with the asked MTU, like the veth one.
        with tcp_pair(net) as (client, _):
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) == 1448


def test_delay_rate_and_loss_combine_on_one_path() -> None:
    total = 1_000_000
    with lab(delay_ms=10) as net, tcp_pair(net) as (client, server):
        net.set_rate(10_000, toward="client")
        net.set_loss(2, toward="client")
        retrans_before = net.counters("server")["Tcp:RetransSegs"]
        elapsed, _ = timed_bulk(server, client, total)
        # ~700 data frames at 2 %: some are lost (P(none) < 1e-6), and the server retransmits them.
        assert net.drops("client").loss > 0
        assert net.counters("server")["Tcp:RetransSegs"] > retrans_before
        # 1 MB at 10 Mbit/s cannot take less than 0.8 s, whatever else happens.
        assert elapsed >= total * 8 / 10_000_000 * 0.95


def test_the_relay_works_when_its_descriptors_are_numbered_above_select_s_limit() -> None:
    # A busy netlens (thousands of client sockets) hands the relay descriptors above 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    fillers = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]
    try:
        with lab(delay_ms=2) as net, tcp_pair(net) as (client, server):
            assert net.relay is not None and net.relay.running
            client.sendall(b"ping")
            assert server.recv(10) == b"ping"
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
