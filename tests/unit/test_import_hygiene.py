"""Layering: the headless parts must not load textual, and proto/server must not load scapy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
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
    assert not loaded & {"textual", "scapy", "rich", "psutil", "pyroute2"}


def test_headless_serve_loads_neither_textual_nor_scapy() -> None:
    loaded = loaded_after("import netlens.commands.headless, netlens.commands.client, netlens.commands.load")
    assert not loaded & {"textual", "scapy"}


def test_the_cli_parser_loads_no_heavy_package() -> None:
    # `netlens --help` and every headless command start from this parser.
    loaded = loaded_after("from netlens.cli import build_parser; build_parser()")
    assert not loaded & {"textual", "scapy", "pyroute2"}


@pytest.mark.parametrize("statement", ["import netlens.probe", "import netlens.capture"])
def test_probe_and_capture_do_not_load_textual(statement: str) -> None:
    assert "textual" not in loaded_after(statement)


def test_probe_does_not_load_scapy() -> None:
    assert "scapy" not in loaded_after("import netlens.probe")
