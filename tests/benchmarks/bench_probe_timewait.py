"""Benchmark: the served port's snapshot with 0 and with 50,000 TIME_WAIT sockets elsewhere, side by side.

Run it directly, as root (pytest does not collect it):

    .venv/bin/python tests/benchmarks/bench_probe_timewait.py [--elsewhere 50000] [--on-port 14000] [--runs 15]

Everything happens in a private network namespace made for the run (its own
TIME_WAIT table and sysctls, gone with the process: nothing to clean up).
The served port has a listener, 50 connected pairs and 200 TIME_WAIT
sockets, as a workshop server has. The script takes the snapshot the UI takes
(``Prober.snapshot(port, time_wait_limit=100)``) with nothing else in the
namespace, then again after ELSEWHERE short connections to a throwaway server
on another port have left ELSEWHERE TIME_WAIT sockets behind, and prints both
with ``ss -tanpi`` on the same filter. "user" is the CPU time Python spends
(it holds the GIL the UI and the server share); "sys" is the kernel's walk of
its socket table, which every sock_diag dump makes whatever the filter.

A second table is the UI's per-tick snapshot over TICKS ticks of a minute-long
clock (one a second, as the probe worker polls): "before" is what the TUI took
every tick until now (``Prober.snapshot(port, time_wait_limit=100)``, a full
port dump), "after" is ``LiveFeeds.probe()`` (``netlens.probe.portwatch``:
lookups by 4-tuple of what the server knows, a full dump every 30 s or when
something says the lookups cannot be complete). Its served port is a real
netlens search server holding 50 connections, with 200 TIME_WAIT sockets from
answered requests; mean and p95 wall milliseconds per tick, and the mean user
and sys CPU per tick.

A third shows the flood case: ON_PORT TIME_WAIT sockets on the served port
itself, with and without ``time_wait_limit``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netlens.probe import Prober, netlink
from netlens.probe.portwatch import PortWatch
from netlens.probe.sockdiag import SNAPSHOT_EXT, DumpParser
from netlens.probe.sockstat import read_tcp_totals
from netlens.proto import encode_request
from netlens.server import ServerConfig
from netlens.ui.feeds import LiveFeeds

CLONE_NEWNET = 0x40000000
#: A connection as its server knows it: (local, remote) addresses.
Pair = tuple[tuple[str, int], tuple[str, int]]
UI_LIMIT = 100  # what the connections table shows at most


_libc = ctypes.CDLL(None, use_errno=True)


def _netns_call(name: str, *args: int) -> None:
    if getattr(_libc, name)(*args) != 0:
        sys.exit(f"bench_probe_timewait: {name}(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())}; run as root")


def private_namespaces(count: int) -> list[int]:
    """Make ``count`` network namespaces, each with a socket table of its own; return their fds (we are in the last).

    Every namespace shares the host's established-socket hash table unless its
    parent asked otherwise, and a sock_diag dump walks the whole table: other
    programs' sockets would weigh on our figures. So: one namespace whose
    ``tcp_child_ehash_entries`` gives its children a private table as large as
    the host's, then its children, with loopback up. Nothing on the host changes.
    Two sibling namespaces let the benchmark measure "0 elsewhere" and "50,000
    elsewhere" in turns, under the same load from the rest of the machine.
    """
    buckets = Path("/proc/sys/net/ipv4/tcp_ehash_entries").read_text().split()[0].lstrip("-")
    _netns_call("unshare", CLONE_NEWNET)
    Path("/proc/sys/net/ipv4/tcp_child_ehash_entries").write_text(buckets)
    parent = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    children = []
    for _ in range(count):
        _netns_call("setns", parent, CLONE_NEWNET)
        _netns_call("unshare", CLONE_NEWNET)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        # Per-namespace sysctls: room for every TIME_WAIT socket, and every port for clients.
        for name, value in (("tcp_max_tw_buckets", "262144"), ("ip_local_port_range", "1024 65535")):
            Path(f"/proc/sys/net/ipv4/{name}").write_text(value)
        children.append(os.open("/proc/thread-self/ns/net", os.O_RDONLY))
    os.close(parent)
    return children


def enter(namespace: int) -> None:
    """Move this thread into ``namespace`` (an fd from :func:`private_namespaces`)."""
    _netns_call("setns", namespace, CLONE_NEWNET)


def leave_time_wait(count: int, served: socket.socket | None = None,
                    closed: list[Pair] | None = None) -> int:
    """Make ``count`` connections that each end in TIME_WAIT on the server's side; return the server's port.

    The server (``served``, the served port's listener, or a throwaway one)
    closes first, as a search server does. Clients spread over 64 loopback
    addresses so that no 4-tuple comes round again (a SYN on a TIME_WAIT
    4-tuple would end that TIME_WAIT early). ``closed`` collects the server
    sides' (local, remote) pairs, as a server knows them.
    """
    listener = served or socket.socket()
    if served is None:
        listener.bind(("0.0.0.0", 0))
        listener.listen(4096)
    port = int(listener.getsockname()[1])
    try:
        for n in range(count):
            client = socket.create_connection((f"127.0.0.{1 + n % 64}", port))
            server, _ = listener.accept()
            if closed is not None:
                closed.append((server.getsockname()[:2], server.getpeername()[:2]))
            server.close()
            client.close()
    finally:
        if served is None:
            listener.close()
    return port


def serve(pairs: int) -> tuple[socket.socket, list[socket.socket]]:
    """The served port: a listener and ``pairs`` connected pairs."""
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))  # our own namespace: nobody else can reach it
    listener.listen(1024)
    opened = []
    for _ in range(pairs):
        client = socket.create_connection(("127.0.0.1", listener.getsockname()[1]))
        opened += [client, listener.accept()[0]]
    return listener, opened


def measure(func: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """Median wall milliseconds of ``func``, and this thread's mean user and sys milliseconds per call.

    CPU times come in scheduler ticks, so they are totalled over the runs.
    """
    walls = []
    before = resource.getrusage(resource.RUSAGE_THREAD)
    for _ in range(runs):
        start = time.perf_counter()
        func()
        walls.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_THREAD)
    user = (after.ru_utime - before.ru_utime) / runs
    system = (after.ru_stime - before.ru_stime) / runs
    return statistics.median(walls) * 1000, user * 1000, system * 1000


def per_family_dump(port: int) -> None:
    """The dump as netlens made it before: one request per family, two walks of the kernel's table."""
    sock = netlink.open_sock_diag()
    try:
        parser = DumpParser(port)
        bytecode = netlink.port_filter_bytecode(port)
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            request = netlink.build_dump_request(family, SNAPSHOT_EXT, seq=seq, bytecode=bytecode)
            netlink.run_dump(sock, request, parser.feed)
    finally:
        sock.close()


def dump_form(port: int, states: int = netlink.ALL_STATES, bytecode: bool = True, request_port: bool = False) -> None:
    """One dump of the port's sockets in another form: a states mask, or the port in the request's own
    ``idiag_sport`` field (which the kernel compares before taking a socket) instead of the bytecode."""
    sock = netlink.open_sock_diag()
    try:
        request = bytearray(netlink.build_compat_dump_request(
            SNAPSHOT_EXT, states=states, bytecode=netlink.port_filter_bytecode(port) if bytecode else b""))
        if request_port:  # inet_diag_sockid.idiag_sport, big-endian, right after the 4-byte request head
            struct.pack_into(">H", request, netlink.NLMSGHDR.size + 4, port)
        netlink.run_dump(sock, bytes(request), DumpParser(port, light_time_wait=True).feed)
    finally:
        sock.close()


def rows(port: int, runs: int, known: list[Pair]) -> dict[str, tuple[float, float, float]]:
    """Every measured line for the served ``port``; ``known`` are the pairs its server knows."""
    prober = Prober(backend="sock_diag")
    prober.snapshot(port)  # warm the /proc owner cache, as the UI's poller has it
    result = {
        f"snapshot_connections(port, {len(known)} known pairs)": measure(
            lambda: prober.snapshot_connections(port, known), runs),
        f"snapshot(port, time_wait_limit={UI_LIMIT})  (the UI's)": measure(
            lambda: prober.snapshot(port, time_wait_limit=UI_LIMIT), runs),
        "snapshot(port)  (every socket)": measure(lambda: prober.snapshot(port), runs),
        "  sock_diag alone (processes=False)": measure(
            lambda: prober.snapshot(port, processes=False, time_wait_limit=UI_LIMIT), runs),
        "  before: one dump per family (2 walks)": measure(lambda: per_family_dump(port), runs),
        "  dump, every state but TIME_WAIT (states mask)": measure(
            lambda: dump_form(port, states=netlink.ALL_STATES & ~(1 << netlink.TIME_WAIT)), runs),
        "  dump, the port in the request, no bytecode": measure(
            lambda: dump_form(port, bytecode=False, request_port=True), runs),
        "  dump, LISTEN only (the listeners' own table)": measure(
            lambda: dump_form(port, states=netlink.LISTEN_ONLY), runs),
        "  /proc/net/sockstat (the count of the rest)": measure(read_tcp_totals, runs),
    }  # fmt: skip
    ss = shutil.which("ss")
    if ss:
        cmd = [ss, "-tanpi", f"( sport = :{port} or dport = :{port} )"]
        result["ss -tanpi '( sport = :P or dport = :P )'"] = measure(
            lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True), runs
        )
    return result


def ui_server(held: int, time_wait: int) -> tuple[LiveFeeds, list[socket.socket]]:
    """The TUI's feeds with a search server holding ``held`` connections, after ``time_wait`` answered requests."""
    feeds = LiveFeeds(ServerConfig(mode="search", host="127.0.0.1", port=0, idle_timeout=0, request_timeout=0),
                      capture=False, kernel_trace=False)  # fmt: skip
    feeds.start_server()
    address = feeds.server.address
    for _ in range(time_wait):  # answered, then closed by the server first: TIME_WAIT on its end
        with socket.create_connection(address, timeout=5) as client:
            client.sendall(encode_request("search", "morpheus"))
            while client.recv(4096):
                pass
    clients = [socket.create_connection(address, timeout=5) for _ in range(held)]
    deadline = time.monotonic() + 10
    while len(feeds.server.snapshot(buffers=False)) < held and time.monotonic() < deadline:
        time.sleep(0.01)
    return feeds, clients


class TickClock:
    """The UI's probe clock, one second a tick (``PROBE_INTERVAL``), so that a minute of ticks runs in a moment."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TickSeries:
    """One way of taking the UI's per-tick snapshot, timed tick by tick (wall, and this thread's CPU)."""

    def __init__(self, take: Callable[[], object], clock: TickClock, watch: PortWatch | None = None) -> None:
        self.take = take
        self.clock = clock
        self.watch = watch
        self.walls: list[float] = []
        self.full: list[bool] = []  # per tick: was it a full dump (``watch``'s ticks only)
        self.user = self.system = 0.0

    def run(self, ticks: int) -> None:
        """``ticks`` more snapshots, a (simulated) second apart."""
        before = resource.getrusage(resource.RUSAGE_THREAD)
        for _ in range(ticks):
            start = time.perf_counter()
            self.take()
            self.walls.append(time.perf_counter() - start)
            self.full.append(self.watch is not None and self.watch.last_reason is not None)
            self.clock.now += 1.0
        after = resource.getrusage(resource.RUSAGE_THREAD)
        self.user += after.ru_utime - before.ru_utime
        self.system += after.ru_stime - before.ru_stime

    def figures(self) -> tuple[float, float, float, float]:
        """Mean and p95 wall ms per tick; mean user and sys ms per tick."""
        count = len(self.walls)
        return (*_mean_p95(self.walls), self.user / count * 1000, self.system / count * 1000)

    def split(self) -> tuple[tuple[float, float], tuple[float, float], int]:
        """Mean and p95 wall ms of the ticks by lookups, then of the full dumps, and how many full dumps."""
        lookups = [wall for wall, full in zip(self.walls, self.full, strict=True) if not full]
        dumps = [wall for wall, full in zip(self.walls, self.full, strict=True) if full]
        return _mean_p95(lookups), _mean_p95(dumps), len(dumps)


def _mean_p95(walls: list[float]) -> tuple[float, float]:
    if not walls:
        return (float("nan"), float("nan"))
    p95 = sorted(walls)[max(0, round(0.95 * len(walls)) - 1)]
    return statistics.fmean(walls) * 1000, p95 * 1000


def ui_series(feeds: LiveFeeds) -> dict[str, TickSeries]:
    """The UI's per-tick snapshot, before (the full port dump every tick) and after (``LiveFeeds.probe``)."""
    port = feeds.server.address[1]
    prober = Prober()
    prober.snapshot(port)  # a warm owner cache, as the poller has
    clock = TickClock()
    feeds.watch = PortWatch(time_wait_limit=UI_LIMIT, clock=clock)  # its first tick dumps, as the UI's
    return {
        f"before: Prober.snapshot(port, time_wait_limit={UI_LIMIT})":
            TickSeries(lambda: prober.snapshot(port, time_wait_limit=UI_LIMIT), TickClock()),
        "after:  LiveFeeds.probe()": TickSeries(feeds.probe, clock, feeds.watch),
    }  # fmt: skip


def print_ticks(ticks: int, labels: tuple[str, str], left: dict[str, TickSeries], right: dict[str, TickSeries]) -> None:
    print(f"\nThe UI's per-tick snapshot, {ticks} ticks a side, in turns (served port: a search server, "
          f"50 connections, 200 TIME_WAIT):")  # fmt: skip
    print(f"{'':52}{labels[0]:>36}{labels[1]:>36}")
    for name in left:
        cells = [f"{mean:6.2f} {p95:6.2f} ({u:5.2f} u {s:5.2f} s)"
                 for mean, p95, u, s in (left[name].figures(), right[name].figures())]  # fmt: skip
        print(f"{name:<52}{cells[0]:>36}{cells[1]:>36}")
        if left[name].watch is None:
            continue
        sides = (left[name].split(), right[name].split())
        cells = [f"{quick[0]:6.2f} {quick[1]:6.2f} {'':17}" for quick, _, _ in sides]
        print(f"{'  its ticks by lookups':<52}{cells[0]:>36}{cells[1]:>36}")
        cells = [f"{dumps[0]:6.2f} {dumps[1]:6.2f} {f'({count} of them)':<17}" for _, dumps, count in sides]
        print(f"{'  its full dumps (the first, then every 30 s)':<52}{cells[0]:>36}{cells[1]:>36}")
    print(f"{'':52}{'ms per tick: mean p95 (user, sys)':>72}")


def print_side_by_side(title: str, labels: tuple[str, str], left: dict[str, tuple[float, float, float]],
                       right: dict[str, tuple[float, float, float]]) -> None:
    print(f"\n{title}\n{'':52}{labels[0]:>28}{labels[1]:>28}")
    for name in left:
        cells = [f"{w:7.2f} ({u:5.2f} u {s:5.2f} s)" for w, u, s in (left[name], right[name])]
        print(f"{name:<52}{cells[0]:>28}{cells[1]:>28}")
    print(f"{'':52}{'median ms wall (user, sys)':>56}")


class Side:
    """One namespace: the served port (a plain listener, for the first table) and the TUI's feeds (for the second)."""

    def __init__(self, namespace: int) -> None:
        self.namespace = namespace
        enter(namespace)
        self.listener, self.opened = serve(50)
        self.port = self.listener.getsockname()[1]
        closed: list[Pair] = []
        leave_time_wait(200, self.listener, closed)
        # What a server knows: the connections it holds, and the newest it closed (as many as the UI shows).
        held = [(sock.getsockname()[:2], sock.getpeername()[:2]) for sock in self.opened[1::2]]
        self.known = held + closed[-UI_LIMIT:]
        self.feeds, self.clients = ui_server(50, 200)
        self.series = ui_series(self.feeds)

    def close(self) -> None:
        enter(self.namespace)
        for sock in self.opened + self.clients:
            sock.close()
        self.listener.close()
        self.feeds.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elsewhere", type=int, default=50_000, help="TIME_WAIT sockets on another port")
    parser.add_argument("--on-port", type=int, default=14_000, help="TIME_WAIT sockets on the served port (flood)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--ticks", type=int, default=120, help="UI ticks (one simulated second apart) per side")
    parser.add_argument("--rounds", type=int, default=4, help="turns the two sides take at the UI ticks")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_probe_timewait: needs root, for private network namespaces")
    quiet, busy = (Side(namespace) for namespace in private_namespaces(2))

    start = time.perf_counter()
    other = leave_time_wait(args.elsewhere)  # in ``busy``, the namespace this thread is in
    totals = read_tcp_totals()
    prober = Prober(backend="sock_diag")
    snap = prober.snapshot(busy.port, time_wait_limit=UI_LIMIT)
    print(f"served port: {len(snap.sockets)} sockets shown, {snap.hidden_time_wait} TIME_WAIT hidden")
    print(f"{args.elsewhere} connections to port {other} in {time.perf_counter() - start:.1f} s; the namespace "
          f"holds {totals.time_wait if totals else '?'} TIME_WAIT; the snapshot says {snap.time_wait_elsewhere} "
          f"elsewhere, {snap.sockets_elsewhere} other sockets")  # fmt: skip
    tables = []
    for side in (quiet, busy):
        enter(side.namespace)
        tables.append(rows(side.port, args.runs, side.known))
    print_side_by_side("The served port's snapshot:", ("0 TIME_WAIT elsewhere", f"{args.elsewhere} elsewhere"),
                       *tables)  # fmt: skip

    per_round = max(1, args.ticks // args.rounds)
    for _ in range(args.rounds):
        for side in (quiet, busy):
            enter(side.namespace)
            for series in side.series.values():
                series.run(per_round)
    print_ticks(per_round * args.rounds, ("0 TIME_WAIT elsewhere", f"{args.elsewhere} elsewhere"), quiet.series,
                busy.series)
    quiet.close()

    # The flood: TIME_WAIT sockets on the served port itself.
    enter(busy.namespace)
    leave_time_wait(args.on_port, busy.listener)
    port = busy.port
    flood = {
        f"snapshot(port, time_wait_limit={UI_LIMIT})": measure(
            lambda: prober.snapshot(port, time_wait_limit=UI_LIMIT), args.runs),
        "snapshot(port)  (every socket built)": measure(lambda: prober.snapshot(port), args.runs),
    }  # fmt: skip
    snap = prober.snapshot(port, time_wait_limit=UI_LIMIT)
    print(f"\nFlood: {args.on_port + 200} TIME_WAIT on the served port ({len(snap.sockets)} sockets shown, "
          f"{snap.hidden_time_wait} hidden), {args.elsewhere} elsewhere")  # fmt: skip
    for name, (wall, user, system) in flood.items():
        print(f"{name:<52}{wall:7.2f} ms ({user:5.2f} u {system:5.2f} s)")
    busy.close()
    return 0  # the namespaces, and every TIME_WAIT socket in them, go with the process


if __name__ == "__main__":
    sys.exit(main())
