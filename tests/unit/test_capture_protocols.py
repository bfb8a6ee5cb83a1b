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
