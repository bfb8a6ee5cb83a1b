"""Per-connection protocol logic, without sockets."""

from __future__ import annotations

import struct

from netlens.proto import Decoder, MessageComplete, encode_request
from netlens.server.events import CloseCause
from netlens.server.sessions import EchoSession, SearchSession

REQUEST = encode_request("search", "ring")


def answer_of(reply: bytes):
    return next(e for e in Decoder().feed(reply) if isinstance(e, MessageComplete)).message


def test_search_session_walks_the_reference_state_machine_byte_by_byte() -> None:
    session = SearchSession(1 << 20)
    stages = []
    seen = [session.stage]
    outcome = None
    for i in range(len(REQUEST)):
        outcome = session.on_data(REQUEST[i:i + 1])
        stages += [s for s, _ in outcome.stages]
        if session.stage != seen[-1]:
            seen.append(session.stage)
        if i < len(REQUEST) - 1:
            assert outcome.reply is None and not outcome.stop_reading
    assert stages == ["proto header read", "JSON header read", "request complete"]
    assert seen == ["reading proto header", "reading JSON header", "reading content", "writing response"]
    assert outcome is not None and outcome.stop_reading and outcome.close_after_reply
    assert outcome.cause is CloseCause.SERVER
    assert answer_of(outcome.reply).value == {"result": "In the caves beneath the Misty Mountains. \U0001f48d"}
    assert session.request_summary == "search 'ring'"


def test_readable_but_wrong_request_gets_an_error_response() -> None:
    header = b'{"byteorder": "little"}'
    outcome = SearchSession(1 << 20).on_data(struct.pack(">H", len(header)) + header)
    assert outcome.error and "missing 'content-type'" in outcome.error
    assert answer_of(outcome.reply).value == {
        "error": "JSON header is missing 'content-type', 'content-encoding', 'content-length'"}
    assert outcome.close_after_reply and not outcome.close_now and outcome.cause is CloseCause.ERROR


def test_unreadable_bytes_close_without_an_answer() -> None:
    outcome = SearchSession(1 << 20).on_data(b"GET / HTTP/1.0\r\n\r\n")
    assert outcome.close_now and outcome.reply is None
    assert outcome.reason.startswith("not the search protocol")


def test_eof_mid_request_says_where() -> None:
    session = SearchSession(1 << 20)
    session.on_data(REQUEST[:50])
    outcome = session.on_eof()
    assert outcome.close_now and outcome.cause is CloseCause.PEER
    assert outcome.reason == "peer closed mid-request while reading JSON header"
    assert SearchSession(1).on_eof().reason == "peer closed without sending a request"


def test_echo_session_echoes_and_flushes_before_closing() -> None:
    session = EchoSession()
    assert session.on_data(b"abc").reply == b"abc"
    outcome = session.on_eof()
    assert outcome.close_after_reply and outcome.stop_reading and outcome.cause is CloseCause.PEER
