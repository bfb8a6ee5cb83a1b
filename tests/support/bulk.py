"""A bulk TCP transfer between the two namespaces of a :class:`~netlens.impair.LabNetwork`, captured by tcpdump.

The sender samples its own socket's TCP_INFO (through ``netlens.probe``'s
decoder) every few milliseconds while it sends, so tests can set the kernel's
cwnd and srtt beside what the capture shows.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from netlens.impair import LabNetwork

PORT = 5001

_SERVER = """
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(); print("ready", flush=True)
conn, _ = srv.accept(); total = 0
while chunk := conn.recv(1 << 16):
    total += len(chunk)
conn.close(); print(total, flush=True)
"""

_CLIENT = """
import json, socket, sys, threading, time
from netlens.probe.tcpinfo import parse_tcp_info
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sock = socket.create_connection((host, port), timeout=20)
done = threading.Event(); samples = []
def sample():
    while not done.is_set():
        info = parse_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512))
        samples.append((time.time_ns(), info.rtt_us, info.rttvar_us, info.snd_cwnd, info.snd_mss))
        time.sleep(0.002)
sampler = threading.Thread(target=sample); sampler.start()
sock.sendall(b"x" * size); sock.shutdown(socket.SHUT_WR); sock.recv(1)
done.set(); sampler.join(); sock.close()
print(json.dumps(samples))
"""


@contextmanager
def lab(delay_ms: float, rate_kbit: int | None, loss_percent: float = 0.0) -> Iterator[LabNetwork]:
    """A lab network: ``delay_ms`` each way, ``rate_kbit`` and ``loss_percent`` toward the server (the receiver)."""
    with LabNetwork(delay_ms=delay_ms) as net:
        if rate_kbit:
            net.set_rate(rate_kbit, toward="server")
        if loss_percent:
            net.set_loss(loss_percent, toward="server")
        yield net


def _argv(net: LabNetwork, role: str, *command: str) -> list[str]:
    end = net.client if role == "client" else net.server
    return end.namespace.exec_argv(command)


def bulk_transfer(net: LabNetwork, pcap: Path, size: int, timeout: float = 60.0, snaplen: int = 0) -> list[list[Any]]:
    """Send ``size`` bytes client → server while tcpdump writes ``pcap`` on the client's side.

    ``snaplen`` > 0 keeps only that many bytes of each packet (headers: small files to commit).
    Returns the sender's TCP_INFO samples: ``[ts_ns, srtt_us, rttvar_us, cwnd_segments, mss]``.
    """
    # --immediate-mode: packets reach the file as they come, not when a 1 s kernel block retires.
    dump_argv = ["tcpdump", "-i", net.client.device, "--immediate-mode", "-U", "-s", str(snaplen), "-w", str(pcap),
                 "tcp"]
    dump = subprocess.Popen(_argv(net, "client", *dump_argv), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    server = subprocess.Popen(_argv(net, "server", sys.executable, "-c", _SERVER, net.server.address, str(PORT)),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert dump.stderr is not None and server.stdout is not None
        dump.stderr.readline()  # "listening on ..."
        assert server.stdout.readline().strip() == "ready"
        client = subprocess.run(_argv(net, "client", sys.executable, "-c", _CLIENT, net.server.address, str(PORT),
                                      str(size)), capture_output=True, text=True, timeout=timeout, check=True)
        assert int(server.stdout.readline()) == size
        time.sleep(0.2)  # the last ACKs reach tcpdump
        samples: list[list[Any]] = json.loads(client.stdout)
        return samples
    finally:
        for process in (server, dump):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
