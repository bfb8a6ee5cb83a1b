"""Lab ``slow-start``: cwnd doubles every round trip until a loss; two congestion controls compared."""

from __future__ import annotations

import itertools
import socket
import time
from typing import Any

from netlens.labs.checks import trace_missing
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.labs.peers import DiscardPeer

ONE_WAY_MS = 25
RATE_KBIT = 20_000
QUEUE_MS = 20
#: A short outage this long after each transfer starts: a burst of losses once cwnd is large.
OUTAGE_AT_S = 0.22
OUTAGE_S = 0.03
#: Multiplicative decrease at a loss: ssthresh = beta x cwnd.
BETA = {"cubic": 0.7, "reno": 0.5}
PAYLOAD = 2_000_000
UNBOUNDED = 0x7FFFFFFF
ALGORITHMS = ("cubic", "reno")


def _probes(evidence: Evidence, algorithm: str) -> list[Any]:
    port = evidence.facts.get(f"{algorithm}_port")
    return [e for _, e in evidence.trace_events("probe") if e.sport == port]


def _srtt(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no tcp_probe events")
    seen = {}
    for algorithm in ALGORITHMS:
        probes = _probes(evidence, algorithm)
        seen[algorithm] = round(min((e.srtt_us for e in probes), default=0) / 1000, 1)
    target = 2 * ONE_WAY_MS
    ok = all(target * 0.9 <= ms <= target * 1.5 for ms in seen.values())
    return Observation(ok, ", ".join(f"{a}: lowest srtt {ms} ms" for a, ms in seen.items()))


def _cwnd_at_rounds(probes: list[Any], rounds: int) -> list[int]:
    """cwnd after 0, 1, 2... round trips (the last probe before each), while the probes last."""
    if not probes:
        return []
    start, rtt = probes[0].time, 2 * ONE_WAY_MS / 1000
    values = []
    for k in range(rounds + 1):
        before = [e.cwnd for e in probes if e.time <= start + k * rtt]
        if k and probes[-1].time < start + k * rtt:
            break
        values.append(before[-1])
    return values


def _doubling(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no tcp_probe events")
    ok, seen = True, []
    for algorithm in ALGORITHMS:
        probes = _probes(evidence, algorithm)
        # Only the rounds of slow start: up to the first ssthresh.
        slow = list(itertools.takewhile(lambda e: e.ssthresh >= UNBOUNDED, probes))
        values = _cwnd_at_rounds(slow, 3)
        ratios = [round(b / max(a, 1), 2) for a, b in itertools.pairwise(values)]
        # Doubling each round trip, judged over the rounds slow start lasted (CUBIC's HyStart may end
        # it early on a busy machine, when round trips grow): at least x1.6 a round on average, since
        # a sample taken just before a round's ACKs arrive makes single ratios jitter.
        rounds = len(ratios)
        doubled = rounds > 0 and values[-1] / max(values[0], 1) >= 1.6 ** rounds
        # Judged on the first transfer (CUBIC); the second is shown beside it for comparison.
        ok = ok and (doubled or algorithm != ALGORITHMS[0])
        seen.append(f"{algorithm}: cwnd after each round trip {values} (×{ratios})")
    return Observation(ok, "; ".join(seen), "tcp_probe")


def _backoff(probes: list[Any]) -> tuple[int, int] | None:
    """(cwnd just before the first loss response, the ssthresh it set), or None if there was none.

    HyStart also sets ssthresh, to the current cwnd (no decrease): that ends slow start but is not
    a response to a loss, so it is skipped.
    """
    for before, event in itertools.pairwise(probes):
        if event.ssthresh != before.ssthresh and event.ssthresh < UNBOUNDED and event.ssthresh < 0.9 * before.cwnd:
            return before.cwnd, event.ssthresh
    return None


def _exit(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no tcp_probe events")
    ok, seen = True, []
    for algorithm, beta in BETA.items():
        backoff = _backoff(_probes(evidence, algorithm))
        if backoff is None:
            ok = False
            seen.append(f"{algorithm}: no loss response")
            continue
        cwnd, ssthresh = backoff
        ratio = ssthresh / max(cwnd, 1)
        ok = ok and abs(ratio - beta) <= 0.12
        seen.append(f"{algorithm}: cwnd {cwnd} → ssthresh {ssthresh} (×{ratio:.2f})")
    return Observation(ok, "; ".join(seen), "tcp_probe")


def _exit_text(probes: list[Any]) -> str:
    first = next((e for e in probes if e.ssthresh < UNBOUNDED), None)
    if first is None:
        return f"still in slow start, cwnd up to {max((e.cwnd for e in probes), default=0)}"
    return f"left slow start at cwnd {first.cwnd} (+{first.time - probes[0].time:.2f} s)"


def _compare(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no tcp_probe events")
    series = {a: _probes(evidence, a) for a in ALGORITHMS}
    ok = all(len(s) >= 10 for s in series.values())
    return Observation(ok, "; ".join(f"{a}: {len(s)} probes, {_exit_text(s)}" for a, s in series.items() if s)
                       or "no probes", "tcp_probe")


def shape(ctx: LabContext) -> None:
    if ctx.variant == "no-delay":
        ctx.impair.set_delay(0)
    else:
        ctx.impair.set_rate(RATE_KBIT, toward="server", queue_ms=QUEUE_MS)
    ctx.keep("sink", DiscardPeer(ctx).port)


def _transfer(ctx: LabContext, algorithm: str) -> None:
    # The congestion control is per socket: set before connect, it runs from the first segment.
    sock = ctx.connect(ctx.facts["sink"], timeout=10.0,
                       options={(socket.IPPROTO_TCP, socket.TCP_CONGESTION): algorithm.encode()})
    ctx.keep(f"{algorithm}_port", sock.getsockname()[1])
    started = time.perf_counter()

    def outage() -> None:
        time.sleep(OUTAGE_AT_S)
        ctx.impair.set_blackhole(True, toward="server")
        time.sleep(OUTAGE_S)
        ctx.impair.set_blackhole(False, toward="server")

    cutter = ctx.background("outage", outage) if ctx.variant != "no-delay" else None
    sock.sendall(b"s" * PAYLOAD)
    if cutter is not None:
        # Keep the socket open (ESTABLISHED: tcp_probe reports only there) through the outage and the recovery.
        cutter.join(2.0)
    ctx.wait(0.15)
    sock.close()
    ctx.keep(f"{algorithm}_s", round(time.perf_counter() - started, 3))


def with_cubic(ctx: LabContext) -> None:
    _transfer(ctx, "cubic")


def with_reno(ctx: LabContext) -> None:
    _transfer(ctx, "reno")


LAB = Lab(
    name="slow-start",
    title="Slow start and congestion avoidance",
    lesson="A new connection does not know the path, so cwnd starts at 10 segments and doubles every "
           "round trip (slow start) until the path says it is full: a loss, or (CUBIC's HyStart) round trips "
           "growing as a queue builds. Then ssthresh is set and cwnd grows slowly. Reno waits for a loss.",
    steps=(
        Step("A 50 ms, 20 Mbit/s path", f"The wire now holds every frame {ONE_WAY_MS} ms each way and the "
             f"client's side is limited to {RATE_KBIT // 1000} Mbit/s.",
             Watch("connections", "the discard peer's listening socket", {"state": "LISTEN"}), shape),
        Step("Send with CUBIC", f"The client sends {PAYLOAD // 1000} kB with CUBIC (Linux's default).",
             Watch("inspector", "the cwnd sparkline: doubling, a drop, then a curve", {"port": "client"}),
             with_cubic),
        Step("Send with Reno", "The same with Reno.",
             Watch("inspector", "the cwnd sparkline: doubling, a drop, then a straight line", {"port": "client"}),
             with_reno),
    ),
    checks=(
        Check("round trip", f"tcp_probe's srtt about {2 * ONE_WAY_MS} ms on both connections", _srtt),
        Check("doubling", "in slow start cwnd about doubles each round trip", _doubling),
        Check("backoff", "at the first loss ssthresh = 0.7 × cwnd for CUBIC, 0.5 × cwnd for Reno", _exit),
        Check("two algorithms", "a cwnd series (tcp_probe) for CUBIC and for Reno, side by side", _compare),
    ),
    control="no-delay",
    variants={"no-delay": "no delay and no rate limit: round trips of microseconds, no queue to notice"},
    needs=frozenset({"trace"}),
    server_mode=None,
    network={"delay_ms": ONE_WAY_MS},
)
