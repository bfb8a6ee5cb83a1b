"""The analysis's fast path (no Segment, no rule) leaves exactly the marks and state the full path does."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from support.synth import Conversation

from netlens.capture import PacketStore
from netlens.capture.streams import Direction

_STREAM_STATE = ("syn_ts", "first_rtt", "scale")


def _random_conversation(seed: int, count: int = 1500) -> Conversation:
    """A conversation mixing in-order data and ACKs with every irregularity the rules look at."""
    rng = random.Random(seed)
    conv = Conversation(step_ns=400_000)
    conv.handshake(wscale=(rng.choice([None, 0, 2]), rng.choice([None, 0, 2])), window=rng.choice([1000, 65495]))
    for _ in range(count):
        side = rng.randrange(2)
        roll = rng.random()
        window = rng.choice([0, 1, 40, 512, 512, 512, 4000])
        step = rng.choice([1, 1, 1, 30, 1000, 0]) * 1000 * rng.randrange(1, 5)
        if rng.random() < 0.03:
            conv.ip_ids[side] = -1  # the next frame of this side has no IP id (as IPv6, or id-0 stacks)
        if roll < 0.42:
            conv.send(side, b"d" * rng.choice([1, 1, 32, 100, 600]), window=window, delay_ns=step)
        elif roll < 0.70:
            conv.send(side, flags="A", window=window, delay_ns=step)
        elif roll < 0.73:
            # The same frame again, soon (a capture duplicate) or later (network behaviour).
            conv.now += rng.choice([0, 50_000, 150_000, 300_000, 6_000_000])
            conv.ring.append(conv.now, conv.ring.frame(conv.ring.last))
        elif roll < 0.80:
            conv.send(side, flags="A", window=window, seq=(conv.next[side] - 1) & 0xFFFFFFFF, delay_ns=step)
        elif roll < 0.88:
            offset = rng.choice([-300, -100, -32, -1, 1, 50, 400])
            conv.send(side, b"r" * rng.choice([1, 32, 100]), window=window, delay_ns=step,
                      seq=(conv.next[side] + offset) & 0xFFFFFFFF)
        elif roll < 0.94:
            conv.send(side, flags="A", window=window, delay_ns=step,
                      ack=(conv.next[1 - side] + rng.choice([-50, 0, 10, 300])) & 0xFFFFFFFF)
        elif roll < 0.96:
            conv.send(side, b"p" * rng.choice([0, 1]), flags=rng.choice(["PA", "A", "P"]), window=window,
                      delay_ns=step)
        elif roll < 0.97:
            _fast_retransmission(conv, side)
        elif roll < 0.98:
            _zero_window_probe(conv, side, rng)
        elif roll < 0.99:
            _acked_unseen_twice(conv, side)
        else:
            conv.send(side, flags=rng.choice(["FA", "RA", "R", "S"]), window=window, delay_ns=step)
    return conv


def _fast_retransmission(conv: Conversation, side: int) -> None:
    """Two segments, the receiver asking for the first again three times, the first resent soon."""
    first = conv.next[side]
    conv.send(side, b"a" * 100, delay_ns=10_000)
    conv.send(side, b"b" * 100, delay_ns=10_000)
    for _ in range(3):
        conv.send(1 - side, flags="A", ack=first, delay_ns=10_000)
    conv.send(side, b"a" * 100, seq=first, delay_ns=10_000)


def _zero_window_probe(conv: Conversation, side: int, rng: random.Random) -> None:
    """The receiver closes its window, the sender probes it with one byte, the receiver answers.

    Then the window may open and a copy of the probe follow: the one capture duplicate that
    arrives at the next expected sequence number (a probe does not move it), where the fast path
    must see the copy.
    """
    conv.send(1 - side, flags="A", window=0)
    if rng.random() < 0.3:
        conv.ip_ids[side] = -1
    probe = conv.send(side, b"z", advance=False)
    conv.send(1 - side, flags="A", window=0)
    if rng.random() < 0.6:
        conv.send(1 - side, flags="A", window=512, delay_ns=50_000)
        conv.now += rng.choice([50_000, 1_000_000, 6_000_000])
        conv.ring.append(conv.now, conv.ring.frame(probe))


def _acked_unseen_twice(conv: Conversation, side: int) -> None:
    """The peer acknowledges data never sent, this side sends an ACK, the peer does it again."""
    conv.send(1 - side, flags="A", ack=(conv.next[side] + 300) & 0xFFFFFFFF)
    conv.send(side, flags="A")
    conv.send(1 - side, flags="A", ack=(conv.next[side] + 300) & 0xFFFFFFFF)


def _walk(conv: Conversation) -> list[tuple[object, ...]]:
    """After each packet: its marks and every stream's analysis state (every Direction field)."""
    store = PacketStore(conv.ring, server_ports=(65432,))
    seen: list[tuple[object, ...]] = []
    while store.update(limit=1):
        state = tuple((tuple(getattr(f, slot) for f in stream.dirs for slot in Direction.__slots__),
                       tuple(getattr(stream, name) for name in _STREAM_STATE))
                      for stream in store.streams())
        seen.append((store.analysis(store.last), state))
    return seen


def _count_full_path(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Wrap the full path of the analysis; returns a list that gets one entry per packet taking it."""
    from netlens.capture import analysis

    full_path: list[bool] = []
    real_full = analysis._full

    def counted(*args: object) -> list[object]:
        full_path.append(True)
        return real_full(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(analysis, "_full", counted)
    return full_path


@pytest.mark.parametrize("seed", range(6))
def test_the_fast_path_leaves_the_marks_and_state_the_full_path_does(seed: int,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from netlens.capture import analysis, store

    conv = _random_conversation(seed)
    full_path = _count_full_path(monkeypatch)
    fast = _walk(conv)
    slow_taken = len(full_path)
    # The fast path off: every packet goes through the Segment and every rule of its kind.
    monkeypatch.setattr(store, "analyze", analysis.analyze_full)
    full = _walk(conv)
    assert len(fast) == len(full) == len(conv.ring)
    for no, (got, want) in enumerate(zip(fast, full, strict=True), start=1):
        assert got == want, f"packet {no}: fast path {got[0]} vs full path {want[0]}"
    # The conversation exercises both paths and every rule, so the comparison means something.
    assert len(conv.ring) - slow_taken > len(conv.ring) // 5 and slow_taken > len(conv.ring) // 5
    names = Counter(mark.name for marks, _ in full for mark in marks)  # type: ignore[attr-defined]
    assert set(names) >= set(analysis.RULES), set(analysis.RULES) - set(names)


def test_the_fast_path_takes_most_of_an_ordinary_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    full_path = _count_full_path(monkeypatch)
    conv = Conversation(step_ns=20_000)  # well inside the capture-duplicate window
    conv.handshake()
    for _ in range(100):
        conv.client(b"q" * 32)
        conv.server(b"a" * 32)
        conv.client(flags="A")
    PacketStore(conv.ring).update()
    assert len(conv.ring) - len(full_path) >= 300 - 3  # the first segment of each direction takes the full path
