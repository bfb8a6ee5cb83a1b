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


#: A test module that sets ``BOTH_GIL_MODES = True`` gets its ``search_server`` and
#: ``echo_server`` tests run with the socket calls releasing the GIL (Python's, the
#: headless default) and keeping it (netlens.server.heldcalls, the TUI's).
GIL_MODE_IDS = ("gil-released", "gil-held")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run an opted-in module's server tests on both socket-call layers (see GIL_MODE_IDS)."""
    if not getattr(metafunc.module, "BOTH_GIL_MODES", False):
        return
    for name in ("search_server", "echo_server"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [False, True], indirect=True, ids=GIL_MODE_IDS)


@pytest.fixture
def search_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A search-mode server on an ephemeral loopback port, stopped after the test."""
    hold_gil = getattr(request, "param", False)
    server = Server(ServerConfig(mode="search", port=0, idle_timeout=5.0, hold_gil=hold_gil)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def echo_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """An echo-mode server on an ephemeral loopback port, stopped after the test."""
    hold_gil = getattr(request, "param", False)
    server = Server(ServerConfig(mode="echo", port=0, idle_timeout=5.0, hold_gil=hold_gil)).start()
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
