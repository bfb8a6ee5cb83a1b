"""``netlens read --jobs N`` prints exactly what the serial reader prints; ``--fields`` agrees with tshark's fields.

The corpus: the witness captures and their edited copies (VLAN, MPLS, pcapng
with two link types, duplicated, reordered, cut...), plus two tiled captures
with many streams — one with streams one after another, one with 16 streams at
a time (so each worker's frames interleave with the others' frame by frame).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import wireshark, witness_corpus, witness_edits

from netlens.capture.frames import FLAG_LETTERS
from netlens.commands.read_parallel import count_records, jobs_for

WITNESS = Path(__file__).resolve().parents[1] / "data" / "witness"
#: tshark's fields, in the order of the netlens fields they are compared with (flags and stream mapped).
TSHARK_FIELDS = ("frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.flags",
                 "tcp.seq", "tcp.ack", "tcp.window_size", "tcp.len", "tcp.stream")
NETLENS_FIELDS = "no,time,src,sport,dst,dport,flags,seq,ack,win,len,stream"


def interleaved(records: list[witness_edits.Record], packets: int, together: int) -> list[witness_edits.Record]:
    """Tiled copies of ``records``, ``together`` copies at a time running side by side (0.3 ms apart)."""
    tiled = witness_edits.tiled(records, packets)
    span = witness_edits.ticks(records[-1]) - witness_edits.ticks(records[0]) + 1000
    out = []
    for index, (seconds, micros, frame, orig) in enumerate(tiled):
        copy = index // len(records)
        total = seconds * 1_000_000 + micros - copy * span + (copy // together) * span + (copy % together) * 337
        out.append((total // 1_000_000, total % 1_000_000, frame, orig))
    return sorted(out, key=lambda record: (record[0], record[1]))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("parallel")
    link, records = witness_edits.read_records(WITNESS / "lossy_server.pcap")
    made = [witness_edits.write_pcap(out / "tiled.pcap", link, witness_edits.tiled(records, 5000)),
            witness_edits.write_pcap(out / "interleaved.pcap", link, interleaved(records, 5000, 16))]
    return made + witness_corpus.derive(WITNESS, out / "derived")


def read(path: Path, *options: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "netlens", "read", *options, str(path)], capture_output=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("options", [("--json",), (), ("--fields", "default,rule,info,bytes_in_flight,ack_rtt"),
                                     ("--stream", "7")], ids=["json", "lines", "fields", "stream"])
def test_parallel_and_serial_reads_print_the_same_bytes(corpus: list[Path], options: tuple[str, ...]) -> None:
    compared = 0
    # Every file of the corpus once (JSON holds every field); the other outputs on the two big ones.
    for path in corpus if options == ("--json",) else corpus[:2]:
        serial = read(path, *options, "--jobs", "1")
        parallel = read(path, *options, "--jobs", "3")
        assert parallel.returncode == serial.returncode, path
        assert parallel.stdout == serial.stdout, path
        assert parallel.stderr == serial.stderr, path
        compared += serial.stdout.count(b"\n")
    assert compared >= (100 if options[:1] == ("--stream",) else 10_000)


def test_only_files_the_ring_holds_are_read_in_parallel(corpus: list[Path], tmp_path: Path) -> None:
    tiled = corpus[0]
    assert count_records(str(tiled), 10**9) == 5000
    assert count_records(str(tiled), 100) == 100
    assert jobs_for(str(tiled), 2) == 2
    assert jobs_for(str(tiled), None) == 1  # too small to be worth the workers
    assert jobs_for("-", 4) == 1  # a pipe streams serially
    big = tmp_path / "big.pcap"
    with big.open("wb") as out:  # past the ring's 256 MiB: its packets would be evicted part-way
        out.write(tiled.read_bytes())
        out.truncate(300 << 20)
    assert jobs_for(str(big), 2) == 1


def test_workers_only_on_idle_cpus(corpus: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from netlens.commands import read_parallel

    monkeypatch.setattr(read_parallel, "MIN_PACKETS", 1000)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    for running, jobs in ((1, 2), (2, 1), (5, 1)):  # this process is one of the tasks running
        monkeypatch.setattr(read_parallel, "running_tasks", lambda running=running: running)
        assert jobs_for(str(corpus[0]), None) == jobs
        assert jobs_for(str(corpus[0]), 2) == 2  # asked for: whatever the load
    assert 1 <= read_parallel.running_tasks() <= 4096


def test_fields_agree_with_tsharks_fields(corpus: list[Path]) -> None:
    compared = 0
    for path in corpus[:2] + [WITNESS / name for name in witness_corpus.REAL]:
        theirs = wireshark.fields(path, *TSHARK_FIELDS)
        for row in theirs:
            row[6] = FLAG_LETTERS[int(row[6], 16)] if row[6] else ""
            row[11] = str(int(row[11]) + 1) if row[11] else ""  # tshark counts streams from 0
        result = read(path, "--fields", NETLENS_FIELDS)
        ours = [line.split("\t") for line in result.stdout.decode().splitlines()]
        assert ours == theirs, path
        compared += len(ours)
    assert compared > 10_000


def test_fields_analysis_is_the_full_analysis(corpus: list[Path]) -> None:
    import json

    path = corpus[1]
    ours = read(path, "--fields", "no,analysis,expert,rule").stdout.decode().splitlines()
    rows = [json.loads(line) for line in read(path, "--json", "--jobs", "1").stdout.decode().splitlines()]
    assert [line.split("\t")[1].split(",") if line.split("\t")[1] else [] for line in ours] == \
        [row["analysis"] for row in rows]
    marked = [line.split("\t") for line in ours if line.split("\t")[1]]
    assert len({name for row in marked for name in row[1].split(",")}) >= 5
    assert all(row[2] and row[3] for row in marked)
    assert any(row[2].startswith("TCP Dup ACK (#") for row in marked)


def test_a_wrong_field_name_is_one_sentence(corpus: list[Path]) -> None:
    result = read(corpus[0], "--fields", "no,bogus")
    assert result.returncode != 0 and not result.stdout
    assert b"not bogus" in result.stderr and b"Traceback" not in result.stderr
    listed = read(corpus[0], "--fields", "list").stdout.decode()
    assert "bytes_in_flight" in listed and "expert" in listed


def test_sigterm_stops_the_reader_and_its_workers(corpus: list[Path]) -> None:
    import os
    import signal
    import time

    # stdout is never read past its first line: the parent blocks on a full pipe, mid-file for sure.
    proc = subprocess.Popen([sys.executable, "-m", "netlens", "read", "--json", "--jobs", "2", str(corpus[1])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline()
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as children:
            workers = [int(pid) for pid in children.read().split()]
        assert len(workers) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 130
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
        assert b"Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
