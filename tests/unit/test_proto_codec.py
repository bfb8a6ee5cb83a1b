"""The search-protocol codec, byte by byte (PROTOCOL.md §2)."""

from __future__ import annotations

import json
import struct

import pytest

from netlens.proto import (
    CLIENT_BINARY_TYPE,
    SERVER_BINARY_TYPE,
    Decoder,
    JsonHeaderRead,
    MessageComplete,
    ProtocolError,
    ProtoHeaderRead,
    Stage,
    encode,
    encode_request,
    json_message,
    respond,
)

MORPHEUS = encode_request("search", "morpheus", "little")


def frame(header: dict | bytes | str, content: bytes = b"") -> bytes:
    """Hand-built message: lets tests say exactly which bytes go on the wire."""
    if isinstance(header, dict):
        header = json.dumps(header, ensure_ascii=False)
    if isinstance(header, str):
        header = header.encode("utf-8")
    return struct.pack(">H", len(header)) + header + content


def header(length: int, ctype: str = "text/json", enc: str = "utf-8", order: str = "little") -> dict:
    return {"byteorder": order, "content-type": ctype, "content-encoding": enc, "content-length": length}


def test_protocol_md_example_is_146_bytes_and_its_response_148() -> None:
    assert len(MORPHEUS) == 146
    assert MORPHEUS[:2] == struct.pack(">H", 103)
    assert MORPHEUS[105:] == b'{"action": "search", "value": "morpheus"}'
    (done,) = [e for e in Decoder().feed(MORPHEUS) if isinstance(e, MessageComplete)]
    response = encode(respond(done.message, "little"))
    assert len(response) == 148
    assert response.endswith('{"result": "Follow the white rabbit. 🐰"}'.encode())


def test_header_keys_in_stock_order_with_default_separators() -> None:
    raw = MORPHEUS[2:105].decode()
    assert raw == ('{"byteorder": "little", "content-type": "text/json", '
                   '"content-encoding": "utf-8", "content-length": 41}')


def test_binary_request_is_action_plus_value() -> None:
    data = encode_request("binary", "héllo", "big")
    (done,) = [e for e in Decoder().feed(data) if isinstance(e, MessageComplete)]
    assert done.message.content == "binaryhéllo".encode()
    assert done.message.header == header(len("binaryhéllo".encode()), CLIENT_BINARY_TYPE, "binary", "big")
    assert done.message.value is None
    assert done.wire_length == len(data)


MESSAGES = [
    encode_request("search", "morpheus"),
    encode_request("search", "ring"),
    encode_request("search", "\U0001f436"),
    encode_request("search", ""),
    encode_request("binary", "\U0001f600 data"),
    encode(json_message({"result": "In the caves beneath the Misty Mountains. \U0001f48d"})),
]


def _decode_all(chunks: list[bytes]) -> list:
    decoder = Decoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    assert decoder.stage is Stage.PROTO_HEADER and decoder.buffered_length == 0
    return events


@pytest.mark.parametrize("data", MESSAGES, ids=range(len(MESSAGES)))
def test_every_two_way_split_and_byte_at_a_time_give_the_same_events(data: bytes) -> None:
    whole = _decode_all([data])
    assert [type(e) for e in whole] == [ProtoHeaderRead, JsonHeaderRead, MessageComplete]
    for cut in range(len(data) + 1):
        assert _decode_all([data[:cut], data[cut:]]) == whole
    assert _decode_all([data[i:i + 1] for i in range(len(data))]) == whole


def test_back_to_back_messages_in_any_split() -> None:
    stream = MESSAGES[0] + MESSAGES[4] + MESSAGES[5]
    whole = _decode_all([stream])
    assert whole == _decode_all([MESSAGES[0]]) + _decode_all([MESSAGES[4]]) + _decode_all([MESSAGES[5]])
    for cut in range(0, len(stream), 7):
        for cut2 in range(cut, len(stream), 31):
            assert _decode_all([stream[:cut], stream[cut:cut2], stream[cut2:]]) == whole


def test_stages_are_observable_byte_by_byte() -> None:
    decoder = Decoder()
    assert (decoder.stage, decoder.needed) == (Stage.PROTO_HEADER, 2)
    assert decoder.feed(MORPHEUS[:1]) == []
    assert (decoder.stage, decoder.needed, decoder.buffered) == (Stage.PROTO_HEADER, 1, MORPHEUS[:1])
    assert decoder.feed(MORPHEUS[1:2]) == [ProtoHeaderRead(103)]
    assert (decoder.stage, decoder.needed, decoder.header_length) == (Stage.JSON_HEADER, 103, 103)
    assert decoder.feed(MORPHEUS[2:104]) == []
    assert decoder.needed == 1
    (event,) = decoder.feed(MORPHEUS[104:105])
    assert isinstance(event, JsonHeaderRead) and event.content_length == 41
    assert (decoder.stage, decoder.needed) == (Stage.CONTENT, 41)
    (done,) = decoder.feed(MORPHEUS[105:])
    assert isinstance(done, MessageComplete)
    assert done.message.value == {"action": "search", "value": "morpheus"}
    assert decoder.messages == 1 and decoder.stage is Stage.PROTO_HEADER


def test_max_messages_keeps_a_complete_request_despite_trailing_junk() -> None:
    decoder = Decoder(max_messages=1)
    events = decoder.feed(MORPHEUS + b"\xff\xffjunk")
    assert isinstance(events[-1], MessageComplete)
    assert decoder.extra == 6
    assert decoder.feed(b"more") == [] and decoder.extra == 10


BAD = [
    # (bytes, stage named in the error, fragment of the reason, answerable)
    (b"\x00\x00", "proto header", "JSON header length is 0", False),
    (b"\xff\xff", "proto header", "exceeds the limit of 16384", False),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "proto header", "JSON header length 18245", False),
    (frame(b"[1, 2]")[:2] + b"x", "JSON header", "starts with byte 0x78", False),
    (frame(b"{not json}"), "JSON header", "not valid JSON", True),
    (frame(b"{\"a\": \"\xff\"}"), "JSON header", "not valid UTF-8", True),
    (frame(b" [1]"), "JSON header", "JSON header is an array, not an object", True),
    (frame({"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8"}),
     "JSON header", "missing 'content-length'", True),
    (frame({"content-length": 1}), "JSON header",
     "missing 'byteorder', 'content-type', 'content-encoding'", True),
    (frame(header(-5)), "JSON header", "content-length -5 is negative", True),
    (frame(header(10**9)), "JSON header", "exceeds the limit of 1048576 bytes", True),
    (frame({**header(0), "content-length": "12"}), "JSON header", "'12' is not an integer", True),
    (frame({**header(0), "content-length": 1.5}), "JSON header", "1.5 is not an integer", True),
    (frame({**header(0), "content-length": True}), "JSON header", "True is not an integer", True),
    (frame({**header(0), "content-length": None}), "JSON header", "None is not an integer", True),
    (frame(header(2, enc="latin-1")), "JSON header", "content-encoding 'latin-1' is unknown", True),
    (frame(header(2, enc="binary")), "JSON header", "text/json content must be 'utf-8'", True),
    (frame(header(2, order="middle")), "JSON header", "byteorder 'middle'", True),
    (frame({**header(2), "content-type": 7}), "JSON header", "content-type 7 is not a string", True),
    (frame(header(3), b"{x}"), "content", "JSON content is not valid JSON", True),
    (frame(header(6), b"[1, 2]"), "content", "JSON content is an array, not an object", True),
    (frame(header(3), b'"x"'), "content", "JSON content is a string, not an object", True),
    (frame(header(2), b"\xff\xfe"), "content", "JSON content is not valid UTF-8", True),
    (frame(header(4000), b"[" * 4000), "content", "JSON content", True),
]


@pytest.mark.parametrize("data,stage,reason,answerable", BAD, ids=[r for _, _, r, _ in BAD])
def test_precise_errors_name_the_stage(data: bytes, stage: str, reason: str, answerable: bool) -> None:
    decoder = Decoder()
    with pytest.raises(ProtocolError) as info:
        decoder.feed(data)
    assert info.value.stage == stage
    assert reason in str(info.value)
    assert info.value.answerable is answerable
    assert decoder.stage is Stage.FAILED
    with pytest.raises(ProtocolError):  # a broken stream stays broken
        decoder.feed(MORPHEUS)


def test_deeply_nested_header_is_a_protocol_error_not_a_recursion_error() -> None:
    nested = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(ProtocolError, match="JSON header"):
        Decoder().feed(frame(nested))


def test_content_length_cap_is_configurable() -> None:
    assert isinstance(Decoder(max_content_length=41).feed(MORPHEUS)[-1], MessageComplete)
    with pytest.raises(ProtocolError, match="exceeds the limit of 40 bytes"):
        Decoder(max_content_length=40).feed(MORPHEUS)


def test_zero_length_content_is_a_complete_message() -> None:
    events = Decoder().feed(frame(header(0, SERVER_BINARY_TYPE, "binary")))
    assert isinstance(events[-1], MessageComplete) and events[-1].message.content == b""
