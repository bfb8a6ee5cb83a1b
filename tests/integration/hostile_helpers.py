"""Helpers for driving the commands with hostile bytes: framing, asking, a headless server, output checks."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
#: The JSON header of the issue's 98-byte request: a lone surrogate as content-type, binary encoding.
SURROGATE_TYPE = (b'{"byteorder": "little", "content-type": "\\ud800", "content-encoding": "binary", '
                  b'"content-length": 3}')


def frame(header: bytes, content: bytes = b"") -> bytes:
    return struct.pack(">H", len(header)) + header + content


def search_frame(value_json: bytes) -> bytes:
    content = b'{"action": "search", "value": ' + value_json + b"}"
    header = json.dumps({"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8",
                         "content-length": len(content)}).encode()
    return frame(header, content)


def ask(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def netlens(*args: str, locale: str = "C.UTF-8", **kwargs: object) -> subprocess.Popen[bytes]:
    env = dict(os.environ, LANG=locale, LC_ALL=locale, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "netlens", *args], cwd=REPO, env=env,
                            **kwargs)  # type: ignore[call-overload]


@contextmanager
def headless(tmp_path: Path, *args: str, locale: str = "C.UTF-8") -> Iterator[tuple[int, Path, Path]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = netlens("serve", "--headless", "--port", "0", *args, locale=locale, stdout=stdout, stderr=stderr)
    try:
        first = wait_for(lambda: out.read_bytes().split(b"\n", 1)[0] if b"\n" in out.read_bytes() else None)
        port = json.loads(first)["address"][1] if first.startswith(b"{") else int(first.split(b":")[-1].split()[0])
        yield port, out, err
        assert proc.poll() is None, err.read_text()  # still serving after everything
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0


def unsafe_chars(text: str, allowed: str = "\n") -> list[str]:
    """Characters a terminal must never receive from the wire (C0/C1/DEL, surrogates, bidi, zero-width)."""
    return [c for c in text if c not in allowed and (
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF
        or c in "\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
                "\u2060\u2066\u2067\u2068\u2069\ufeff")]


def assert_printable(data: bytes) -> str:
    """``data`` is strict UTF-8 (no lone surrogate or raw byte) and holds no unsafe character."""
    text = data.decode("utf-8")
    assert not unsafe_chars(text)
    return text




def client_against(result_body: bytes, locale: str) -> tuple[int, bytes, bytes]:
    """``netlens client search x`` against a one-shot server answering ``result_body`` (a JSON object's bytes).

    Returns (exit code, stdout, stderr).
    """
    answer = frame(json.dumps({"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8",
                               "content-length": len(result_body)}).encode(), result_body)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def serve_once() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1 << 16)
                conn.sendall(answer)

        threading.Thread(target=serve_once, daemon=True).start()
        proc = netlens("client", "search", "x", "--port", str(listener.getsockname()[1]), locale=locale,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err
