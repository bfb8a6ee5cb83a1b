"""Hostile input: arbitrary bytes never raise anything but ProtocolError."""

from __future__ import annotations

import itertools
import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from netlens.proto import Decoder, MessageComplete, ProtocolError, encode, encode_request, respond

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def feed_in_chunks(data: bytes, cuts: list[int]) -> list:
    decoder = Decoder(max_content_length=4096)
    events = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    try:
        for a, b in itertools.pairwise(points):
            events += decoder.feed(data[a:b])
    except ProtocolError:
        pass
    return events


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0), max_size=8))
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes, cuts: list[int]) -> None:
    feed_in_chunks(data, cuts)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["byteorder", "content-type", "content-encoding",
                                        "content-length", "x"]), json_values, max_size=5),
       st.binary(max_size=64), st.lists(st.integers(min_value=0), max_size=4))
def test_arbitrary_json_headers_raise_only_protocol_error(header: dict, content: bytes, cuts: list[int]) -> None:
    raw = json.dumps(header).encode()
    feed_in_chunks(struct.pack(">H", len(raw)) + raw + content, cuts)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=50), st.lists(st.integers(min_value=0), max_size=6))
def test_any_search_value_round_trips_in_any_split(value: str, cuts: list[int]) -> None:
    data = encode_request("search", value)
    events = feed_in_chunks(data, cuts)
    (done,) = [e for e in events if isinstance(e, MessageComplete)]
    assert done.message.value == {"action": "search", "value": value}
    response = respond(done.message)
    assert Decoder().feed(encode(response))[-1].message.value == response.value


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_content_is_answered_or_rejected_cleanly(value: object) -> None:
    content = json.dumps(value).encode()
    header = json.dumps({"byteorder": "big", "content-type": "text/json",
                         "content-encoding": "utf-8", "content-length": len(content)}).encode()
    try:
        events = Decoder().feed(struct.pack(">H", len(header)) + header + content)
    except ProtocolError as exc:
        assert exc.answerable and not isinstance(value, dict)
        return
    message = events[-1].message
    assert isinstance(value, dict) and message.value == value
    assert respond(message).value is not None
