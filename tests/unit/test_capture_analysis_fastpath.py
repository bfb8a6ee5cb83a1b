"""The analysis's QUIET fast path (no Segment, no rule) leaves exactly the state and marks the full path does."""

from __future__ import annotations

import random

import pytest
from support.synth import Conversation

from netlens.capture import RULES, PacketStore
from netlens.capture.analysis.segment import KINDS
from netlens.capture.streams import Direction

_STATE = tuple(slot for slot in Direction.__slots__ if slot not in ("payload_bytes", "segments"))


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
        if roll < 0.45:
            conv.send(side, b"d" * rng.choice([1, 1, 32, 100, 600]), window=window, delay_ns=step)
        elif roll < 0.75:
            conv.send(side, flags="A", window=window, delay_ns=step)
        elif roll < 0.82:
            conv.send(side, flags="A", window=window, seq=(conv.next[side] - 1) & 0xFFFFFFFF, delay_ns=step)
        elif roll < 0.9:
            offset = rng.choice([-300, -100, -32, -1, 1, 50, 400])
            conv.send(side, b"r" * rng.choice([1, 32, 100]), window=window, delay_ns=step,
                      seq=(conv.next[side] + offset) & 0xFFFFFFFF)
        elif roll < 0.95:
            conv.send(side, flags="A", window=window, delay_ns=step,
                      ack=(conv.next[1 - side] + rng.choice([-50, 0, 10, 300])) & 0xFFFFFFFF)
        elif roll < 0.99:
            conv.send(side, b"p" * rng.choice([0, 1]), flags=rng.choice(["PA", "A", "P"]), window=window,
                      delay_ns=step)
        else:
            conv.send(side, flags=rng.choice(["FA", "RA", "R"]), window=window, delay_ns=step)
    return conv


def _walk(conv: Conversation) -> list[tuple[object, ...]]:
    """After each packet: its marks and every stream's analysis state."""
    store = PacketStore(conv.ring, server_ports=(65432,))
    seen: list[tuple[object, ...]] = []
    while store.update(limit=1):
        state = tuple((tuple(getattr(f, slot) for slot in _STATE for f in stream.dirs), tuple(stream.last_ack_no))
                      for stream in store.streams())
        seen.append((store.analysis(store.last), state))
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_the_quiet_fast_path_leaves_the_state_the_full_path_does(seed: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from netlens.capture import analysis

    conv = _random_conversation(seed)
    fast = _walk(conv)
    every = tuple((rule.check, rule.name) for rule in RULES.values())
    calls = {"quiet": 0}
    real_quiet = analysis._quiet

    def counted(*args: object) -> bool:
        calls["quiet"] += 1
        return real_quiet(*args)  # type: ignore[arg-type]

    # Every rule on every kind turns the fast path off: the full path decides every packet.
    monkeypatch.setattr(analysis, "_CHECKS", {kind: every for kind in KINDS})
    monkeypatch.setattr(analysis, "_quiet", counted)
    full = _walk(conv)
    assert calls["quiet"] == 0
    assert len(fast) == len(full) == len(conv.ring)
    for no, (got, want) in enumerate(zip(fast, full, strict=True), start=1):
        assert got == want, f"packet {no}: fast path {got[0]} vs full path {want[0]}"


def test_the_fast_path_takes_most_of_an_ordinary_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    from netlens.capture import analysis

    taken = []
    real_quiet = analysis._quiet
    monkeypatch.setattr(analysis, "_quiet", lambda *args: taken.append(real_quiet(*args)) or taken[-1])
    conv = Conversation()
    conv.handshake()
    for _ in range(100):
        conv.client(b"q" * 32)
        conv.server(b"a" * 32)
        conv.client(flags="A")
    PacketStore(conv.ring).update()
    assert taken.count(True) >= 300 - 3  # the first segment of each direction takes the full path
