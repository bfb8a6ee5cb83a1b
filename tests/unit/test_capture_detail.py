"""A packet's TCP layer in Wireshark's words: relative and raw numbers, header length, flags, window × scale."""

from __future__ import annotations

from support.synth import Conversation

from netlens.capture import PacketStore


def tcp_layer(store: PacketStore, no: int) -> dict[str, str]:
    layers = store.dissect(no)
    return dict(next(layer for layer in layers if layer.name == "TCP").fields)


def test_data_segment_reads_like_wireshark() -> None:
    conv = Conversation(isn=(1000, 5000))
    conv.handshake(wscale=(7, 5))
    request = conv.client(b"x" * 146, window=512)
    store = PacketStore(conv.ring)
    store.update()
    fields = tcp_layer(store, request)
    assert fields["Source Port"] == "50000" and fields["Destination Port"] == "65432"
    assert fields["Sequence Number"] == "1 (relative sequence number)"
    assert fields["Sequence Number (raw)"] == "1001"
    assert fields["[Next Sequence Number]"] == "147 (relative sequence number)"
    assert fields["Acknowledgment Number"] == "1 (relative ack number)"
    assert fields["Acknowledgment number (raw)"] == "5001"
    assert fields["Header Length"] == "20 bytes (5)"
    assert fields["Flags"] == "0x018 (PSH, ACK)"
    assert fields["Window"] == "512"
    assert fields["[Window size scaling factor]"] == "128"
    assert fields["[Calculated window size]"] == "65536 bytes (512 × 128)"
    assert fields["[TCP Segment Len]"] == "146" and fields["[Stream index]"] == "1"


def test_syn_window_is_not_scaled_and_options_are_named() -> None:
    conv = Conversation()
    conv.handshake(wscale=(7, 7), window=65495)
    store = PacketStore(conv.ring)
    store.update()
    fields = tcp_layer(store, 1)
    assert fields["Flags"] == "0x002 (SYN)"
    assert fields["Header Length"] == "32 bytes (8)"
    assert fields["Acknowledgment Number"] == "0 (not set: no ACK flag)"
    assert fields["[Calculated window size]"] == "65495 bytes"
    assert fields["Options"] == "(12 bytes) MSS=65495 SACK_PERM WS=128"


def test_without_the_handshake_the_scale_is_unknown() -> None:
    conv = Conversation(isn=(777, 999))
    conv.client(b"hello")
    store = PacketStore(conv.ring)
    store.update()
    fields = tcp_layer(store, 1)
    assert fields["Sequence Number"] == "1 (relative sequence number)" and fields["Sequence Number (raw)"] == "777"
    assert fields["[Window size scaling factor]"].startswith("unknown")
