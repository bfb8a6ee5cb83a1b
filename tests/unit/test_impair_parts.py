"""The impairment layer's pure parts and its relay loop (no root needed)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from netlens.impair import ImpairError, LabSpec
from netlens.impair.links import subnet_addresses
from netlens.impair.netns import Owner, check_prefix, namespace_name, parse_owner, process_start_ticks
from netlens.impair.relayloop import relay
from netlens.impair.rules import IngressPolicy, ingress_script, loss_threshold, parse_counters
from netlens.impair.shaping import RateLimit, tbf_command
from netlens.impair.tools import NEEDS_ROOT, missing_privileges
from netlens.probe.counters import flat
from netlens.probe.counters import parse_counters as parse_counter_lines


def test_namespace_names_carry_their_owner_and_only_our_prefix_parses() -> None:
    owner = Owner(4242, 987654)
    name = namespace_name("nlab", owner, 3, "server")
    assert name == "nlab-4242-987654-3-server"
    assert parse_owner("nlab", name) == owner
    assert parse_owner("nli", name) is None
    assert parse_owner("nlab", "nlab-4242-x-3-server") is None
    assert parse_owner("nlab", "other-netns") is None


def test_an_owner_is_alive_only_with_the_same_pid_and_start_time() -> None:
    me = Owner.me()
    assert me.alive()
    assert not Owner(me.pid, me.start_ticks + 1).alive()  # a recycled pid is not the owner
    assert process_start_ticks(2**22 + 1) is None


@pytest.mark.parametrize("prefix", ["", "NLAB", "1ab", "a-b", "abcdefghijklm"])
def test_prefixes_that_would_break_names_are_refused(prefix: str) -> None:
    with pytest.raises(ImpairError):
        check_prefix(prefix)


def test_the_ingress_script_installs_exactly_the_policy() -> None:
    quiet = ingress_script("nlab", "veth-server", IngressPolicy())
    assert 'hook ingress device "veth-server"' in quiet and "add rule" not in quiet
    lossy = ingress_script("nlab", "veth-server", IngressPolicy(loss_percent=2.5, blackhole=True))
    assert "numgen random mod 10000 < 250 counter name \"loss\" drop" in lossy
    assert 'counter name "blackhole" drop' in lossy
    assert lossy.index("flush chain") < lossy.index("add rule")
    assert loss_threshold(100) == 10000 and loss_threshold(0.004) == 0
    with pytest.raises(ImpairError):
        IngressPolicy(loss_percent=101)


def test_drop_counters_are_read_from_nft_json_and_garbage_is_one_sentence() -> None:
    listing = ('{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"counter": {"family": "netdev", "name": "loss",'
               ' "table": "nlab", "handle": 1, "packets": 7, "bytes": 420}}, {"counter": {"name": "blackhole",'
               ' "packets": 3, "bytes": 9}}]}')
    counts = parse_counters(listing)
    assert (counts.loss, counts.blackhole, counts.total) == (7, 3, 10)
    with pytest.raises(ImpairError, match="cannot read"):
        parse_counters("not json")


def test_the_token_bucket_holds_at_least_two_frames_and_a_queue_of_the_asked_length() -> None:
    command = tbf_command("veth-server", RateLimit(8000, queue_ms=100), 1500)
    assert command[:6] == ["tc", "qdisc", "replace", "dev", "veth-server", "root"]
    assert command[6] == "tbf"
    assert command[command.index("rate") + 1] == "8000kbit"
    assert int(command[command.index("burst") + 1]) >= 2 * 1514
    assert int(command[command.index("limit") + 1]) == 100_000  # 1 MB/s for 100 ms
    assert tbf_command("veth-server", None, 1500) == ["tc", "qdisc", "del", "dev", "veth-server", "root"]
    with pytest.raises(ImpairError):
        RateLimit(0)


def test_counter_tables_parse_like_nstat_and_mismatched_lines_are_skipped() -> None:
    text = ("TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 4 12\n"
            "Tcp: RtoAlgorithm MaxConn\nTcp: 1 -1\n"
            "Udp: InDatagrams\nUdpLite: 5\n")
    assert flat(parse_counter_lines(text), ":") == {"TcpExt:SyncookiesSent": 4, "TcpExt:ListenOverflows": 12,
                                               "Tcp:RtoAlgorithm": 1, "Tcp:MaxConn": -1}


def test_privileges_are_read_from_the_effective_capability_set() -> None:
    assert missing_privileges("Name:\tx\nCapEff:\t000001ffffffffff\n") is None
    assert missing_privileges("CapEff:\t0000000000001000\n") == NEEDS_ROOT  # CAP_NET_ADMIN alone
    assert missing_privileges("no caps here") == NEEDS_ROOT


def test_lab_subnets_are_in_the_benchmark_range_and_specs_are_checked() -> None:
    assert subnet_addresses(0) == ("198.18.0.1", "198.18.0.2")
    assert subnet_addresses(511) == ("198.19.255.1", "198.19.255.2")
    with pytest.raises(ImpairError):
        subnet_addresses(512)
    assert LabSpec().link_kind == "veth" and LabSpec(delay_ms=5).link_kind == "tap"
    with pytest.raises(ImpairError):
        LabSpec(delay_ms=5, link="veth")
    with pytest.raises(ImpairError):
        LabSpec(mtu=100)
    assert ("net.ipv4.tcp_slow_start_after_idle", "0") in LabSpec(slow_start_after_idle=False).pinned_sysctls()


@contextmanager
def _relay_between_socketpairs(delay: float) -> Iterator[tuple[socket.socket, socket.socket, int]]:
    """The relay loop between two SOCK_SEQPACKET pairs (frame boundaries kept, like TAP descriptors)."""
    a_outer, a_inner = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    b_outer, b_inner = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a_inner.setblocking(False)
    b_inner.setblocking(False)
    control_r, control_w = os.pipe()
    worker = threading.Thread(target=relay, args=(a_inner.fileno(), b_inner.fileno(), delay, control_r), daemon=True)
    worker.start()
    try:
        yield a_outer, b_outer, control_w
    finally:
        os.close(control_w)  # the lifeline: EOF ends the relay
        worker.join(2)
        alive = worker.is_alive()
        for sock in (a_outer, a_inner, b_outer, b_inner):
            sock.close()
        os.close(control_r)
        assert not alive, "the relay did not stop when its lifeline closed"


def test_the_relay_holds_each_frame_for_the_delay_in_both_directions_in_order() -> None:
    with _relay_between_socketpairs(0.030) as (a, b, _):
        a.settimeout(2)
        b.settimeout(2)
        start = time.perf_counter()
        for number in range(3):
            a.send(b"frame %d" % number)
        got = [b.recv(100) for _ in range(3)]
        there = time.perf_counter() - start
        b.send(b"reply")
        assert a.recv(100) == b"reply"
        both = time.perf_counter() - start
    assert got == [b"frame 0", b"frame 1", b"frame 2"]
    # Lower bounds are the property; upper bounds leave room for a busy shared machine.
    assert 0.030 <= there < 0.060
    assert 0.060 <= both < 0.100


def test_the_relay_delay_changes_on_a_control_line() -> None:
    with _relay_between_socketpairs(0.200) as (a, b, control):
        os.write(control, b"delay 10\n")
        time.sleep(0.02)  # let the relay read the line before the frame
        b.settimeout(2)
        start = time.perf_counter()
        a.send(b"quick")
        assert b.recv(100) == b"quick"
        assert 0.010 <= time.perf_counter() - start < 0.1
