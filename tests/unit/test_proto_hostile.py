"""Hostile requests at the codec: lone surrogates, deep nesting, huge values, and the byte-bounded reply cache."""

from __future__ import annotations

import json
import struct

import pytest

from netlens.proto import Decoder, MessageComplete, ProtocolError, ReplyCache, encode_request, reply
from netlens.proto.decoder import json_too_deep
from netlens.proto.message import MAX_JSON_DEPTH

HEADER = {"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8"}


def frame(header: bytes, content: bytes = b"") -> bytes:
    return struct.pack(">H", len(header)) + header + content


def decode(data: bytes) -> MessageComplete:
    (done,) = [e for e in Decoder().feed(data) if isinstance(e, MessageComplete)]
    return done


def test_a_search_for_a_lone_surrogate_is_answered() -> None:
    content = b'{"action": "search", "value": "\\ud800"}'
    request = frame(json.dumps({**HEADER, "content-length": len(content)}).encode(), content)
    message = decode(request).message
    assert message.value == {"action": "search", "value": "\ud800"}
    data, summary = reply(message)
    answer = decode(data).message
    assert answer.value == {"result": "No match for '\ud800'."}
    assert "\\ud800" in summary  # repr escapes it; the event line never holds the raw surrogate
    # Everything but the surrogate is written as the stock senders write it.
    assert b'"No match for \'\\ud800\'."' in data


def test_encoding_a_request_with_surrogates_does_not_raise() -> None:
    data = encode_request("search", "\udc9b\udcff")
    assert decode(data).message.value == {"action": "search", "value": "\udc9b\udcff"}


def test_deep_nesting_is_refused_with_an_answerable_error() -> None:
    nested = b'{"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8", ' \
             b'"content-length": 0, "x": ' + b"[" * 985 + b"]" * 985 + b"}"
    with pytest.raises(ProtocolError) as caught:
        Decoder().feed(frame(nested))
    assert caught.value.answerable and f"deeper than {MAX_JSON_DEPTH} levels" in caught.value.reason
    content = b'{"v": ' + b"[" * 100 + b"]" * 100 + b"}"
    with pytest.raises(ProtocolError, match="JSON content nests"):
        Decoder().feed(frame(json.dumps({**HEADER, "content-length": len(content)}).encode(), content))


def test_nesting_within_the_bound_and_brackets_in_strings_are_fine() -> None:
    assert not json_too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert not json_too_deep(b'{"a": "' + b"[" * 500 + b'\\"[[["}')
    assert not json_too_deep(b"[]" * 500)


def test_json_error_messages_say_at_once() -> None:
    bad = b'{"byteorder": "lit\x01tle"}'
    with pytest.raises(ProtocolError) as caught:
        Decoder().feed(frame(bad))
    assert "at at" not in str(caught.value) and "Invalid control character at byte" in str(caught.value)


def test_summaries_of_huge_values_are_cut() -> None:
    content = json.dumps({"action": "search", "value": "x" * 1_000_000}).encode()
    message = decode(frame(json.dumps({**HEADER, "content-length": len(content)}).encode(), content)).message
    assert len(message.describe()) < 300
    _, summary = reply(message)
    assert len(summary) < 300


def test_the_reply_cache_is_bounded_by_bytes_not_entries() -> None:
    cache = ReplyCache(budget=64 * 1024)
    for i in range(2000):
        value = f"{i:05d}" + "v" * 100
        content = json.dumps({"action": "search", "value": value}).encode()
        request = decode(frame(json.dumps({**HEADER, "content-length": len(content)}).encode(), content)).message
        reply(request, cache=cache)
        assert cache.bytes <= cache.budget
    assert 0 < len(cache) < 2000
    # A megabyte reply is not kept at all (it would push everything else out).
    big = json.dumps({"action": "search", "value": "y" * 1_000_000}).encode()
    request = decode(frame(json.dumps({**HEADER, "content-length": len(big)}).encode(), big)).message
    held = len(cache)
    reply(request, cache=cache)
    assert len(cache) == held and cache.bytes <= cache.budget
    # Repeats are answered from the cache, and the same bytes come back.
    first = reply(request_for("morpheus"), cache=cache)
    assert reply(request_for("morpheus"), cache=cache) == first and cache.hits >= 1


def request_for(value: str):  # type: ignore[no-untyped-def]
    return decode(encode_request("search", value)).message


@pytest.mark.parametrize("header", [b'{"byteorder":', b'{"a":[', b'{"a":'])
def test_a_header_cut_after_a_key_is_a_protocol_error(header: bytes) -> None:
    # json's C scanner signals these with StopIteration, which must not escape the decoder.
    with pytest.raises(ProtocolError, match="Expecting value"):
        Decoder().feed(frame(header))
