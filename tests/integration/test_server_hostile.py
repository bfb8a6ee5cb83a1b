"""A hostile corpus (PROTOCOL.md §3): every bad input is answered or closed, and the server stays well."""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import time

import pytest
from server_helpers import decode_one, exchange
from waiting import wait_for

from netlens.proto import encode_request
from netlens.server import Server, ServerConfig, clients
from netlens.server.events import CloseCause, Closed, ErrorEvent

IDLE = 0.6


def frame(header: object, content: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack(">H", len(raw)) + raw + content


def hdr(length: object, ctype: str = "text/json", enc: str = "utf-8") -> dict:
    return {"byteorder": "little", "content-type": ctype, "content-encoding": enc, "content-length": length}


rng = random.Random(1234)
CORPUS = {
    # name: (bytes, expected) — expected is ("error", fragment), ("result", text), or ("closed", reason fragment)
    "zero header length": (b"\x00\x00{}", ("closed", "JSON header length is 0")),
    "header length over the cap": (b"\xff\xff" + b"{" * 100, ("closed", "exceeds the limit")),
    "bad JSON header": (frame(b"{'single': 'quotes'}"), ("error", "JSON header is not valid JSON")),
    "header not UTF-8": (frame(b'{"k": "\xc3\x28"}'), ("error", "not valid UTF-8")),
    "header is an array": (frame(b"[1, 2, 3]"), ("closed", "starts with byte 0x5b")),
    "header is an array after a space": (frame(b" [1, 2, 3]"), ("error", "JSON header is an array")),
    "missing keys": (frame({"byteorder": "little", "content-length": 3}),
                     ("error", "missing 'content-type', 'content-encoding'")),
    "huge content-length": (frame(hdr(10 ** 12)), ("error", "exceeds the limit of 1048576 bytes")),
    "negative content-length": (frame(hdr(-1)) + b"xyz", ("error", "content-length -1 is negative")),
    "string content-length": (frame(hdr("41")), ("error", "content-length '41' is not an integer")),
    "float content-length": (frame(hdr(4.0)), ("error", "4.0 is not an integer")),
    "unknown encoding": (frame(hdr(2, enc="rot13"), b"{}"), ("error", "content-encoding 'rot13' is unknown")),
    "JSON content not an object": (frame(hdr(3), b"[1]"), ("error", "JSON content is an array")),
    "JSON content invalid": (frame(hdr(5), b"{nope"), ("error", "JSON content is not valid JSON")),
    "JSON content nested too deeply": (frame(hdr(20000), b"[" * 20000), ("error", "JSON content")),
    "empty JSON request": (frame(hdr(2), b"{}"), ("result", "Error: invalid action 'None'.")),
    "empty binary request": (frame(hdr(0, "binary/custom-client-binary-type", "binary")),
                             ("binary", b"First 10 bytes of request: ")),
    "random bytes": (bytes(rng.randrange(256) for _ in range(300)), ("closed", "")),
    "HTTP request": (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", ("closed", "not the search protocol")),
    "TLS client hello": (bytes.fromhex("160301020001") + b"\x00" * 40, ("closed", "")),
}


@pytest.fixture
def server():
    with Server(ServerConfig(mode="search", port=0, idle_timeout=IDLE)) as srv:
        yield srv


def check_still_answers(server: Server) -> None:
    assert clients.search(*server.address, "morpheus").response.value == {
        "result": "Follow the white rabbit. \U0001f430"}


def test_hostile_corpus(server: Server) -> None:
    sub = server.subscribe(from_start=False)
    for name, (data, (kind, expected)) in CORPUS.items():
        answer = exchange(server.address, data, timeout=IDLE * 4)
        if kind == "error":
            message = decode_one(answer)
            assert message.content_type == "text/json", name
            assert expected in message.value["error"], (name, message.value)
        elif kind == "result":
            assert decode_one(answer).value == {"result": expected}, name
        elif kind == "binary":
            assert decode_one(answer).content == expected, name
        else:
            assert answer == b"", name
        check_still_answers(server)
        wait_for(lambda: server.stats().active == 0, timeout=IDLE * 4)
        events = sub.drain()
        closes = [e for e in events if isinstance(e, Closed)]
        assert closes, name
        if kind == "closed":
            assert closes[0].by in (CloseCause.ERROR, CloseCause.TIMEOUT), name
            assert expected in closes[0].reason or closes[0].by is CloseCause.TIMEOUT, (name, closes[0])
        if kind in ("error", "closed") and closes[0].by is CloseCause.ERROR:
            assert any(isinstance(e, ErrorEvent) and e.op == "protocol" for e in events), name


def test_stalled_half_request_is_closed_by_the_idle_timeout(server: Server) -> None:
    sub = server.subscribe(from_start=False)
    started = time.monotonic()
    with socket.create_connection(server.address) as sock:
        sock.sendall(encode_request("search", "morpheus")[:60])
        sock.settimeout(IDLE * 6)
        assert sock.recv(10) == b""  # the server gave up on us
    waited = time.monotonic() - started
    assert IDLE <= waited < IDLE + 1.5
    # The FIN may reach us a moment before the loop publishes its Closed event.
    events: list[object] = []
    closed = wait_for(lambda: events.extend(sub.drain()) or next((e for e in events if isinstance(e, Closed)), None))
    assert closed.by is CloseCause.TIMEOUT and "reading JSON header" in closed.reason
    check_still_answers(server)


def test_reset_and_fin_mid_request(server: Server) -> None:
    sub = server.subscribe(from_start=False)
    with socket.create_connection(server.address) as sock:
        sock.sendall(encode_request("search", "ring")[:30])
        time.sleep(0.05)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with socket.create_connection(server.address) as sock:
        sock.sendall(encode_request("search", "ring")[:120])
        time.sleep(0.05)
    wait_for(lambda: server.stats().active == 0)
    closes = sorted((e.by, e.reason) for e in sub.drain() if isinstance(e, Closed))
    assert (CloseCause.PEER, "peer closed mid-request while reading content") in closes
    assert (CloseCause.RESET, "connection reset by peer") in closes
    check_still_answers(server)


def test_after_the_corpus_nothing_is_left_open_and_the_idle_server_sleeps(server: Server) -> None:
    for data, _ in CORPUS.values():
        with socket.create_connection(server.address) as sock:
            sock.sendall(data)
    with socket.create_connection(server.address) as sock:
        sock.sendall(b"\x00")  # a stalled one, too
        time.sleep(0.01)
    wait_for(lambda: server.stats().active == 0, timeout=IDLE * 5)
    assert server.snapshot() == []
    check_still_answers(server)
    wait_for(lambda: server.stats().active == 0)
    before = os.times()
    time.sleep(1.0)
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    assert cpu < 0.05, f"idle server used {cpu:.3f} s of CPU in 1 s"


def test_a_bad_connection_does_not_disturb_one_in_progress(server: Server) -> None:
    with socket.create_connection(server.address) as slow:
        request = encode_request("search", "\U0001f436")
        slow.sendall(request[:50])
        for data, _ in list(CORPUS.values())[:6]:
            exchange(server.address, data)
        slow.sendall(request[50:])
        data = b""
        slow.settimeout(3)
        while chunk := slow.recv(4096):
            data += chunk
    assert decode_one(data).value == {"result": "\U0001f43e Playing ball! \U0001f3d0"}
