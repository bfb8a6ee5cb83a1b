"""``netlens read`` on inputs bigger than the ring, from pipes, and saving pcapng with comments."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
from support import witness_edits

import netlens.capture
from netlens.cli import main

WITNESS = Path(__file__).resolve().parents[1] / "data" / "witness"


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 packets: copies of a real lossy capture, each on new client ports (about 80 streams)."""
    link, records = witness_edits.read_records(WITNESS / "lossy_server.pcap")
    return witness_edits.write_pcap(tmp_path_factory.mktemp("big") / "tiled.pcap", link,
                                    witness_edits.tiled(records, 6000))


def tshark_streams(path: Path) -> int:
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return len({line for line in out.split() if line})


def test_bigger_than_the_ring_lists_every_stream_and_says_what_it_dropped(
        tiled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(netlens.capture, "PacketRing", functools.partial(netlens.capture.PacketRing,
                                                                          max_packets=3000))
    assert main(["read", str(tiled), "--streams"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == tshark_streams(tiled) > 40
    assert [int(line.split(":")[0].split()[1]) for line in lines] == list(range(1, len(lines) + 1))
    assert "packets 1-" in err and "were read, analysed and listed but are no longer held" in err
    assert main(["read", str(tiled), "--follow", "1"]) == 1
    _, err = capsys.readouterr()
    assert "there is no stream 1 in" in err and "it was among the packets no longer held" in err


def test_a_pipe_reads_like_the_file(tiled: Path) -> None:
    command = [sys.executable, "-m", "netlens", "read", "--json"]
    from_file = subprocess.run([*command, str(tiled)], capture_output=True, timeout=120, check=True)
    # A real pipe (cat writes in pieces; netlens sees a FIFO on stdin, not a file).
    from_pipe = subprocess.run(f"cat {tiled} | {' '.join(command)} -", shell=True, capture_output=True,
                               timeout=120, check=True)
    assert from_pipe.stdout == from_file.stdout
    assert from_file.stdout.count(b"\n") == 6000


def test_write_pcapng_keeps_the_analysis_as_comments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "annotated.pcapng"
    assert main(["read", str(WITNESS / "lossy_server.pcap"), "--json", "--write", str(out)]) == 0
    rows, err = capsys.readouterr()
    assert f"to {out}." in err
    import json

    marked = {row["no"] for row in map(json.loads, rows.splitlines()) if row["analysis"]}
    commented = subprocess.run(["tshark", "-n", "-r", str(out), "-Y", "frame.comment", "-T", "fields",
                                "-e", "frame.number"], capture_output=True, text=True, timeout=60, check=True)
    assert {int(no) for no in commented.stdout.split()} == marked and marked
    plain = tmp_path / "plain.pcap"
    assert main(["read", str(WITNESS / "lossy_server.pcap"), "--streams", "-w", str(plain)]) == 0
    assert plain.read_bytes()[:4] == b"\x4d\x3c\xb2\xa1"
