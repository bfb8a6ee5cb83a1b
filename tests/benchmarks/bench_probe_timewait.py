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

A second table shows the flood case: ON_PORT TIME_WAIT sockets on the served
port itself, with and without ``time_wait_limit``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netlens.probe import Prober, netlink
from netlens.probe.sockdiag import SNAPSHOT_EXT, DumpParser
from netlens.probe.sockstat import read_tcp_totals

CLONE_NEWNET = 0x40000000
#: A connection as its server knows it: (local, remote) addresses.
Pair = tuple[tuple[str, int], tuple[str, int]]
UI_LIMIT = 100  # what the connections table shows at most


def _unshare_net() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        sys.exit(f"bench_probe_timewait: unshare(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())}; run as root")


def enter_private_netns() -> None:
    """Move this (still single-threaded) process into a new network namespace with its own socket table.

    Every namespace shares the host's established-socket hash table unless its
    parent asked otherwise, and a sock_diag dump walks the whole table: other
    programs' sockets would weigh on our figures. So: one namespace whose
    ``tcp_child_ehash_entries`` gives its children a private table as large as
    the host's, then its child, with loopback up. Nothing on the host changes.
    """
    buckets = Path("/proc/sys/net/ipv4/tcp_ehash_entries").read_text().split()[0].lstrip("-")
    _unshare_net()
    Path("/proc/sys/net/ipv4/tcp_child_ehash_entries").write_text(buckets)
    _unshare_net()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Per-namespace sysctls: room for every TIME_WAIT socket, and every port for clients.
    for name, value in (("tcp_max_tw_buckets", "262144"), ("ip_local_port_range", "1024 65535")):
        Path(f"/proc/sys/net/ipv4/{name}").write_text(value)


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
        "  /proc/net/sockstat (the count of the rest)": measure(read_tcp_totals, runs),
    }  # fmt: skip
    ss = shutil.which("ss")
    if ss:
        cmd = [ss, "-tanpi", f"( sport = :{port} or dport = :{port} )"]
        result["ss -tanpi '( sport = :P or dport = :P )'"] = measure(
            lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True), runs
        )
    return result


def print_side_by_side(title: str, labels: tuple[str, str], left: dict, right: dict) -> None:
    print(f"\n{title}\n{'':52}{labels[0]:>28}{labels[1]:>28}")
    for name in left:
        cells = [f"{w:7.2f} ({u:5.2f} u {s:5.2f} s)" for w, u, s in (left[name], right[name])]
        print(f"{name:<52}{cells[0]:>28}{cells[1]:>28}")
    print(f"{'':52}{'median ms wall (user, sys)':>56}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elsewhere", type=int, default=50_000, help="TIME_WAIT sockets on another port")
    parser.add_argument("--on-port", type=int, default=14_000, help="TIME_WAIT sockets on the served port (flood)")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_probe_timewait: needs root, for a private network namespace")
    enter_private_netns()

    listener, opened = serve(50)
    port = listener.getsockname()[1]
    closed: list[Pair] = []
    leave_time_wait(200, listener, closed)
    # What a server knows: the connections it holds, and the newest it closed (as many as the UI shows).
    known = [(sock.getsockname()[:2], sock.getpeername()[:2]) for sock in opened[1::2]] + closed[-UI_LIMIT:]
    prober = Prober(backend="sock_diag")
    snap = prober.snapshot(port, time_wait_limit=UI_LIMIT)
    print(f"served port {port}: {len(snap.sockets)} sockets shown, {snap.hidden_time_wait} TIME_WAIT hidden")
    before = rows(port, args.runs, known)

    start = time.perf_counter()
    other = leave_time_wait(args.elsewhere)
    totals = read_tcp_totals()
    snap = prober.snapshot(port, time_wait_limit=UI_LIMIT)
    print(f"{args.elsewhere} connections to port {other} in {time.perf_counter() - start:.1f} s; the namespace "
          f"holds {totals.time_wait if totals else '?'} TIME_WAIT; the snapshot says {snap.time_wait_elsewhere} "
          f"elsewhere, {snap.sockets_elsewhere} other sockets")  # fmt: skip
    after = rows(port, args.runs, known)
    print_side_by_side("The served port's snapshot:", ("0 TIME_WAIT elsewhere", f"{args.elsewhere} elsewhere"),
                       before, after)  # fmt: skip

    # The flood: TIME_WAIT sockets on the served port itself.
    leave_time_wait(args.on_port, listener)
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
    for sock in opened:
        sock.close()
    listener.close()
    return 0  # the namespace, and every TIME_WAIT socket in it, goes with the process


if __name__ == "__main__":
    sys.exit(main())
