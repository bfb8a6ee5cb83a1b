"""``netlens read --conversations``, ``--graph`` and the analysis fields of ``--json``/``--dissect``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "graphs"
LOSSY = DATA / "bulk-25ms-20mbit-loss3pc.pcap"
CLEAN = DATA / "bulk-25ms-20mbit.pcap"
SVG = "{http://www.w3.org/2000/svg}"


def test_conversations_json_has_one_object_per_stream(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    done = netlens_cli("read", str(CLEAN), "--conversations", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["stream"] == 1 and row["server"].startswith("198.18.") and row["server"].endswith(".2:5001")
    assert row["client"].rsplit(":", 1)[0] == row["server"].rsplit(":", 1)[0][:-1] + "1"
    assert row["packets_c2s"] > 250 and row["bytes_c2s"] > 400_000  # 400,000 bytes of payload plus headers
    assert row["packets_s2c"] > 100 and row["bytes_s2c"] < row["bytes_c2s"] / 10
    assert row["start"] == 0.0 and 0.1 < row["duration"] < 5
    assert row["completeness"] == "SYN, SYN-ACK, ACK, data, FIN" and row["completeness_bits"] == 31
    assert row["throughput_c2s_bps"] == pytest.approx(row["bytes_c2s"] * 8 / row["duration"])


def test_conversations_text_has_a_header_and_the_rtt_line(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    done = netlens_cli("read", str(LOSSY), "--conversations")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["stream", "client", "server"]
    assert ".2:5001" in lines[1] and lines[1].split()[0] == "1"
    rtt = next(line for line in lines if line.startswith("stream 1 → data: RTT"))
    assert "EstimatedRTT" in rtt and "DevRTT" in rtt and "α=1/8, β=1/4" in rtt


def test_json_lines_carry_ack_rtt_flight_and_window(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    done = netlens_cli("read", str(CLEAN), "--json")
    assert done.returncode == 0, done.stderr
    packets = [json.loads(line) for line in done.stdout.splitlines()]
    synack = packets[1]
    assert synack["flags"] == "SA" and synack["acks_frame"] == 1 and 0.045 < synack["ack_rtt"] < 0.2
    data = [p for p in packets if p["len"]]
    assert all(p["bytes_in_flight"] >= p["len"] for p in data)
    assert all(p["window_size"] is not None for p in packets)


def test_dissect_prints_the_fields_as_sentences(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    done = netlens_cli("read", str(CLEAN), "--dissect", "2")
    assert done.returncode == 0, done.stderr
    assert "ACK RTT:" in done.stdout and "since packet 1" in done.stdout
    assert "Calculated window:" in done.stdout


@pytest.mark.parametrize("kind", ["tsg", "throughput", "rtt", "window"])
def test_graph_writes_a_vector_svg_with_axes_and_legend(netlens_cli, tmp_path, kind) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / f"{kind}.svg"
    done = netlens_cli("read", str(LOSSY), "--graph", kind, "--stream", "1", "--output", str(out))
    assert done.returncode == 0, done.stderr
    root = ElementTree.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    texts = " ".join(element.text or "" for element in root.iter(f"{SVG}text"))
    assert "time (s)" in texts
    assert {"tsg": "relative sequence number (bytes)", "throughput": "Mbit/s", "rtt": "RTT (ms)",
            "window": "bytes"}[kind] in texts
    legend = {"tsg": "retransmission", "throughput": "goodput", "rtt": "EstimatedRTT", "window": "bytes in flight"}
    assert legend[kind] in texts
    assert len(list(root.iter(f"{SVG}path"))) > 10  # drawn as vectors, not an embedded picture
    assert not list(root.iter(f"{SVG}image"))


def test_graph_png(netlens_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "tsg.png"
    done = netlens_cli("read", str(CLEAN), "--graph", "tsg", "--stream", "1", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("args", "words"), [
    (["--graph", "tsg", "--output", "x.svg"], "--graph needs the stream"),
    (["--graph", "tsg", "--stream", "1"], "--graph needs the stream"),
    (["--output", "x.svg"], "--output is where --graph writes"),
    (["--graph", "tsg", "--stream", "9", "--output", "x.svg"], "there is no TCP stream 9"),
    (["--graph", "rtt", "--stream", "1", "--output", "x.pdf"], "ending in .svg or .png"),
])
def test_graph_mistakes_get_one_sentence(netlens_cli, tmp_path, args, words) -> None:  # type: ignore[no-untyped-def]
    args = [str(tmp_path / arg) if arg.startswith("x.") else arg for arg in args]
    done = netlens_cli("read", str(CLEAN), *args)
    assert done.returncode != 0
    assert words in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())


def test_reading_without_a_graph_does_not_import_matplotlib() -> None:
    code = ("import sys, json\nfrom netlens.cli import main\n"
            f"main(['read', {str(CLEAN)!r}, '--conversations', '--json'])\n"
            "print(json.dumps('matplotlib' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines()[-1] == "false"


def test_the_packet_detail_says_ack_rtt_flight_and_window() -> None:
    from netlens.capture import PacketRing, PcapReader
    from netlens.capture.feed import RecordedPacketFeed

    reader = PcapReader(str(CLEAN))
    ring = PacketRing(linktype=reader.linktype)
    with reader:
        for record in reader:
            ring.append(*record)
    feed = RecordedPacketFeed(ring)
    feed.start()
    synack = feed.detail(2).statistics
    assert any(line.startswith("ACK RTT:") and "since packet 1" in line for line in synack)
    data = next(no for no in range(4, 40) if feed.summary(no).len)
    assert any(line.startswith("Bytes in flight:") for line in feed.detail(data).statistics)
    assert any(line.startswith("Calculated window:") for line in feed.detail(data).statistics)
