"""The UI's per-tick snapshot by lookups (``PortWatch``) against the port's full dump, on real sockets.

Each test runs in a network namespace of its own (its TIME_WAIT sockets and
counters vanish with it). The reference is ``Prober.snapshot(port,
time_wait_limit=100)``, what the UI took every tick before, taken right after.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable

import pytest
from probe_helpers import Sockets, run_in_private_netns
from waiting import wait_for

from netlens.probe import BACKEND_ENV, Prober, Snapshot, netlink
from netlens.probe.lookups import Pair
from netlens.probe.portwatch import PortWatch
from netlens.proto import encode_request
from netlens.server import ServerConfig
from netlens.ui.feeds import LiveFeeds

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux-only")
LIMIT = 100

#: What a test compares: every socket's identity, state and owning process, and the TIME_WAIT sockets left out.
Shape = tuple[list[tuple[tuple[str, str, int, str, int], str, int | None]], int]


def waiting(shape: Shape) -> set[tuple[str, str, int, str, int]]:
    return {key for key, state, _ in shape[0] if state == "TIME_WAIT"}


def not_waiting(shape: Shape) -> list[tuple[tuple[str, str, int, str, int], str, int | None]]:
    return [entry for entry in shape[0] if entry[1] != "TIME_WAIT"]


def shape(snapshot: Snapshot) -> Shape:
    return sorted((s.key, s.state, s.pid) for s in snapshot.sockets), snapshot.hidden_time_wait


def full(port: int) -> Snapshot:
    return Prober(backend="sock_diag").snapshot(port, time_wait_limit=LIMIT)


def ask(port: int) -> None:
    """One search request; the server answers and closes first (TIME_WAIT on its end)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(encode_request("search", "morpheus"))
        while client.recv(4096):
            pass


def hang_up(port: int) -> None:
    """A connection the client closes first: the TIME_WAIT is on the client's end (its remote port is the port)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    time.sleep(0.05)  # accepted before the FIN
    client.close()


def elsewhere(count: int, socks: Sockets) -> int:
    """``count`` TIME_WAIT sockets on another port (its server closes first); returns that port."""
    listener = socks.listener(backlog=64)
    for _ in range(count):
        client = socks.connect(listener)
        server, _ = listener.accept()
        server.close()
        client.close()
    return int(listener.getsockname()[1])


class Knows:
    """A server's knowledge, as the test that plays the server has it (``PortWatch``'s ``ServerPairs``)."""

    def __init__(self, held: Callable[[], list[Pair]] = list, closed: list[Pair] | None = None) -> None:
        self.held = held
        self.closed = closed if closed is not None else []

    def open_pairs(self) -> list[Pair]:
        return self.held()

    def closed_pairs(self, within: float, limit: int) -> list[Pair]:
        return self.closed[:limit]


def counted(snapshot: Snapshot) -> Shape:
    """``shape(snapshot)``, once it is checked that every TIME_WAIT socket it counts but does not show is named."""
    assert len(snapshot.hidden_cookies) == snapshot.hidden_time_wait
    assert not snapshot.hidden_cookies & {sock.cookie for sock in snapshot.sockets}
    return shape(snapshot)


def test_the_feeds_tick_by_lookups_equals_the_full_dump_in_a_realistic_mix() -> None:
    """Listener, idle connections, TIME_WAIT at both ends, more TIME_WAIT than shown, others elsewhere."""

    def scene() -> tuple[list[tuple[Shape, Shape, str | None]], int, int, Counter[str]]:
        socks = Sockets()
        feeds = LiveFeeds(ServerConfig(mode="search", host="127.0.0.1", port=0), capture=False, kernel_trace=False)
        feeds.start_server()
        try:
            port = feeds.server.address[1]

            def holds(clients: list[socket.socket]) -> bool:  # the server holds these, and nothing else
                peers = {conn.peer for conn in feeds.server.snapshot(buffers=False)}
                return peers == {client.getsockname()[:2] for client in clients}

            held = [socks.keep(socket.create_connection(("127.0.0.1", port), timeout=5)) for _ in range(3)]
            # Batches of TIME_WAIT sockets 300 ms apart, each as large as what the table shows: which ones are
            # the newest 100 never hangs on a millisecond.
            for _ in range(20):
                ask(port)
            hang_up(port)
            time.sleep(0.3)
            for _ in range(LIMIT):
                ask(port)
            wait_for(lambda: holds(held))
            other = elsewhere(30, socks)
            ticks = [(counted(feeds.probe()), shape(full(port)), feeds.watch.last_reason)]  # the first: a dump
            time.sleep(0.3)
            for _ in range(LIMIT - 1):  # new TIME_WAIT at both ends, after the dump: found by lookups and counted
                ask(port)
            hang_up(port)
            held.append(socks.keep(socket.create_connection(("127.0.0.1", port), timeout=5)))
            wait_for(lambda: holds(held))
            ticks += [(counted(feeds.probe()), shape(full(port)), feeds.watch.last_reason) for _ in range(2)]
            time.sleep(0.3)
            for _ in range(LIMIT):  # more, after ticks by lookups: each TIME_WAIT counted once
                ask(port)
            ticks.append((counted(feeds.probe()), shape(full(port)), feeds.watch.last_reason))
            states = Counter(state for _, state, _ in ticks[2][0][0])
            return ticks, port, other, states
        finally:
            feeds.stop()
            socks.close_all()

    ticks, port, other, states = run_in_private_netns(scene)
    assert [reason for _, _, reason in ticks] == ["first", None, None, None]
    for watched, reference, _ in ticks:
        # The same sockets but TIME_WAIT, as many TIME_WAIT shown and hidden: the reference shows the newest,
        # the watch keeps those it showed before (all alive still: a minute's timers).
        assert not_waiting(watched) == not_waiting(reference)
        assert len(waiting(watched)) == len(waiting(reference)) == LIMIT and watched[1] == reference[1]
    assert waiting(ticks[0][0]) == waiting(ticks[0][1])  # the first shows the newest
    for (before, _, _), (after, _, _) in itertools.pairwise(ticks):
        assert waiting(before) == waiting(after)
    sockets, hidden = ticks[2][0]
    # 1 listener, 4 held connections at both ends, 100 TIME_WAIT (of 221, 2 at clients' ends).
    assert states == {"LISTEN": 1, "ESTABLISHED": 8, "TIME_WAIT": LIMIT} and hidden == 121
    assert ticks[3][0][1] == 221
    # A client's end in TIME_WAIT is found by lookups: the reference (the newest) shows one of tick 1's; the watch
    # still shows tick 0's, and counts it.
    assert any(state == "TIME_WAIT" and key[4] == port for key, state, _ in ticks[2][1][0])
    assert not any(other in (key[2], key[4]) for key, _, _ in sockets)
    assert {pid for _, state, pid in sockets if state != "TIME_WAIT"} == {os.getpid()}  # owners placed


def test_a_dual_stack_server_is_followed_through_v4_mapped_and_ipv6_4_tuples() -> None:
    def scene() -> tuple[Shape, Shape, str | None, Counter[str]]:
        socks = Sockets()
        feeds = LiveFeeds(ServerConfig(mode="search", host="::", port=0), capture=False, kernel_trace=False)
        feeds.start_server()
        try:
            port = feeds.server.address[1]
            held = [socks.keep(socket.create_connection((host, port), timeout=5)) for host in ("127.0.0.1", "::1")]
            feeds.probe()  # the first: a dump
            for host in ("127.0.0.1", "::1"):
                with socket.create_connection((host, port), timeout=5) as client:
                    client.sendall(encode_request("search", "morpheus"))
                    while client.recv(4096):
                        pass
            held.append(socks.keep(socket.create_connection(("127.0.0.1", port), timeout=5)))
            wait_for(lambda: len(feeds.server.snapshot(buffers=False)) == len(held))
            watched = feeds.probe()
            families = Counter(f"{s.family} {s.local_addr if s.local_port == port else s.remote_addr}"
                               for s in watched.sockets if s.state != "LISTEN")  # fmt: skip
            return shape(watched), shape(full(port)), feeds.watch.last_reason, families
        finally:
            feeds.stop()
            socks.close_all()

    watched, reference, reason, families = run_in_private_netns(scene)
    assert reason is None and watched == reference
    # The server's ends are IPv6 sockets (v4-mapped for IPv4 clients), the clients' ends IPv4 or IPv6.
    assert families == {"IPv6 ::ffff:127.0.0.1": 3, "IPv4 127.0.0.1": 2, "IPv6 ::1": 3}


def test_queued_connections_show_at_once_and_a_lingering_syn_recv_within_two_seconds() -> None:
    """What the server cannot name: its accept queue makes the tick dump; a SYN-ACK sent again does too."""

    def scene() -> dict[str, object]:
        socks = Sockets()
        table = f"npp{os.getpid()}"
        try:
            listener = socks.listener(backlog=16)
            port = int(listener.getsockname()[1])
            accepted: list[socket.socket] = []

            known = Knows(lambda: [(s.getsockname()[:2], s.getpeername()[:2]) for s in accepted])

            watch = PortWatch(Prober(backend="sock_diag"), time_wait_limit=LIMIT)
            seen: dict[str, object] = {"first": watch.snapshot(port, known) and watch.last_reason}
            queued = [socks.connect(listener) for _ in range(2)]
            snap = watch.snapshot(port, known)
            seen["queued"] = (watch.last_reason, shape(snap) == shape(full(port)),
                              Counter(s.state for s in snap.sockets))
            accepted += [socks.keep(listener.accept()[0]) for _ in queued]
            snap = watch.snapshot(port, known)
            seen["accepted"] = (watch.last_reason, shape(snap) == shape(full(port)))
            # The client's final ACK is dropped: the server's end stays SYN_RECV and sends its SYN-ACK again.
            nft = ["nft", "-f", "-"]
            rules = (f"table inet {table} {{\n chain input {{\n type filter hook input priority 0;\n"
                     f" tcp dport {port} tcp flags & (syn | ack) == ack drop\n }}\n}}\n")  # fmt: skip
            subprocess.run(nft, input=rules, text=True, check=True, timeout=10)
            half = socks.keep(socket.socket())
            half.setblocking(False)
            half.connect_ex(("127.0.0.1", port))
            start = time.monotonic()
            reasons = []
            while time.monotonic() - start < 4:
                snap = watch.snapshot(port, known)
                reasons.append(watch.last_reason)
                if any(s.state == "SYN_RECV" for s in snap.sockets):
                    break
                time.sleep(0.1)
            seen["syn_recv"] = (time.monotonic() - start, reasons[-1], reasons.count(None) == len(reasons) - 1)
            snap = watch.snapshot(port, known)
            seen["followed"] = (watch.last_reason, [s.state for s in snap.sockets if s.state == "SYN_RECV"],
                                shape(snap) == shape(full(port)))
            return seen
        finally:
            subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, timeout=10)
            socks.close_all()

    seen = run_in_private_netns(scene)
    assert seen["first"] == "first"
    reason, equal, states = seen["queued"]  # type: ignore[misc]
    assert reason == "queue" and equal and states == {"LISTEN": 1, "ESTABLISHED": 4}
    assert seen["accepted"] == (None, True)
    took, reason, looked_up_before = seen["syn_recv"]  # type: ignore[misc]
    assert reason == "syn-retrans" and looked_up_before and 0.9 < took < 2.5
    assert seen["followed"] == (None, ["SYN_RECV"], True)  # then followed by its 4-tuple


def test_a_slow_period_dump_and_a_flood_of_closes_dump_the_port() -> None:
    def scene() -> list[str | None]:
        socks = Sockets()
        try:
            listener = socks.listener()
            port = int(listener.getsockname()[1])
            now = [0.0]
            closed: list[Pair] = []
            watch = PortWatch(Prober(backend="sock_diag"), full_every=5.0, clock=lambda: now[0])
            reasons = []
            for step in (0.0, 1.0, 4.0, 1.0):  # dumps at 0 s and 5 s
                now[0] += step
                watch.snapshot(port, Knows(closed=closed))
                reasons.append(watch.last_reason)
            closed += [(("127.0.0.1", port), ("127.0.0.1", 1024 + n)) for n in range(201)]
            watch.snapshot(port, Knows(closed=closed))
            reasons.append(watch.last_reason)
            return reasons
        finally:
            socks.close_all()

    assert run_in_private_netns(scene) == ["first", None, "period", None, "closes"]


def test_the_psutil_backend_and_a_refused_sock_diag_give_the_probers_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    socks = Sockets()
    try:
        listener = socks.listener()
        port = int(listener.getsockname()[1])
        socks.pair(listener)
        monkeypatch.setenv(BACKEND_ENV, "psutil")
        chosen = PortWatch().snapshot(port, Knows())
        monkeypatch.delenv(BACKEND_ENV)

        def refuse() -> socket.socket:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(netlink, "open_sock_diag", refuse)
        watch = PortWatch()
        refused = [watch.snapshot(port, Knows()) for _ in range(2)]
    finally:
        socks.close_all()
    assert chosen.source == "psutil" and chosen.note is not None and chosen.note.startswith(f"{BACKEND_ENV}=psutil")
    for snap in refused:
        assert snap.source == "psutil" and snap.note is not None and "refused its sock_diag" in snap.note
        assert sorted(s.state for s in snap.sockets) == ["ESTABLISHED", "ESTABLISHED", "LISTEN"]
