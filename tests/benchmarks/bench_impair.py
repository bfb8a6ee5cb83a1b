"""Benchmark: what the lab networks cost and how exactly their impairments hold (as root).

Run: ``.venv/bin/python tests/benchmarks/bench_impair.py [--rounds 5]``

Prints, each beside the figure it should match:

* build and teardown time of a veth lab and of a TAP-relay lab;
* TCP connect time (one round trip) for one-way delays of 5, 25 and 50 ms: 2 x delay;
* the share of UDP datagrams dropped for 1, 10 and 30 % ingress loss;
* TCP goodput under a tbf limit of 10, 50 and 200 Mbit/s: rate x 1448/1514;
* TCP goodput with no limit over the veth and over the TAP relay (the relay's ceiling).

Not a test: figures only. Namespaces are named ``nlb-PID-...`` and torn down.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from netlens.impair import LabNetwork

PREFIX = "nlb"


def _listener(net: LabNetwork) -> socket.socket:
    with net.server.namespace.entered():
        return socket.create_server((net.server.address, 0))


def _connect(net: LabNetwork, port: int) -> socket.socket:
    with net.client.namespace.entered():
        return socket.create_connection((net.server.address, port), timeout=10)


def build_times(rounds: int) -> None:
    for delay in (0, 5):
        builds, teardowns = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            net = LabNetwork(prefix=PREFIX, delay_ms=delay).build()
            built = time.perf_counter()
            net.close()
            builds.append(built - start)
            teardowns.append(time.perf_counter() - built)
        kind = "tap relay" if delay else "veth"
        print(f"{kind:10} build {statistics.median(builds) * 1000:6.1f} ms   "
              f"teardown {statistics.median(teardowns) * 1000:6.1f} ms   (median of {rounds})")


def delays(rounds: int) -> None:
    for delay in (5, 25, 50):
        with LabNetwork(prefix=PREFIX, delay_ms=delay) as net, _listener(net) as listener:
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                _connect(net, listener.getsockname()[1]).close()
                times.append(time.perf_counter() - start)
        print(f"delay {delay:2} ms each way: connect {statistics.median(times) * 1000:6.2f} ms "
              f"(min {min(times) * 1000:.2f}, max {max(times) * 1000:.2f})   expected {2 * delay} ms")


def losses(count: int = 2000) -> None:
    for percent in (1, 10, 30):
        with LabNetwork(prefix=PREFIX) as net:
            net.set_loss(percent, toward="server")
            with net.server.namespace.entered():
                receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                receiver.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)
                receiver.bind((net.server.address, 0))
            with net.client.namespace.entered():
                sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for number in range(count):
                sender.sendto(struct.pack("!I", number), receiver.getsockname())
            dropped = net.drops("server").loss
            receiver.settimeout(3.0)  # wait for every datagram the rule let through
            received = 0
            try:
                while received < count - dropped and receiver.recv(64):
                    received += 1
            except TimeoutError:
                pass
            sender.close()
            receiver.close()
        print(f"loss {percent:2} %: dropped {100 * (count - received) / count:5.2f} % of {count} "
              f"(nft counted {dropped})   expected {percent} %")


def _goodput(net: LabNetwork, total: int, skip: int) -> float:
    with _listener(net) as listener, _connect(net, listener.getsockname()[1]) as client:
        server, _ = listener.accept()
        with server:
            threading.Thread(target=server.sendall, args=(b"x" * total,), daemon=True).start()
            received, start, counted = 0, 0.0, 0
            while received < total:
                received += len(client.recv(1 << 20))
                if not start and received >= skip:
                    start, counted = time.perf_counter(), received
            return (received - counted) / (time.perf_counter() - start)


def rates() -> None:
    for rate in (10_000, 50_000, 200_000):
        with LabNetwork(prefix=PREFIX) as net:
            net.set_rate(rate, toward="client")
            total = rate * 1000 // 8  # one second's worth
            measured = _goodput(net, total, total // 5) * 8 / 1e6
        print(f"tbf {rate / 1000:5.0f} Mbit/s: goodput {measured:7.2f} Mbit/s   "
              f"expected {rate / 1000 * 1448 / 1514:7.2f} Mbit/s")
    for delay, link in ((0, "veth"), (0, "tap")):
        with LabNetwork(prefix=PREFIX, delay_ms=delay, link=link) as net:  # type: ignore[arg-type]
            measured = _goodput(net, 100_000_000, 10_000_000) * 8 / 1e6
        print(f"no limit over {link:4}: goodput {measured:8.1f} Mbit/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    build_times(args.rounds)
    delays(args.rounds)
    losses()
    rates()


if __name__ == "__main__":
    main()
