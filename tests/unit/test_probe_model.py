"""The probe's records: fast construction, immutability, keys, JSON."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest
from support.probe_fixtures import encode_attributes

from netlens.probe import (
    ProcessRef,
    Snapshot,
    SocketInfo,
    SocketMemory,
    SocketTimer,
)
from netlens.probe.fastbuild import fast_builder
from netlens.probe.model import build_socket


def sample(**changes: object) -> SocketInfo:
    memory = SocketMemory(1, 2, 3, 4, 5, 6, 7, 8, 9)
    base = SocketInfo(
        "ESTABLISHED", "IPv4", "127.0.0.1", 65432, "127.0.0.1", 50000, 1, 2, inode=9, uid=0, cookie=3,
        timer=SocketTimer("on", 200, 1), owners=(ProcessRef(7, "srv", 4),),
        attributes=encode_attributes(memory=memory, shutdown=0),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_fast_builder_makes_ordinary_frozen_instances() -> None:
    normal = sample()
    fast = build_socket(*(getattr(normal, f.name) for f in dataclasses.fields(SocketInfo)))
    assert type(fast) is SocketInfo
    assert fast == normal and hash(fast) == hash(normal)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.state = "LISTEN"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(fast)) == fast
    assert repr(fast) == repr(normal)


def test_fast_builder_refuses_classes_it_cannot_build() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class OwnNew:
        a: int

        def __new__(cls, *args: object) -> OwnNew:
            return super().__new__(cls)

    with pytest.raises(TypeError):
        fast_builder(NoSlots)
    with pytest.raises(TypeError):
        fast_builder(OwnNew)


def test_fast_builder_sets_every_slot_including_the_memo() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Pair:
        a: int
        b: str = "x"
        memo: object = dataclasses.field(default=None, init=False, compare=False)

    build = fast_builder(Pair)
    pair = build(1, "y", None)
    assert type(pair) is Pair and pair == Pair(1, "y") and pair.memo is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.a = 2  # type: ignore[misc]


def test_key_is_the_four_tuple_with_family() -> None:
    sock = sample()
    assert sock.key == ("IPv4", "127.0.0.1", 65432, "127.0.0.1", 50000)
    assert sample(state="TIME_WAIT", owners=(), inode=0).key == sock.key


def test_owner_shortcuts() -> None:
    assert (sample().pid, sample().process, sample().fd) == (7, "srv", 4)
    lonely = sample(owners=())
    assert (lonely.pid, lonely.process, lonely.fd) == (None, None, None)


def test_decoded_memo_is_not_part_of_equality() -> None:
    a, b = sample(), sample()
    assert a.memory is not None  # decodes and memoises on a only
    assert a == b and hash(a) == hash(b)


def test_to_dict_is_json_ready() -> None:
    snap = Snapshot(ts=1.5, sockets=(sample(),), source="sock_diag", port=65432)
    data = json.loads(json.dumps(snap.to_dict()))
    (sock,) = data["sockets"]
    assert data["source"] == "sock_diag" and data["note"] is None
    for field in (
        "state",
        "local_addr",
        "local_port",
        "remote_addr",
        "remote_port",
        "recv_q",
        "send_q",
        "pid",
        "process",
        "fd",
    ):
        assert field in sock
    assert sock["tcp_info"] is None  # the kernel gave none here
    assert sock["memory"]["drops"] == 9 and sock["timer"] == {"name": "on", "expires_ms": 200, "retrans": 1}
    assert sock["owners"] == [{"pid": 7, "process": "srv", "fd": 4}]
