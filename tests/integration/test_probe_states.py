"""netlens.probe against `ss` on real loopback sockets put in known TCP states.

Each test builds its sockets on 127.0.0.1 (or ::1) with port 0, waits for the
kernel to reach the state under test, then checks netlens's snapshot field
by field against `ss -Htanpimo` run on the same port, and against what the
test knows (its own pid and fds, the bytes it sent).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import pytest
from probe_helpers import Sockets, SsSocket, run_ss
from waiting import wait_for

from netlens.probe import SHUTDOWN_WR, Prober, Snapshot, SocketInfo

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux-only")

ADDR_KEY = tuple[str, int, str, int]


@pytest.fixture
def socks():
    made = Sockets()
    yield made
    made.close_all()


@pytest.fixture
def prober() -> Prober:
    # No silent psutil fallback here: these tests are about sock_diag.
    return Prober(backend="sock_diag")


def by_addr(snapshot: Snapshot) -> dict[ADDR_KEY, SocketInfo]:
    return {(s.local_addr, s.local_port, s.remote_addr, s.remote_port): s for s in snapshot.sockets}


def find(snapshot: Snapshot, sock: socket.socket, peer: bool = True) -> SocketInfo | None:
    """The snapshot's record for the Python socket ``sock`` (by its local and, if connected, peer address)."""
    local = sock.getsockname()
    remote = sock.getpeername() if peer else (("::" if sock.family == socket.AF_INET6 else "0.0.0.0"), 0)
    return by_addr(snapshot).get((local[0], local[1], remote[0], remote[1]))


def assert_same_as_ss(snapshot: Snapshot, reference: list[SsSocket]) -> None:
    """Every socket ss lists is in the snapshot with the same state, queues and owners, and nothing more."""
    ours = by_addr(snapshot)
    assert set(ours) == {ref.key for ref in reference}, "netlens and ss list different sockets"
    for ref in reference:
        sock = ours[ref.key]
        assert (sock.state, sock.recv_q, sock.send_q) == (ref.state, ref.recv_q, ref.send_q), ref
        assert sorted((o.name, o.pid, o.fd) for o in sock.owners) == sorted(ref.users), ref
        if ref.timer is None:
            assert sock.timer is None or sock.timer.name == "off", ref
        else:
            assert sock.timer is not None and sock.timer.name == ref.timer[0], ref
            assert sock.timer.retrans == ref.timer[2], ref


def settled(prober: Prober, port: int) -> Snapshot:
    """A snapshot taken once two in a row agree on every state and queue (the kernel has stopped moving)."""
    previous: list[Snapshot] = [prober.snapshot(port)]

    def shape(snap: Snapshot) -> list[tuple[ADDR_KEY, str, int | None, int | None]]:
        return sorted((k, v.state, v.recv_q, v.send_q) for k, v in by_addr(snap).items())

    def same() -> Snapshot | None:
        snap = prober.snapshot(port)
        stable = shape(snap) == shape(previous[0])
        previous[0] = snap
        return snap if stable else None

    return wait_for(same, timeout=5, interval=0.05)


def agreeing(prober: Prober, port: int) -> tuple[Snapshot, list[SsSocket]]:
    """A settled snapshot and an `ss` listing taken right after it that agree on every state and queue."""

    def attempt() -> tuple[Snapshot, list[SsSocket]] | None:
        snap = settled(prober, port)
        reference = run_ss(port)
        ours = sorted((k, v.state, v.recv_q, v.send_q) for k, v in by_addr(snap).items())
        theirs = sorted((ref.key, ref.state, ref.recv_q, ref.send_q) for ref in reference)
        return (snap, reference) if ours == theirs else None

    return wait_for(attempt, timeout=15, interval=0.1)


def test_listen_with_an_unaccepted_connection_shows_accept_queue_and_backlog(socks: Sockets, prober: Prober) -> None:
    listener = socks.listener(backlog=5)
    port = listener.getsockname()[1]
    client = socks.connect(listener)

    snap = wait_for(
        lambda: (s := prober.snapshot(port)) and (r := find(s, listener, peer=False)) and r.recv_q == 1 and s
    )
    row = find(snap, listener, peer=False)
    assert row is not None
    # ss semantics on LISTEN: Recv-Q is the accept queue, Send-Q the backlog.
    assert (row.state, row.recv_q, row.send_q) == ("LISTEN", 1, 5)
    assert (row.pid, row.fd) == (os.getpid(), listener.fileno())
    assert row.tcp_info is not None and row.tcp_info.unacked == 1  # the kernel's own copy of the accept queue
    # The queued connection's server side: established, but no process holds it yet.
    queued = by_addr(snap)[(client.getpeername()[0], port, "127.0.0.1", client.getsockname()[1])]
    assert queued.state == "ESTABLISHED" and queued.owners == ()
    mine = find(snap, client)
    assert mine is not None and (mine.pid, mine.fd) == (os.getpid(), client.fileno())
    assert_same_as_ss(snap, run_ss(port))


def test_established_with_unread_bytes_shows_them_in_recv_q_and_tcp_info(socks: Sockets, prober: Prober) -> None:
    listener = socks.listener()
    port = listener.getsockname()[1]
    client, server = socks.pair(listener)
    unread = 1234
    client.sendall(b"x" * unread)

    wait_for(lambda: (r := find(prober.snapshot(port), server)) and r.recv_q == unread)
    snap = settled(prober, port)
    reference = run_ss(port)
    assert_same_as_ss(snap, reference)

    srv, cli = find(snap, server), find(snap, client)
    assert srv is not None and cli is not None
    assert (srv.state, srv.recv_q, srv.pid, srv.fd) == ("ESTABLISHED", unread, os.getpid(), server.fileno())
    assert cli.send_q == 0 and cli.recv_q == 0
    assert srv.tcp_info is not None and cli.tcp_info is not None
    assert srv.tcp_info.bytes_received == unread
    assert cli.tcp_info.bytes_acked == unread + 1  # the SYN takes a sequence number too
    assert cli.inode and srv.inode and cli.uid == os.getuid()

    # TCP_INFO and skmem fields that do not move on an idle connection, exactly as ss prints them.
    refs = {ref.key: ref for ref in reference}
    for ours in (srv, cli):
        ref = refs[(ours.local_addr, ours.local_port, ours.remote_addr, ours.remote_port)]
        info, mem = ours.tcp_info, ours.memory
        assert info is not None and mem is not None
        assert str(info.snd_cwnd) == ref.info["cwnd"]
        assert str(info.snd_mss) == ref.info["mss"]
        assert str(info.rcv_mss) == ref.info["rcvmss"]
        assert str(info.advmss) == ref.info["advmss"]
        assert str(info.pmtu) == ref.info["pmtu"]
        assert str(info.rcv_space) == ref.info["rcv_space"]
        assert str(info.snd_wnd) == ref.info["snd_wnd"]
        assert f"{info.snd_wscale},{info.rcv_wscale}" == ref.info["wscale"]
        assert info.rto_us is not None and info.rto_us // 1000 == int(float(ref.info["rto"]))
        assert str(info.segs_out) == ref.info.get("segs_out", "0")
        assert str(info.segs_in) == ref.info.get("segs_in", "0")
        assert str(info.bytes_acked) == ref.info.get("bytes_acked", "0")
        assert str(info.bytes_received) == ref.info.get("bytes_received", "0")
        assert ours.congestion in ref.words  # ss prints the algorithm as a bare word
        for ss_name, field in (
            ("r", "rmem_alloc"),
            ("rb", "rcvbuf"),
            ("t", "wmem_alloc"),
            ("tb", "sndbuf"),
            ("w", "wmem_queued"),
            ("d", "drops"),
        ):
            assert getattr(mem, field) == ref.skmem[ss_name], (ss_name, ref)


def test_blocked_writer_fills_send_q_and_the_readers_recv_q(socks: Sockets, prober: Prober) -> None:
    listener = socks.listener(rcvbuf=4096)
    port = listener.getsockname()[1]
    writer, reader = socks.pair(listener, sndbuf=4096)
    writer.setblocking(False)
    chunk = b"w" * 4096
    sent = 0
    with pytest.raises(BlockingIOError):
        for _ in range(10_000):  # the reader never reads, so this must block long before
            sent += writer.send(chunk)
    assert sent > 0

    # Under a pacing congestion control (bbr, when the machine uses it) the full send queue
    # still creeps for a while: compare once netlens and ss, a moment apart, agree on the queues.
    snap, reference = agreeing(prober, port)
    assert_same_as_ss(snap, reference)
    w, r = find(snap, writer), find(snap, reader)
    assert w is not None and r is not None
    assert w.send_q is not None and w.send_q > 0
    assert r.recv_q is not None and r.recv_q > 0
    assert w.tcp_info is not None and w.tcp_info.unacked is not None
    assert w.memory is not None and w.memory.wmem_queued is not None and w.memory.wmem_queued > 0


def test_one_sided_close_gives_fin_wait2_and_close_wait(socks: Sockets, prober: Prober) -> None:
    listener = socks.listener()
    port = listener.getsockname()[1]
    client, server = socks.pair(listener)
    client.shutdown(socket.SHUT_WR)

    def states():
        snap = prober.snapshot(port)
        c, s = find(snap, client), find(snap, server)
        return c and s and (c.state, s.state) == ("FIN_WAIT2", "CLOSE_WAIT") and snap

    snap = wait_for(states)
    assert_same_as_ss(snap, run_ss(port))
    cli = find(snap, client)
    assert cli is not None and cli.shutdown is not None and cli.shutdown & SHUTDOWN_WR
    assert cli.pid == os.getpid()


def test_full_close_leaves_time_wait_without_inode_or_process(socks: Sockets, prober: Prober) -> None:
    listener = socks.listener()
    port = listener.getsockname()[1]
    client, server = socks.pair(listener)
    key = (*client.getsockname()[:2], *client.getpeername()[:2])
    client.close()  # active close: this end will sit in TIME_WAIT
    wait_for(lambda: (r := by_addr(prober.snapshot(port)).get(key)) and r.state == "FIN_WAIT2")
    server.close()

    snap = wait_for(
        lambda: (s := prober.snapshot(port)) and (r := by_addr(s).get(key)) and r.state == "TIME_WAIT" and s
    )
    row = by_addr(snap)[key]
    assert row.inode == 0 and row.owners == () and row.pid is None
    assert row.tcp_info is None and row.memory is None
    assert row.timer is not None and row.timer.name == "timewait" and 0 < row.timer.expires_ms <= 60_000
    reference = {ref.key: ref for ref in run_ss(port)}
    assert reference[key].state == "TIME_WAIT"
    assert reference[key].timer is not None and reference[key].timer[0] == "timewait"


def test_ipv6_loopback_connection(socks: Sockets, prober: Prober) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    try:
        listener = socks.listener("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    port = listener.getsockname()[1]
    client, server = socks.pair(listener)
    client.sendall(b"six")

    wait_for(lambda: (r := find(prober.snapshot(port), server)) and r.recv_q == 3)
    snap = settled(prober, port)
    assert_same_as_ss(snap, run_ss(port))
    srv = find(snap, server)
    assert srv is not None
    assert (srv.family, srv.local_addr, srv.remote_addr, srv.recv_q) == ("IPv6", "::1", "::1", 3)
    lis = find(snap, listener, peer=False)
    assert lis is not None and (lis.state, lis.family, lis.remote_addr) == ("LISTEN", "IPv6", "::")


def test_a_snapshot_leaves_the_garbage_collector_to_the_process(
    socks: Sockets, prober: Prober, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector's policy belongs to the program (the TUI sets one): the probe neither pauses nor tunes it."""
    import gc

    from netlens.probe import netlink

    listener = socks.listener()
    for _ in range(20):
        socks.pair(listener)
    enabled_while_dumping: list[bool] = []
    real_dump = netlink.run_dump

    def observed_dump(*args: Any, **kwargs: Any) -> None:  # the real dump, watched
        enabled_while_dumping.append(gc.isenabled())
        real_dump(*args, **kwargs)

    monkeypatch.setattr(netlink, "run_dump", observed_dump)
    thresholds = gc.get_threshold()
    snap = prober.snapshot(listener.getsockname()[1])
    assert len(snap.sockets) == 41
    assert enabled_while_dumping and all(enabled_while_dumping)
    assert gc.isenabled() and gc.get_threshold() == thresholds
