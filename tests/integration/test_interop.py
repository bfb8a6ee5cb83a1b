"""Interop: netlens's clients against an independent PROTOCOL.md server, and an
independent tutorial-style client against netlens's server. Both peers here are
written from the spec alone, in a different style (blocking threads; a
selectors client registered READ|WRITE), so a shared misreading would show."""

from __future__ import annotations

import io
import json
import selectors
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Iterator

import pytest

from netlens.server import Server, clients
from netlens.server.load import LoadRunner

SPEC_TABLE = {
    "morpheus": "Follow the white rabbit. \U0001f430",
    "ring": "In the caves beneath the Misty Mountains. \U0001f48d",
    "\U0001f436": "\U0001f43e Playing ball! \U0001f3d0",
}


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def spec_message(content: bytes, ctype: str, enc: str) -> bytes:
    header = json.dumps({"byteorder": sys.byteorder, "content-type": ctype,
                         "content-encoding": enc, "content-length": len(content)},
                        ensure_ascii=False).encode("utf-8")
    return struct.pack(">H", len(header)) + header + content


class SpecHandler(socketserver.BaseRequestHandler):
    """One request, one response, then the server closes first."""

    def handle(self) -> None:
        sock = self.request
        (hlen,) = struct.unpack(">H", recv_exactly(sock, 2))
        header = json.loads(recv_exactly(sock, hlen).decode("utf-8"))
        content = recv_exactly(sock, header["content-length"])
        if header["content-type"] == "text/json":
            request = json.loads(content.decode(header["content-encoding"]))
            action = request.get("action")
            if action == "search":
                result = SPEC_TABLE.get(request.get("value"), f"No match for '{request.get('value')}'.")
            else:
                result = f"Error: invalid action '{action}'."
            reply = spec_message(json.dumps({"result": result}, ensure_ascii=False).encode(), "text/json", "utf-8")
        else:
            reply = spec_message(b"First 10 bytes of request: " + content[:10],
                                 "binary/custom-server-binary-type", "binary")
        sock.sendall(reply)
        self.server.sizes.append((2 + hlen + len(content), len(reply)))  # type: ignore[attr-defined]


@pytest.fixture
def spec_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SpecHandler)
    server.daemon_threads = True
    server.sizes = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_netlens_clients_against_an_independent_server(spec_server) -> None:
    host, port = spec_server.server_address
    for value, result in SPEC_TABLE.items():
        assert clients.search(host, port, value).response.value == {"result": result}
    assert clients.search(host, port, "nobody").response.value == {"result": "No match for 'nobody'."}
    binary = clients.request(host, port, "binary", "payload")
    assert binary.response.content == b"First 10 bytes of request: binarypayl"
    assert clients.search(host, port, "ring", chunk_size=1).response.value["result"] == SPEC_TABLE["ring"]


def test_protocol_md_byte_counts_on_the_wire(spec_server) -> None:
    if sys.byteorder != "little":
        pytest.fail("PROTOCOL.md's example is for a little-endian client")
    host, port = spec_server.server_address
    reply = clients.search(host, port, "morpheus")
    assert (reply.sent_bytes, reply.received_bytes) == (146, 148)
    assert spec_server.sizes[-1] == (146, 148)


def test_netlens_load_against_an_independent_server(spec_server) -> None:
    host, port = spec_server.server_address
    result = LoadRunner(host, port, "search", clients=8, requests=5).run()
    assert (result.completed, result.errors) == (40, 0)


class TutorialStyleClient:
    """A selectors client that registers READ|WRITE, queues its request, then reads the reply."""

    def __init__(self, address: tuple[str, int], request: bytes) -> None:
        self.sel = selectors.DefaultSelector()
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.sock.connect_ex(address)
        self.sel.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        self.outgoing = request
        self.incoming = b""

    def run(self, timeout: float = 3.0) -> dict:
        while True:
            events = self.sel.select(timeout)
            assert events, "timed out"
            for _, mask in events:
                if mask & selectors.EVENT_WRITE and self.outgoing:
                    sent = self.sock.send(self.outgoing)
                    self.outgoing = self.outgoing[sent:]
                    if not self.outgoing:
                        self.sel.modify(self.sock, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    chunk = self.sock.recv(4096)
                    self.incoming += chunk
                    parsed = self.parse()
                    if parsed is not None or not chunk:
                        self.sel.unregister(self.sock)
                        self.sock.close()
                        assert parsed is not None, "closed before a whole response"
                        return parsed

    def parse(self) -> dict | None:
        data = self.incoming
        if len(data) < 2:
            return None
        (hlen,) = struct.unpack(">H", data[:2])
        if len(data) < 2 + hlen:
            return None
        wrapper = io.TextIOWrapper(io.BytesIO(data[2:2 + hlen]), encoding="utf-8", newline="")
        header = json.load(wrapper)
        end = 2 + hlen + header["content-length"]
        if len(data) < end:
            return None
        content = data[2 + hlen:end]
        if header["content-type"] == "text/json":
            return json.loads(content.decode("utf-8"))
        return {"binary": content}


def test_tutorial_style_client_against_netlens(search_server: Server) -> None:
    for value, result in SPEC_TABLE.items():
        content = json.dumps({"action": "search", "value": value}, ensure_ascii=False).encode()
        request = spec_message(content, "text/json", "utf-8")
        assert TutorialStyleClient(search_server.address, request).run() == {"result": result}
    raw = spec_message("binary\U0001f600".encode(), "binary/custom-client-binary-type", "binary")
    assert TutorialStyleClient(search_server.address, raw).run() == {
        "binary": b"First 10 bytes of request: " + "binary\U0001f600".encode()}
