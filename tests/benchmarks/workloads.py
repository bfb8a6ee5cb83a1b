"""Synthetic captures the capture and analysis benchmarks feed to ``PacketStore`` (and to older trees).

Each workload is a list of ``(ts_ns, frame)``: Ethernet (zero MACs, as on lo) +
IPv4 + TCP frames built with ``tests/support/synth.py``, so the same bytes can
be pickled and analysed by any checkout (``--against``).

* :func:`realistic`: what a capture of the benchmark's echo exchange looks
  like, a few streams at once: 32-byte requests and their echoes with TCP
  timestamps (98-byte frames), IP ids and sequence numbers that move, streams
  that open and close, and now and then a request sent again (an RTO
  retransmission) and an ACK repeated (a duplicate ACK).
* :func:`identical`: one 98-byte echo frame over and over, 1 µs apart: what
  ``bench_capture`` analysed before; the analysis rightly takes every copy
  after the first for a capture duplicate (same IP id, same bytes), while
  the tree before the reshaping (d2a62c1) took them for retransmissions, so the
  two do not do the same work on it.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = b"0123456789abcdef0123456789abcdef"  # 32 bytes
START_NS = 1_700_000_000_000_000_000
#: The echo server's port in the synthetic captures (an ephemeral port, like the exchange's port 0).
SERVER_PORT = 41234

Frames = list[tuple[int, bytes]]


def _support() -> None:
    for path in (str(ROOT / "tests"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


def identical(count: int) -> Frames:
    """The same 98-byte echo segment ``count`` times, 1 µs apart."""
    _support()
    from support.synth import tcp_frame, tcp_options

    frame = tcp_frame(sport=54321, dport=65432, seq=1000, ack=2000, flags="PA", window=512,
                      options=tcp_options(timestamp=(123456, 654321)), payload=PAYLOAD)
    return [(START_NS + i * 1000, frame) for i in range(count)]


def realistic(count: int, streams: int = 4, per_stream: int = 50_000, seed: int = 1) -> Frames:
    """``streams`` echo connections at a time until ``count`` frames (see the module docstring).

    Each connection makes about ``per_stream`` packets (handshake, request/echo
    pairs, close) and is replaced by a new one from the next client port. One
    request in 200 is sent again 200 µs later (a spurious RTO retransmission:
    same sequence number, new IP id), one echo in 300 is followed by a
    duplicate of the client's last ACK. Deterministic for a given ``seed``.
    """
    _support()
    from support.synth import Conversation, tcp_options

    from netlens.capture.ring import PacketRing

    rng = random.Random(seed)
    ring = PacketRing(max_packets=count + 16, max_bytes=max(1 << 26, count * 200))
    clock = [START_NS]
    next_port = [50000]

    def tick(conv: Conversation, gap_ns: int) -> None:
        clock[0] += gap_ns
        conv.now = clock[0]

    def timestamps(conv: Conversation, side: int) -> bytes:
        # TSval ticks every millisecond (Linux's clock), TSecr echoes the peer's.
        ms = (clock[0] - START_NS) // 1_000_000
        return tcp_options(timestamp=(1000 + ms + side, 1000 + ms + 1 - side))

    def opened() -> tuple[Conversation, list[int]]:
        port = next_port[0]
        next_port[0] += 1
        conv = Conversation(ring, client=("127.0.0.1", port), server=("127.0.0.1", SERVER_PORT),
                            isn=(rng.getrandbits(32), rng.getrandbits(32)), step_ns=0)
        tick(conv, 20_000)
        conv.handshake()
        return conv, [len(ring)]

    live = [opened() for _ in range(streams)]
    while len(ring) < count:
        index = rng.randrange(streams)
        conv, started = live[index]
        if len(ring) - started[0] >= per_stream:
            tick(conv, 5_000)
            conv.close(first=0)
            live[index] = opened()
            continue
        tick(conv, rng.randrange(2_000, 12_000))
        conv.client(PAYLOAD, options=timestamps(conv, 0))
        if rng.randrange(200) == 0:
            tick(conv, 200_000)
            conv.client(PAYLOAD, seq=(conv.next[0] - len(PAYLOAD)) & 0xFFFFFFFF, options=timestamps(conv, 0))
        tick(conv, rng.randrange(15_000, 40_000))
        conv.server(PAYLOAD, options=timestamps(conv, 1))
        if rng.randrange(300) == 0:
            tick(conv, 3_000)
            conv.client(flags="A", options=timestamps(conv, 0))
            conv.client(flags="A", options=timestamps(conv, 0))
    return [(ts, frame) for _, ts, frame in ring.read(ring.first, limit=count)]


WORKLOADS = {"realistic": realistic, "identical": identical}
