"""The lab catalog, the lab model's JSON, and the small parsers labs rely on (no network)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from netlens.errors import UserError
from netlens.labs import counters
from netlens.labs.catalog import COURSE, discover, find
from netlens.labs.evidence import tcp_option_names
from netlens.labs.model import Lab


def test_every_course_lab_is_discovered_in_course_order() -> None:
    labs = discover()
    assert list(labs)[: len(COURSE)] == list(COURSE)


@pytest.mark.parametrize("lab", discover().values(), ids=lambda lab: lab.name)
def test_each_lab_is_complete(lab: Lab) -> None:
    assert lab.title and lab.lesson and lab.steps and lab.checks
    assert lab.control in lab.variants, "the key-step variant must be one of the lab's variants"
    for step in lab.steps:
        assert step.narration and step.watch.row and step.watch.panel
    names = [check.name for check in lab.checks]
    assert len(names) == len(set(names))
    data = lab.to_dict()
    assert {"name", "title", "needs_root"} <= set(data) and data["needs_root"] is (lab.network is not None)


def test_a_teachers_lab_directory_adds_and_replaces(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(
        "from netlens.labs.model import Check, Lab, Observation, Step, Watch\n"
        "LAB = Lab(name='hello', title='Hello', lesson='l', control='x', variants={'x': 'y'},\n"
        "          steps=(Step('s', 'n', Watch('packets', 'r'), lambda ctx: None),),\n"
        "          checks=(Check('c', 'e', lambda ev: Observation(True, 'o')),))\n")
    (tmp_path / "notes.py").write_text("X = 1\n")  # no LAB: ignored
    labs = discover((str(tmp_path),))
    assert "hello" in labs and list(labs)[-1] == "hello"
    assert find("hello", (str(tmp_path),)).title == "Hello"


def test_a_broken_lab_file_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("LAB = (\n")
    with pytest.raises(UserError, match=r"broken\.py cannot be loaded: SyntaxError"):
        discover((str(tmp_path),))


def test_unknown_lab_and_missing_directory_are_sentences(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no lab called 'nope'; known labs: handshake"):
        find("nope")
    with pytest.raises(UserError, match="does not exist"):
        discover((str(tmp_path / "absent"),))


def _syn_frame(options: bytes) -> bytes:
    ether = b"\x00" * 12 + b"\x08\x00"
    ip = bytes([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0]) + b"\x7f\x00\x00\x01" * 2
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", 1, 2, 0, 0, offset << 4, 0x02, 65535, 0, 0) + options
    return ether + ip + tcp


def test_tcp_option_names_walks_the_options() -> None:
    options = b"\x02\x04\x05\xb4" + b"\x04\x02" + b"\x08\x0a" + b"\x00" * 8 + b"\x01" + b"\x03\x03\x07"
    assert tcp_option_names(_syn_frame(options)) == ["MSS", "SACK_PERM", "TS", "WS"]


@pytest.mark.parametrize("options", [b"\x02\x00\x00\x00", b"\x02\x01\x00\x00", b"\x08\xff\x00\x00"])
def test_tcp_option_names_survives_hostile_lengths(options: bytes) -> None:
    assert tcp_option_names(_syn_frame(options)) in ([], ["TS"])
    assert tcp_option_names(b"\x00" * 13) == []


def test_counter_files_parse_like_nstat() -> None:
    text = "TcpExt: SyncookiesSent DelayedACKs\nTcpExt: 3 41\nTcp: RtoAlgorithm RetransSegs\nTcp: 1 7\n"
    assert counters.parse(text) == {"TcpExtSyncookiesSent": 3, "TcpExtDelayedACKs": 41,
                                    "TcpRtoAlgorithm": 1, "TcpRetransSegs": 7}
