"""Analysis benchmark: CPU time per packet of ``PacketStore.update`` on synthetic captures.

Run: ``python tests/benchmarks/bench_analysis.py [--packets 100000] [--repeat 3] [--against DIR ...]``

Workloads (frames built with ``tests/support/synth.py``, Ethernet + IPv4 + TCP on lo):

* ``retransmitted``: one 98-byte echo segment repeated (every frame after the first
  goes back in the sequence space: the "retransmission" path; what ``bench_capture``'s
  ring figure analyses);
* ``echo``: echo conversations on the workshop port, 100 round trips each (client 32
  bytes, server ACK + echo, client ACK), handshake and close;
* ``bulk``: one-way 1,400-byte data segments with an ACK every two (no protocol recognises them);
* ``realistic``: ``bench_capture``'s ring workload (``workloads.py``): four echo streams at once,
  98-byte frames with moving sequence numbers, IP ids and timestamps, some retransmissions.

Each figure is the best of ``--repeat`` runs of ``time.process_time()`` (CPU time:
the machine may be shared) over a fresh store. ``--against DIR`` measures another
checkout (e.g. ``git archive d2a62c1 | tar -x -C /tmp/base``) with the same frames in
the same run, interleaved, so the figures compare. Not a pytest test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = b"0123456789abcdef0123456789abcdef"  # 32 bytes
START_NS = 1_700_000_000_000_000_000

Frames = list[tuple[int, bytes]]


def _support() -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def retransmitted(count: int) -> Frames:
    """The same echo segment ``count`` times, 1 µs apart."""
    _support()
    from support.synth import tcp_frame

    frame = tcp_frame(sport=50000, dport=65432, seq=1000, ack=5000, flags="PA", window=512, payload=PAYLOAD,
                      options=b"\x01\x01\x08\x0a" + bytes(8))
    return [(START_NS + i * 1000, frame) for i in range(count)]


def echo(count: int) -> Frames:
    """Echo conversations of 100 round trips each, until ``count`` frames."""
    _support()
    from support.synth import Conversation

    frames: Frames = []
    port = 40000
    while len(frames) < count:
        conv = Conversation(client=("127.0.0.1", port), step_ns=20_000, start_ns=START_NS + len(frames) * 20_000)
        conv.handshake()
        for _ in range(100):
            conv.client(PAYLOAD)
            conv.server(PAYLOAD)
            conv.client(flags="A")
        conv.close()
        frames += conv.ring.read(conv.ring.first, limit=None)
        port += 1
    return [(ts, frame) for _, ts, frame in frames[:count]]


def bulk(count: int) -> Frames:
    """One-way bulk data: 1,400-byte segments, an ACK every two."""
    _support()
    from support.synth import Conversation

    conv = Conversation(client=("127.0.0.1", 39999), step_ns=5_000)
    conv.handshake()
    chunk = bytes(range(256)) * 5 + bytes(120)
    while len(conv.ring) < count:
        conv.client(chunk)
        conv.client(chunk)
        conv.server(flags="A")
    return [(ts, frame) for _, ts, frame in conv.ring.read(conv.ring.first, limit=None)][:count]


def realistic(count: int) -> Frames:
    """bench_capture's ring workload: a few echo streams at once, moving numbers, some retransmissions."""
    sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
    from workloads import realistic as build

    return build(count)


WORKLOADS = {"retransmitted": retransmitted, "echo": echo, "bulk": bulk, "realistic": realistic}


def measure(path: Path, repeat: int) -> dict[str, float]:
    """Child side: analyse the pickled frames ``repeat`` times with the netlens importable here."""
    from netlens.capture import PacketRing, PacketStore

    frames: Frames = pickle.loads(path.read_bytes())
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        ring = PacketRing(max_packets=len(frames) + 1, max_bytes=1 << 34)
        append = ring.append
        for ts, frame in frames:
            append(ts, frame)
        store = PacketStore(ring)
        wall, cpu = time.perf_counter(), time.process_time()
        store.update(limit=None)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return {"cpu_us": best_cpu / len(frames) * 1e6, "wall_us": best_wall / len(frames) * 1e6}


def run_child(tree: Path, path: Path, repeat: int) -> dict[str, float]:
    """Measure in a fresh interpreter importing netlens from ``tree``."""
    code = (f"import sys, json; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(ROOT)!r});"
            f"from tests.benchmarks.bench_analysis import measure; from pathlib import Path;"
            f"print(json.dumps(measure(Path({str(path)!r}), {repeat})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is reported)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of every tree")
    parser.add_argument("--against", type=Path, action="append", default=[], help="another checkout to compare")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    args = parser.parse_args()
    trees = [ROOT, *[p.resolve() for p in args.against]]
    with tempfile.TemporaryDirectory(prefix="nlf-bench-") as tmp:
        for name in args.workload or list(WORKLOADS):
            path = Path(tmp) / f"{name}.pickle"
            path.write_bytes(pickle.dumps(WORKLOADS[name](args.packets)))
            best: dict[Path, dict[str, float]] = {}
            for _ in range(args.rounds):
                for tree in trees:
                    got = run_child(tree, path, args.repeat)
                    prev = best.get(tree)
                    best[tree] = got if prev is None else {k: min(v, prev[k]) for k, v in got.items()}
            print(f"{name} ({args.packets:,} frames):")
            for tree, figures in best.items():
                print(f"  {figures['cpu_us']:6.2f} µs/packet CPU  {figures['wall_us']:6.2f} µs wall  {tree}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
