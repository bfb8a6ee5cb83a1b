"""Layering, checked in fresh interpreters: which heavy packages each part of netlens loads.

textual only in ``netlens/ui`` (and not in the feeds' engines: the packet feed and the protocol
modules are plain Python); scapy only in ``netlens/capture``, and there only when a capture starts
or a packet is fully dissected; headless commands load neither textual nor (before they capture) scapy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTS = str(REPO / "tests")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\nsys.path.insert(0, {TESTS!r})\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize("statement", [
    "import netlens.proto",
    "import netlens.server",
    "import netlens.server.clients, netlens.server.load",
    "import netlens.trace, netlens.trace.timeline, netlens.trace.text, netlens.commands.trace",
])
def test_proto_and_server_are_stdlib_only(statement: str) -> None:
    loaded = loaded_after(statement)
    assert "netlens" in loaded
    assert not loaded & {"textual", "scapy", "rich", "psutil"}


#: The stdlib-only engines (trace joins them once it exists).
ENGINES = [name for name in ("proto", "server", "probe", "trace") if (REPO / "netlens" / name).is_dir()]


@pytest.mark.parametrize("package", ENGINES)
def test_engines_do_not_load_scapy(package: str) -> None:
    loaded = loaded_after(f"import netlens.{package}")
    assert "netlens" in loaded and "scapy" not in loaded and "textual" not in loaded


@pytest.mark.parametrize("module", ["headless", "client", "load", "conns", "capture", "read"])
def test_headless_commands_load_no_textual(module: str) -> None:
    loaded = loaded_after(f"import netlens.commands.{module}")
    assert not loaded & {"textual", "scapy"}


def test_the_cli_parser_loads_no_heavy_package() -> None:
    # `netlens --help` and every headless command start from this parser.
    assert not loaded_after("from netlens.cli import build_parser; build_parser()") & {"textual", "scapy"}


def test_packet_feed_and_protocols_load_no_textual_and_no_scapy() -> None:
    # The feeds are engines' faces for the UI: plain Python, movable to a helper process.
    loaded = loaded_after(
        "from netlens.capture.feed import RecordedPacketFeed\n"
        "from netlens.capture.live_feed import LivePacketFeed\n"
        "from netlens.capture.protocols import registered\n"
        "import netlens.ui.feeds\n"
        "from support.synth import Conversation\n"
        "c = Conversation(); c.handshake(); c.client(b'x'); f = RecordedPacketFeed(c.ring)\n"
        "assert [p.name for p in registered()] == ['search', 'echo']\n"
        "s = f.advance(); f.rows(s.first, s.last); f.follow(1); f.ladder(1); f.stream(1)\n"
        "LivePacketFeed('lo', 65432)"
    )
    assert "netlens" in loaded and not loaded & {"textual", "scapy", "rich"}


def test_ring_summaries_analysis_and_pcap_do_not_load_scapy() -> None:
    loaded = loaded_after(
        "import netlens.capture, netlens.commands.capture, netlens.commands.read\n"
        "from support.synth import Conversation\n"
        "from netlens.capture import PacketStore, write_pcap, read_pcap\n"
        "import io\n"
        "c = Conversation(); c.handshake(); c.client(b'x'); s = PacketStore(c.ring); s.update()\n"
        "s.summary(4).line(); s.follow(1).render(); s.ladder(1).render(); s.hexdump(1)\n"
        "b = io.BytesIO(); write_pcap(b, c.ring); read_pcap(b.getvalue())"
    )
    assert "netlens" in loaded
    assert not loaded & {"scapy", "textual", "rich"}


def test_dissection_loads_scapy() -> None:
    loaded = loaded_after(
        "from netlens.capture import dissect\nfrom support.synth import tcp_frame\ndissect(tcp_frame())"
    )
    assert "scapy" in loaded and "textual" not in loaded


def test_probe_and_capture_do_not_load_textual() -> None:
    assert "textual" not in loaded_after("import netlens.probe, netlens.capture")
