"""Layering: the capture package loads scapy only when a capture starts or a packet is dissected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1])


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\nsys.path.insert(0, {TESTS!r})\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}


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
