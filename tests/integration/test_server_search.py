"""The search server on real loopback sockets: answers, events, concurrency, and who closes first."""

from __future__ import annotations

import itertools
import socket
import threading

import pytest
from probe_helpers import run_ss
from server_helpers import decode_one, exchange
from waiting import wait_for

from netlens.proto import encode_request
from netlens.server import Server, ServerConfig, clients
from netlens.server.events import (
    Accepted,
    CloseCause,
    Closed,
    MaskChanged,
    Received,
    ResponseQueued,
    Sent,
    StageReached,
)


@pytest.mark.parametrize("value,result", [
    ("morpheus", "Follow the white rabbit. \U0001f430"),
    ("ring", "In the caves beneath the Misty Mountains. \U0001f48d"),
    ("\U0001f436", "\U0001f43e Playing ball! \U0001f3d0"),
    ("trinity", "No match for 'trinity'."),
])
def test_table_values_and_a_miss(search_server: Server, value: str, result: str) -> None:
    reply = clients.search(*search_server.address, value)
    assert reply.response.value == {"result": result}


def test_binary_request(search_server: Server) -> None:
    reply = clients.request(*search_server.address, "binary", "\U0001f600 hello")
    assert reply.response.content_type == "binary/custom-server-binary-type"
    assert reply.response.content == b"First 10 bytes of request: " + "binary\U0001f600 hello".encode()[:10]


def test_byte_at_a_time_client_is_reassembled(search_server: Server) -> None:
    sub = search_server.subscribe(from_start=False)
    reply = clients.search(*search_server.address, "morpheus", chunk_size=1, chunk_delay=0.002)
    assert reply.response.value == {"result": "Follow the white rabbit. \U0001f430"}
    wait_for(lambda: search_server.stats().active == 0)
    events = sub.drain()
    recvs = [e for e in events if isinstance(e, Received)]
    assert sum(e.nbytes for e in recvs) == 146 and len(recvs) > 10
    assert [e.stage for e in events if isinstance(e, StageReached)] == [
        "proto header read", "JSON header read", "request complete"]


def test_one_exchange_publishes_the_whole_state_machine(search_server: Server) -> None:
    sub = search_server.subscribe(from_start=False)
    clients.search(*search_server.address, "ring")
    wait_for(lambda: search_server.stats().active == 0)
    events = sub.drain()
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "Accepted" and kinds[-1] == "Closed"
    masks = [(e.old, e.new) for e in events if isinstance(e, MaskChanged)]
    assert masks == [(0, 1), (1, 2)]  # registered READ, then switched to WRITE only
    queued = next(e for e in events if isinstance(e, ResponseQueued))
    assert sum(e.nbytes for e in events if isinstance(e, Sent)) == queued.nbytes
    closed = events[-1]
    assert isinstance(closed, Closed) and closed.by is CloseCause.SERVER
    assert len({e.conn for e in events}) == 1
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(events))


def test_server_closes_first_so_time_wait_lands_on_the_server(search_server: Server) -> None:
    port = search_server.address[1]
    with socket.create_connection(search_server.address) as sock:
        sock.sendall(encode_request("search", "morpheus"))
        data = b""
        while chunk := sock.recv(4096):  # EOF: the server closed first
            data += chunk
        client_port = sock.getsockname()[1]
        assert decode_one(data).value["result"].startswith("Follow")
        # The client has not closed yet: it sits in CLOSE_WAIT, the server in FIN_WAIT2.
        states = {(s.local_port, s.remote_port): s.state for s in run_ss(port)}
        assert states[(client_port, port)] == "CLOSE_WAIT"
    assert wait_for(lambda: [s for s in run_ss(port) if s.state == "TIME_WAIT"
                             and (s.local_port, s.remote_port) == (port, client_port)])


def test_200_concurrent_clients(search_server: Server) -> None:
    address = search_server.address
    results: list[object] = [None] * 200
    barrier = threading.Barrier(200)

    def one(i: int) -> None:
        value = ["morpheus", "ring", "\U0001f436", f"x{i}"][i % 4]
        sock = socket.create_connection(address, timeout=10)
        barrier.wait(10)  # all 200 connected at once before anyone sends
        with sock:
            sock.sendall(encode_request("search", value))
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        results[i] = decode_one(data).value["result"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    wait_for(lambda: search_server.stats().accepted >= 200, timeout=10)
    for t in threads:
        t.join(15)
    assert results[0] == "Follow the white rabbit. \U0001f430"
    assert results[7] == "No match for 'x7'."
    assert all(results[i] == f"No match for 'x{i}'." for i in range(3, 200, 4))
    assert None not in results
    wait_for(lambda: search_server.stats().active == 0)
    assert search_server.stats().requests == 200


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6 support; netlens must serve ::1")
    with Server(ServerConfig(host="::1", port=0)) as server:
        assert server.address[0] == "::1"
        assert clients.search("::1", server.address[1], "ring").response.value["result"].startswith("In the caves")


def test_extra_bytes_after_the_request_are_reported_not_fatal(search_server: Server) -> None:
    sub = search_server.subscribe(from_start=False)
    data = exchange(search_server.address, encode_request("search", "ring") + b"trailing")
    assert decode_one(data).value["result"].startswith("In the caves")
    wait_for(lambda: search_server.stats().active == 0)
    assert any(isinstance(e, StageReached) and e.stage == "extra bytes" for e in sub.drain())


def test_accepted_event_names_both_ends(search_server: Server) -> None:
    sub = search_server.subscribe(from_start=False)
    reply = clients.search(*search_server.address, "ring")
    wait_for(lambda: search_server.stats().active == 0)
    accepted = next(e for e in sub.drain() if isinstance(e, Accepted))
    assert accepted.peer == reply.local and accepted.local == search_server.address


def test_one_exchange_in_order_with_one_stamp_per_loop_step(search_server: Server) -> None:
    """Accept+register, recv, the session's stages+queue+WRITE switch, send, close: one clock reading each step."""
    sub = search_server.subscribe(from_start=False)
    clients.search(*search_server.address, "morpheus")
    wait_for(lambda: search_server.stats().active == 0)
    events = sub.drain()
    assert [e.kind for e in events] == ["accepted", "mask", "recv", "stage", "stage", "stage", "queued",
                                        "mask", "send", "closed"]
    stamps = [e.ts for e in events]
    assert stamps[0] == stamps[1] and len(set(stamps[3:8])) == 1
    assert stamps == sorted(stamps) and stamps[2] <= stamps[3] <= stamps[8] <= stamps[9]
