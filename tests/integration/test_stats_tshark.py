"""ACK RTT, bytes in flight, calculated window and conversations agree with tshark on real captures.

The captures are real transfers: the committed ones under ``tests/data/graphs``
(see its README), a fresh one through ``netlens.impair``'s 25 ms delay
link with loss between two network namespaces, and one on loopback (where segments are up to 64 KiB).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.bulk import bulk_transfer, lab
from support.wireshark import conversation_frames, fields, load

from netlens.capture.stats import conversations

DATA = Path(__file__).resolve().parent.parent / "data" / "graphs"
COMMITTED = sorted(DATA.glob("*.pcap"))


@pytest.fixture(scope="module")
def lossy_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.5 MB through 25 ms each way, 20 Mbit/s, 2 % of the frames toward the receiver dropped by nftables."""
    pcap = tmp_path_factory.mktemp("lossy") / "lossy.pcap"
    with lab(25.0, 20_000, loss_percent=2) as net:
        bulk_transfer(net, pcap, 1_500_000)
    return pcap


@pytest.fixture(scope="module")
def loopback_capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Three 2 MB uploads with short replies on 127.0.0.1, captured by tcpdump on lo."""
    pcap = tmp_path_factory.mktemp("lo") / "lo.pcap"
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        for _ in range(3):
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data[:100])

    dump = subprocess.Popen(["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(pcap), f"tcp port {port}"],
                            stderr=subprocess.PIPE, text=True)
    thread = threading.Thread(target=serve, daemon=True)
    try:
        assert dump.stderr is not None
        dump.stderr.readline()
        thread.start()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(b"x" * 2_000_000)
                client.shutdown(socket.SHUT_WR)
                while client.recv(65536):
                    pass
        time.sleep(0.3)
    finally:
        dump.terminate()
        dump.wait(timeout=5)
        server.close()
        thread.join(timeout=5)
    yield pcap


@pytest.fixture(params=[*COMMITTED, "lossy_capture", "loopback_capture"],
                ids=[*(p.name for p in COMMITTED), "live-25ms-loss", "live-loopback"])
def capture(request: pytest.FixtureRequest) -> Path:
    """Every capture the agreement tests run on."""
    param = request.param
    return request.getfixturevalue(param) if isinstance(param, str) else param


def test_ack_rtt_agrees_within_a_microsecond(capture: Path) -> None:
    tracker = load(capture)
    theirs = {int(no): round(float(rtt) * 1e9) for no, rtt in fields(capture, "frame.number", "tcp.analysis.ack_rtt")
              if rtt}
    mine = {no: tracker.ack_rtt_ns(no) for no in range(1, tracker.last + 1) if tracker.ack_rtt_ns(no) is not None}
    assert len(theirs) >= 20
    agree = sum(1 for no, value in theirs.items() if mine.get(no) is not None and abs(mine[no] - value) <= 1000)
    assert agree / len(theirs) >= 0.99, f"{agree} of {len(theirs)} ACK RTTs agree"
    assert sorted(set(mine) - set(theirs)) == []  # no RTT where Wireshark has none


def test_bytes_in_flight_and_window_equal_tsharks(capture: Path) -> None:
    tracker = load(capture)
    rows = fields(capture, "frame.number", "tcp.analysis.bytes_in_flight", "tcp.window_size")
    flight_differ = [(no, tracker.bytes_in_flight(int(no)), flight) for no, flight, _ in rows
                     if tracker.bytes_in_flight(int(no)) != (int(flight) if flight else None)]
    window_differ = [(no, tracker.window_bytes(int(no)), window) for no, _, window in rows
                     if tracker.window_bytes(int(no)) != (int(window) if window else None)]
    assert sum(1 for _, flight, _ in rows if flight) >= 20
    assert flight_differ == []
    assert window_differ == []


def test_conversations_equal_wiresharks_packets_and_bytes_each_way(capture: Path) -> None:
    tracker = load(capture)
    frames = conversation_frames(capture)
    per_direction: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    completeness: dict[int, int] = {}
    for src, sport, dst, dport, length, stream, complete in fields(
            capture, "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "frame.len", "tcp.stream", "tcp.completeness",
            two_pass=True):
        entry = per_direction[(f"{src}:{sport}", f"{dst}:{dport}")]
        entry[0] += 1
        entry[1] += int(length)
        completeness[int(stream) + 1] = int(complete)
    rows = conversations(tracker)
    assert len(rows) == len(frames) >= 1
    for row in rows:
        assert (row.packets_c2s, row.bytes_c2s) == tuple(per_direction[(row.client, row.server)])
        assert (row.packets_s2c, row.bytes_s2c) == tuple(per_direction[(row.server, row.client)])
        key = (row.client, row.server) if (row.client, row.server) in frames else (row.server, row.client)
        b_to_a, a_to_b = frames[key]
        assert {row.packets_c2s, row.packets_s2c} == {b_to_a, a_to_b}
        assert row.completeness_bits == completeness[row.stream]
