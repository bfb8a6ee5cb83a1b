"""`netlens read` on files written by the capture package: every view, and errors as one sentence."""

from __future__ import annotations

import json

import pytest
from support.synth import Conversation

from netlens.capture import write_pcap
from netlens.cli import main
from netlens.proto import encode, encode_request, request_message, respond

REQUEST = encode_request("search", "morpheus", "little")


@pytest.fixture
def capture_file(tmp_path):  # type: ignore[no-untyped-def]
    conv = Conversation()
    conv.handshake()
    conv.client(REQUEST[:80])
    conv.client(REQUEST[80:])
    conv.server(encode(respond(request_message("search", "morpheus"), "little")))
    conv.client(b"\x1b[2J[bold red]evil[/]")
    conv.close(first=1)
    path = tmp_path / "conv.pcap"
    write_pcap(path, conv.ring)
    return path


def test_text_lines(capture_file, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["read", str(capture_file)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 10
    assert "127.0.0.1:50000 → 127.0.0.1:65432 S   seq=0 ack=0 win=65495 len=0" in lines[0]
    assert lines[4].endswith("search request 'morpheus' [reassembled from 2 segments #4–#5]")
    assert "'\\x1b[2J[bold red]evil[/]'" in lines[6]
    assert "\x1b" not in out
    assert err == f"netlens: 10 packets read from {capture_file}.\n"


def test_json_and_stream_filter(capture_file, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["read", str(capture_file), "--json", "--stream", "1"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["no"] for r in records] == list(range(1, 11))
    assert records[5]["info"].startswith("response result 'Follow the white rabbit.")
    assert main(["read", str(capture_file), "--json", "--stream", "2"]) == 0
    assert capsys.readouterr().out == ""


def test_streams_follow_ladder_dissect(capture_file, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["read", str(capture_file), "--streams"]) == 0
    assert capsys.readouterr().out.startswith("stream 1: client 127.0.0.1:50000 → server 127.0.0.1:65432; 10 packets")
    assert main(["read", str(capture_file), "--follow", "1"]) == 0
    follow = capsys.readouterr().out
    assert "── client 127.0.0.1:50000 → server 127.0.0.1:65432: 146 bytes (#4, #5)" in follow
    assert '{"action": "search", "value": "morpheus"}' in follow and "\x1b" not in follow
    assert main(["read", str(capture_file), "--ladder", "1"]) == 0
    ladder = capsys.readouterr().out
    assert "SYN seq=0" in ladder and "FIN,ACK" in ladder
    assert main(["read", str(capture_file), "--dissect", "5"]) == 0
    dissection = capsys.readouterr().out
    assert "Reassembled search message (2 segments: #4, #5)" in dissection
    assert "0000  00 00 00 00 00 00 00 00  00 00 00 00 08 00 45 00" in dissection


def test_errors_are_sentences(capture_file, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["read", str(capture_file), "--follow", "9"]) == 1
    assert capsys.readouterr().err.startswith("netlens: there is no stream 9 in")
    assert main(["read", str(capture_file), "--dissect", "99"]) == 1
    assert "there is no packet 99" in capsys.readouterr().err
    junk = tmp_path / "junk.txt"
    junk.write_text("hello world, not a capture")
    assert main(["read", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netlens: ") and "is not a pcap file" in err and len(err.splitlines()) == 1
    assert main(["read", str(tmp_path / "missing.pcap")]) == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_truncated_file_keeps_what_was_read(capture_file, capsys) -> None:  # type: ignore[no-untyped-def]
    data = capture_file.read_bytes()
    capture_file.write_bytes(data[:-20])
    assert main(["read", str(capture_file)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 9
    assert "ends in the middle of packet 10" in err and "kept the 9 complete packets" in err
