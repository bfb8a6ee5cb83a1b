"""Capture duplicates: a frame the capture recorded twice is told apart from one the network carried twice."""

from __future__ import annotations

from support.synth import Conversation

from netlens.capture import PacketStore


def _marks(conv: Conversation) -> list[tuple[str, ...]]:
    store = PacketStore(conv.ring)
    store.update()
    return [store.summary(no).analysis for no in range(1, conv.ring.last + 1)]


def _again(conv: Conversation, no: int, after_ns: int) -> int:
    """Append packet ``no``'s frame once more, ``after_ns`` after the last packet."""
    conv.now += after_ns
    return conv.ring.append(conv.now, conv.ring.frame(no))


def test_a_copy_is_a_capture_duplicate_and_changes_nothing() -> None:
    conv = Conversation()
    conv.handshake()
    data = conv.client(b"x" * 100)
    copy = _again(conv, data, 3_000)
    ack = conv.server(flags="A")
    ack_copy = _again(conv, ack, 3_000)
    later = conv.client(b"y" * 100)
    marks = _marks(conv)
    assert marks[copy - 1] == ("capture-duplicate",) and marks[ack_copy - 1] == ("capture-duplicate",)
    assert marks[data - 1] == marks[ack - 1] == marks[later - 1] == ()  # no retransmission, no dup ACK


def test_the_same_bytes_later_are_network_behaviour() -> None:
    conv = Conversation()
    conv.handshake()
    data = conv.client(b"x" * 100)
    resent = _again(conv, data, 40_000_000)  # the same IP id too: far too late to be the capture's copy
    assert _marks(conv)[resent - 1] == ("retransmission",)


def test_without_an_ip_id_only_close_copies_count() -> None:
    conv = Conversation(client=("::1", 50000), server=("::1", 65432))
    conv.handshake()
    conv.client(b"x" * 100)
    ack = conv.server(flags="A")
    close = _again(conv, ack, 50_000)
    far = _again(conv, ack, 1_000_000)  # an identical duplicate ACK a millisecond later: the network's
    marks = _marks(conv)
    assert marks[close - 1] == ("capture-duplicate",)
    assert marks[far - 1] == ("dup-ack",)
