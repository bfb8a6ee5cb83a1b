"""Fixtures shared by every test layer: real servers on 127.0.0.1 with port 0, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlens.server import Server, ServerConfig

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def search_server() -> Iterator[Server]:
    """A search-mode server on an ephemeral loopback port, stopped after the test."""
    server = Server(ServerConfig(mode="search", port=0, idle_timeout=5.0)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def echo_server() -> Iterator[Server]:
    """An echo-mode server on an ephemeral loopback port, stopped after the test."""
    server = Server(ServerConfig(mode="echo", port=0, idle_timeout=5.0)).start()
    try:
        yield server
    finally:
        server.stop()


def _run_netlens(*args: str, timeout: float = 30.0, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "netlens", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def netlens_cli():  # type: ignore[no-untyped-def]
    """``netlens_cli(*args, timeout=30)``: run ``python -m netlens ARGS`` as a user would."""
    return _run_netlens
