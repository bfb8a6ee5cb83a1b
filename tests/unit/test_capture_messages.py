"""Search-protocol messages in captured streams: reassembly, info text, follow, ladder, dissection."""

from __future__ import annotations

import json
import struct

import pytest
from support.synth import Conversation

from netlens.capture import PacketStore, dissect, hexdump
from netlens.proto import encode, encode_request, request_message, respond

REQUEST = encode_request("search", "morpheus", "little")
RESPONSE = encode(respond(request_message("search", "morpheus", "little"), "little"))


def exchange(segments: list[bytes] | None = None) -> tuple[Conversation, PacketStore]:
    conv = Conversation()
    conv.handshake()
    for piece in segments or [REQUEST]:
        conv.client(piece)
    conv.server(flags="A")
    conv.server(RESPONSE)
    conv.client(flags="A")
    conv.close(first=1)
    store = PacketStore(conv.ring)
    store.update()
    return conv, store


def test_single_segment_request_and_response() -> None:
    assert len(REQUEST) == 146 and len(RESPONSE) == 148
    _, store = exchange()
    assert store.summary(4).info == "search request 'morpheus'"
    assert store.summary(6).info == "response result 'Follow the white rabbit. 🐰'"
    assert store.stream(1).message_count == 2
    record = store.messages(4)[0]
    assert (record.packets, record.length, record.direction) == ((4,), 146, 0)


def test_message_split_across_segments_is_named_on_the_last() -> None:
    _, store = exchange([REQUEST[:1], REQUEST[1:100], REQUEST[100:]])
    assert store.summary(6).info == "search request 'morpheus' [reassembled from 3 segments #4–#6]"
    assert store.summary(4).info == "[segment of a search message, reassembled in #6]"
    assert store.segment_of(5) == 6 and store.messages(6)[0].packets == (4, 5, 6)


def test_one_byte_per_segment() -> None:
    _, store = exchange([bytes([b]) for b in REQUEST])
    completing = 3 + len(REQUEST)
    assert store.summary(completing).info.startswith("search request 'morpheus' [reassembled from 146 segments")
    assert store.summary(completing + 2).info.startswith("response result")


def test_out_of_order_and_retransmitted_segments_count_once() -> None:
    conv = Conversation()
    conv.handshake()
    start = conv.next[0]
    conv.client(REQUEST[100:], seq=start + 100)  # arrives first
    conv.client(REQUEST[:60], seq=start)
    conv.client(REQUEST[:60], seq=start)  # retransmitted
    conv.client(REQUEST[40:100], seq=start + 40)  # overlaps, fills the gap
    store = PacketStore(conv.ring)
    store.update()
    infos = [store.summary(no).info for no in range(4, 8)]
    assert infos[3] == "search request 'morpheus' [reassembled from 3 segments #4–#7]"
    assert sum("search request" in info for info in infos) == 1
    assert store.summary(6).analysis == ("retransmission",)


def test_garbage_on_the_search_port_is_shown_not_parsed() -> None:
    _, store = exchange([b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"])
    info = store.summary(4).info
    assert info.startswith("'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'")
    assert store.stream(1).message_count == 1  # only the response parsed


def test_framed_but_broken_message_is_reported() -> None:
    header = json.dumps({"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8",
                         "content-length": 5}).encode()
    broken = struct.pack(">H", len(header)) + header + b"[1,2]"
    _, store = exchange([broken])
    assert store.summary(4).info.startswith("malformed search message: JSON content is an array")


def test_binary_request_info() -> None:
    _, store = exchange([encode_request("binary", "payload", "little")])
    assert store.summary(4).info == "request binary/custom-client-binary-type 13 bytes"


def test_hostile_text_is_escaped_everywhere() -> None:
    hostile = "[bold red]x[/]\x1b[2J\u202e"
    conv = Conversation()
    conv.handshake()
    conv.client(encode_request("search", hostile, "little"))
    conv.client(b"\x1b]0;pwned\x07[link=file:///etc/passwd]click[/link]")
    store = PacketStore(conv.ring)
    store.update()
    texts = [store.summary(no).info for no in range(1, conv.ring.last + 1)]
    texts += [line for no in range(1, conv.ring.last + 1) for line in store.hexdump(no)]
    texts += [value for layer in store.dissect(4) for _, value in layer.fields]
    texts += store.follow(1).render() + store.ladder(1).render()
    for text in texts:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c == "\u202e" for c in text), repr(text)
    assert "search request '[bold red]x[/]\\x1b[2J\\u202e'" in store.summary(4).info
    # Rendered as Rich Text (how the UI must render it), markup from the wire stays literal.
    from rich.console import Console
    from rich.text import Text

    console = Console(record=True, width=200, color_system=None)
    console.print(Text(store.summary(4).info))
    assert "[bold red]x[/]" in console.export_text()


def test_follow_reassembles_both_directions_in_order() -> None:
    conv = Conversation()
    conv.handshake()
    conv.client(REQUEST[:50])
    start = conv.next[0]
    conv.client(REQUEST[50:])
    conv.client(REQUEST[50:], seq=start)  # retransmission: followed once
    conv.server(RESPONSE)
    conv.client(b"tail")
    conv.close()
    store = PacketStore(conv.ring)
    store.update()
    follow = store.follow(1)
    assert [(c.direction, c.data) for c in follow.chunks] == [(0, REQUEST), (1, RESPONSE), (0, b"tail")]
    assert follow.chunks[0].packets == (4, 5)
    text = follow.render()
    assert text[0] == "Follow stream 1: client 127.0.0.1:50000 ⇄ server 127.0.0.1:65432"
    assert text[1] == "── client 127.0.0.1:50000 → server 127.0.0.1:65432: 146 bytes (#4, #5)"
    assert any(line.startswith("── server 127.0.0.1:65432 → client") for line in text)
    assert text[-1] == "── 150 bytes client → server, 148 bytes server → client"


def test_ladder_model_and_text() -> None:
    _, store = exchange()
    ladder = store.ladder(1)
    labels = [a.label for a in ladder.arrows]
    assert labels[:4] == ["SYN seq=0", "SYN,ACK seq=0 ack=1", "ACK seq=1 ack=1",
                          "PSH,ACK len=146 search request 'morpheus'"]
    assert labels[5].startswith("PSH,ACK len=148 response result")
    assert labels[7] == "FIN,ACK seq=149 ack=147"
    assert [a.direction for a in ladder.arrows[:3]] == [0, 1, 0]
    assert (ladder.client, ladder.server) == ("127.0.0.1:50000", "127.0.0.1:65432")
    lines = ladder.render(100)
    assert all(len(line) <= 100 for line in lines)
    assert lines[1].endswith(">|") and "SYN seq=0" in lines[1]
    assert "|<" in lines[2] and "#2" in lines[2]


def test_dissection_of_a_whole_message() -> None:
    _, store = exchange()
    layers = store.dissect(4)
    assert [layer.name for layer in layers] == ["Ethernet", "IP", "TCP", "Search protocol message"]
    fields = dict(layers[-1].fields)
    assert fields["header_length"] == "103"
    assert fields["content"] == '{"action": "search", "value": "morpheus"}'
    assert fields["message"] == "search 'morpheus'"
    assert dict(layers[2].fields)["Destination Port"] == "65432"


def test_dissection_of_a_reassembled_message_names_its_packets() -> None:
    _, store = exchange([REQUEST[:70], REQUEST[70:]])
    first = store.dissect(4)
    assert first[-1].name == "TCP segment data"
    assert dict(first[-1].fields)["part of"] == "search message reassembled in #5"
    last = store.dissect(5)
    assert last[-1].name == "Reassembled search message (2 segments: #4, #5)"
    fields = dict(last[-1].fields)
    assert fields["packets"] == "#4, #5" and fields["bytes"] == "146" and fields["message"] == "search 'morpheus'"


def test_scapy_layer_on_its_own() -> None:
    from scapy.layers.inet import TCP

    from netlens.capture.protocols import search

    search.bind_port(4242)
    layer = search.PROTOCOL.scapy_layer()
    message = layer(REQUEST)
    assert message.header_length == 103 and message.content == b'{"action": "search", "value": "morpheus"}'
    # Which bytes can start a message is the server's own decoder's decision.
    assert search.can_start_message(REQUEST) and not search.can_start_message(b"GET /")
    assert any(guessed is layer for _, guessed in TCP.payload_guess)
    # A frame on a freshly bound port dissects with the layer.
    from support.synth import tcp_frame

    layers = dissect(tcp_frame(dport=4242, payload=REQUEST))
    assert layers[-1].name == "Search protocol message"
    assert dissect(tcp_frame(dport=4242, payload=b"GET / HTTP/1.1"))[-1].name == "Raw"


def test_hexdump_layout() -> None:
    lines = hexdump(bytes(range(20)) + b"\x1b[2J")
    assert lines[0] == "0000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  ................"
    assert lines[1].startswith("0010  10 11 12 13 1b 5b 32 4a") and lines[1].endswith(" .....[2J")


@pytest.mark.parametrize("value", ["ring", "\U0001f436", "nothing"])
def test_every_table_value(value: str) -> None:
    conv = Conversation()
    conv.handshake()
    conv.client(encode_request("search", value, "little"))
    conv.server(encode(respond(request_message("search", value, "little"), "little")))
    store = PacketStore(conv.ring)
    store.update()
    assert store.summary(4).info == f"search request {value!r}"
    assert store.summary(5).info.startswith("response result ")
