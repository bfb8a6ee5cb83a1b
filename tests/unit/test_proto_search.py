"""The search responder: the reference table, strings exact, and the answers the reference never gives."""

from __future__ import annotations

import pytest

from netlens.proto import (
    SERVER_BINARY_TYPE,
    Decoder,
    MessageComplete,
    ReplyCache,
    encode,
    encode_request,
    json_message,
    make_message,
    reply,
    respond,
)
from netlens.proto.search import BINARY_PREFIX


def request_of(data: bytes):
    (done,) = [e for e in Decoder().feed(data) if isinstance(e, MessageComplete)]
    return done.message


@pytest.mark.parametrize("value,result", [
    ("morpheus", "Follow the white rabbit. \U0001f430"),
    ("ring", "In the caves beneath the Misty Mountains. \U0001f48d"),
    ("\U0001f436", "\U0001f43e Playing ball! \U0001f3d0"),
    ("neo", "No match for 'neo'."),
    ("", "No match for ''."),
])
def test_search_results_are_the_reference_strings(value: str, result: str) -> None:
    response = respond(request_of(encode_request("search", value)))
    assert response.value == {"result": result}
    assert response.content_type == "text/json" and response.content_encoding == "utf-8"
    assert response.content == (f'{{"result": "{result}"}}').encode()


def test_other_json_action_is_an_invalid_action() -> None:
    request = json_message({"action": "delete", "value": "x"})
    assert respond(request).value == {"result": "Error: invalid action 'delete'."}


def test_empty_json_request_is_answered() -> None:
    assert respond(json_message({})).value == {"result": "Error: invalid action 'None'."}


@pytest.mark.parametrize("content", [b"binary\xf0\x9f\x98\x83 and more", b"", b"12345"])
def test_binary_request_gets_its_first_ten_bytes_back(content: bytes) -> None:
    response = respond(make_message(content, "binary/custom-client-binary-type", "binary"))
    assert response.content_type == SERVER_BINARY_TYPE and response.content_encoding == "binary"
    assert response.content == BINARY_PREFIX + content[:10]
    assert response.value is None


@pytest.mark.parametrize("message", [
    json_message({"action": "search", "value": "morpheus"}),
    json_message({"action": "search", "value": True}),
    json_message({"action": "search", "value": 1}),
    json_message({"action": "search", "value": [1, 2]}),
    json_message({"action": ["x"]}),
    json_message({"action": None}),
    make_message(b"abcdefghijklmnop", "application/x", "binary"),
])
def test_memoised_reply_equals_respond_then_encode(message) -> None:
    cache = ReplyCache()
    for _ in range(2):  # the second call is served from the cache
        data, summary = reply(message, cache=cache)
        expected = respond(message)
        assert data == encode(expected)
        assert summary == expected.describe()


def test_memo_keeps_true_and_one_apart() -> None:
    # True == 1 in Python, but the answers differ.
    cache = ReplyCache()
    assert reply(json_message({"action": "search", "value": True}), cache=cache)[1] == \
        "result \"No match for 'True'.\""
    assert reply(json_message({"action": "search", "value": 1}), cache=cache)[1] == "result \"No match for '1'.\""
