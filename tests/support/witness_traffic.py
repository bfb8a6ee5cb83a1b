"""Real TCP traffic captured with tcpdump inside lab namespaces: the raw material of the witness corpus.

Each scenario builds a :class:`netlens.impair.LabNetwork` (two namespaces and a
veth wire), starts tcpdump on one or both ends, runs real sockets through the
impairment, and leaves classic pcap files behind. Nothing is synthesised:
retransmissions, duplicate ACKs, zero windows and probes are the kernel's own.
Needs root (namespaces, nftables, tc).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from netlens.impair import LabNetwork
from netlens.impair.links import Endpoint

#: Prefix of every namespace/table this module creates (the analysis helper's, plus the pid).
PREFIX = "nla"
_TIMEOUT = 20.0


@contextlib.contextmanager
def tcpdump(end: Endpoint, path: Path, snaplen: int = 262144) -> Iterator[None]:
    """Capture every TCP frame on ``end``'s device into ``path`` while the block runs."""
    argv = end.namespace.exec_argv(["tcpdump", "-i", end.device, "--immediate-mode", "-U", "-n", "-s", str(snaplen),
                                    "-w", str(path), "tcp"])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # "listening on ..." once the socket is bound
        if b"listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line!r}")
        yield
        time.sleep(0.3)  # let the last frames reach the file
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pair(net: LabNetwork, rcvbuf: int | None = None) -> tuple[socket.socket, socket.socket]:
    """A connected (client, server) socket pair across the lab's wire."""
    with net.server.namespace.entered():
        listener = socket.create_server((net.server.address, 0))
    with net.client.namespace.entered():
        client = socket.socket()
        if rcvbuf is not None:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        client.settimeout(_TIMEOUT)
        client.connect((net.server.address, listener.getsockname()[1]))
    server, _ = listener.accept()
    server.settimeout(_TIMEOUT)
    listener.close()
    return client, server


def _receive(sock: socket.socket, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return bytes(got)


def _pattern(size: int, seed: int) -> bytes:
    """Deterministic, non-repeating-looking bytes (so follow-stream comparisons mean something)."""
    block = bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


def _exchange(net: LabNetwork, rounds: int, request: int, response: int) -> None:
    """Request/response rounds in one connection, then an orderly close from both ends."""
    client, server = _pair(net)
    try:
        for n in range(rounds):
            sender = threading.Thread(target=client.sendall, args=(_pattern(request, n),))
            sender.start()
            _receive(server, request)
            sender.join()
            sender = threading.Thread(target=server.sendall, args=(_pattern(response, n + 100),))
            sender.start()
            _receive(client, response)
            sender.join()
        client.shutdown(socket.SHUT_WR)
        _receive(server, 1)
        server.close()
        _receive(client, 1)
    finally:
        client.close()
        server.close()


def lossy(directory: Path, loss_percent: float = 4.0) -> tuple[Path, Path]:
    """Transfers through random ingress loss both ways; captured at the server end and the client end.

    The server's capture sees every frame the server sent (drops happen on the
    client's ingress), so it shows retransmissions, fast retransmissions and the
    client's duplicate ACKs; the client's capture sees the same from the other side.
    """
    server_file, client_file = directory / "lossy_server.pcap", directory / "lossy_client.pcap"
    with LabNetwork(prefix=PREFIX, link="veth") as net, tcpdump(net.server, server_file), \
            tcpdump(net.client, client_file):
        net.set_loss(loss_percent, toward="client")
        net.set_loss(loss_percent / 2, toward="server")
        _exchange(net, rounds=3, request=3000, response=25000)
        _exchange(net, rounds=2, request=12000, response=2000)
    return server_file, client_file


def egress_drops(directory: Path) -> Path:
    """Frames dropped on the server's egress before the capture taps see them: gaps the sender fills later.

    An nftables netdev egress chain drops every 9th frame the server sends; the
    capture on that device never sees the dropped originals (egress hooks run
    before the taps), so it shows "previous segment not captured" and later the
    retransmission that fills the gap.
    """
    path = directory / "egress_drops.pcap"
    with LabNetwork(prefix=PREFIX, link="veth") as net:
        table = f"{PREFIX}{os.getpid()}"
        rules = (f"table netdev {table} {{\n chain out {{\n  type filter hook egress device {net.server.device} "
                 f"priority 0;\n  ip length > 200 numgen inc mod 9 == 0 drop\n }}\n}}\n")
        net.server.namespace.tool(["nft", "-f", "-"], stdin=rules)
        with tcpdump(net.server, path):
            _exchange(net, rounds=2, request=200, response=20000)
    return path


def shaped(directory: Path) -> Path:
    """A bulk transfer through a tight ``tc tbf`` on the server's egress: queue drops unseen by the capture."""
    path = directory / "shaped.pcap"
    with LabNetwork(prefix=PREFIX, link="veth") as net, tcpdump(net.server, path):
        net.set_rate(4000, toward="client", queue_ms=2.0)
        _exchange(net, rounds=1, request=100, response=60000)
    return path


def slow_reader(directory: Path) -> tuple[Path, Path]:
    """A client with a tiny receive buffer that stops reading: window full, zero window, probes, updates.

    Also an idle connection with a one-second keep-alive timer: keep-alives and their ACKs.
    Returns the (full-size, snaplen-cut at 80 bytes) captures of the same traffic.
    """
    path, cut = directory / "slow_reader.pcap", directory / "snaplen80.pcap"
    with LabNetwork(prefix=PREFIX, link="veth") as net, tcpdump(net.server, path), \
            tcpdump(net.server, cut, snaplen=80):
        client, server = _pair(net, rcvbuf=4096)
        try:
            data = _pattern(60000, 7)
            sender = threading.Thread(target=server.sendall, args=(data,))
            sender.start()
            time.sleep(1.2)  # the client's window fills and stays shut: probes follow
            got = bytearray()
            while len(got) < len(data):
                got += client.recv(2048)
                time.sleep(0.0005)
            sender.join()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
            time.sleep(2.5)
        finally:
            client.close()
            server.close()
    return path, cut

