"""The protocol seam: a protocol registered from a test module shows its summaries in `netlens read`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.synth import Conversation

from netlens.capture import PacketStore, write_pcap
from netlens.capture.protocols import BUILTIN, load, registered
from netlens.errors import UserError
from netlens.proto import encode_request

TOY = Path(__file__).resolve().parents[1] / "support" / "toy_protocol.py"


@pytest.fixture
def toy_pcap(tmp_path: Path) -> Path:
    conv = Conversation(server=("127.0.0.1", 7777))
    conv.handshake()
    conv.client(b"hel")
    conv.client(b"lo\nwor")
    conv.client(b"ld\n")
    conv.server(b"ok\n")
    conv.close()
    path = tmp_path / "toy.pcap"
    write_pcap(path, conv.ring)
    return path


@pytest.mark.parametrize("how", ["env", "option"])
def test_a_toy_protocol_from_a_test_module_shows_in_netlens_read(toy_pcap: Path, how: str) -> None:
    env = dict(os.environ, NETLENS_PROTOCOLS=str(TOY) if how == "env" else "")
    args = ["read", str(toy_pcap)] + (["--protocol", str(TOY)] if how == "option" else [])
    result = subprocess.run([sys.executable, "-m", "netlens", *args], capture_output=True, text=True, timeout=60,
                            env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[4].endswith("toy line 'hello' [reassembled from 2 segments #4–#5]"), lines[4]
    assert lines[3].endswith("[segment of a toy message, reassembled in #5]"), lines[3]
    assert lines[5].endswith("toy line 'world' [reassembled from 2 segments #5–#6]"), lines[5]
    assert lines[6].endswith("toy line 'ok'"), lines[6]


def test_a_missing_protocol_module_is_one_sentence(netlens_cli, toy_pcap: Path) -> None:
    result = netlens_cli("read", str(toy_pcap), "--protocol", "/nonexistent/proto.py")
    assert result.returncode == 2
    assert result.stderr.strip() == "netlens: there is no protocol module at /nonexistent/proto.py."


def test_builtin_protocols_are_search_then_echo() -> None:
    assert [p.name for p in registered()][:2] == ["search", "echo"] and len(BUILTIN) == 2
    with pytest.raises(UserError, match="has no PROTOCOL"):
        load("netlens.capture.frames")


def test_echo_says_which_bytes_came_back_and_when() -> None:
    conv = Conversation(step_ns=250_000)
    conv.handshake()
    first = conv.client(b"hello ")
    second = conv.client(b"world")
    back = conv.server(b"hello world")
    store = PacketStore(conv.ring)
    store.update()
    assert store.summary(back).info == f"echo of 11 bytes from #{first}–#{second}, 0.250 ms later"
    assert store.summary(first).info == "'hello '"


def test_echo_stops_at_the_first_byte_that_is_not_an_echo() -> None:
    conv = Conversation()
    conv.handshake()
    conv.client(encode_request("search", "ring", "little"))
    reply = conv.server(b"something else entirely")
    store = PacketStore(conv.ring)
    store.update()
    assert store.summary(reply).info == "'something else entirely'"
    assert store.summary(4).info == "search request 'ring'"


class _OneWay:
    """A session that reads only the server's bytes once the client's first segment came (``wants``)."""

    def __init__(self) -> None:
        self.alive = True
        self.recognised = False
        self.fed: list[tuple[int, bytes]] = []

    def feed(self, direction: int, seq: int, data: bytes, no: int, ts_ns: int) -> list[object]:
        self.fed.append((direction, data))
        return []

    def wants(self, direction: int) -> bool:
        return direction == 1 or not self.fed

    def in_message(self, direction: int) -> bool:
        return False

    def abandon(self, direction: int) -> list[int]:
        return []

    def describe(self, direction: int, seq: int, length: int, ts_ns: int) -> str | None:
        return None

    def close(self, direction: int) -> None:
        pass


class _OneWayProtocol:
    name = "one-way"

    def __init__(self) -> None:
        self.sessions: list[_OneWay] = []

    def claims(self, client_port: int, server_port: int) -> bool:
        return True

    def session(self) -> _OneWay:
        self.sessions.append(_OneWay())
        return self.sessions[-1]

    def scapy_layer(self) -> None:
        return None


def test_a_direction_no_session_wants_is_not_reassembled_for_it() -> None:
    conv = Conversation()
    conv.handshake()
    for i in range(3):
        conv.client(b"up%d" % i)
        conv.server(b"down%d" % i)
    protocol = _OneWayProtocol()
    store = PacketStore(conv.ring, protocols=[protocol])  # type: ignore[list-item]
    store.update()
    (session,) = protocol.sessions
    # After its first client segment the session said it wants no more of that direction.
    assert session.fed == [(0, b"up0"), (1, b"down0"), (1, b"down1"), (1, b"down2")]
    assert store.stream(1).apps is not None and store.stream(1).apps.listening == [False, True]


def test_ring_columns_are_what_read_returns() -> None:
    conv = Conversation()
    conv.handshake()
    for i in range(50):
        conv.client(b"x" * i)
    ring = conv.ring
    numbers, stamps, frames = ring.columns(3, 40, limit=20)
    assert list(zip(numbers, stamps, frames, strict=True)) == ring.read(3, 40, limit=20)
    assert list(numbers) == list(range(3, 23)) and frames[0] == ring.frame(3) and stamps[-1] == ring.ts_ns(22)
