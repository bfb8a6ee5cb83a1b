"""The commands as a user runs them, against hostile bytes and hostile surroundings: one sentence, never a traceback."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from hostile_helpers import (
    SURROGATE_TYPE,
    ask,
    assert_printable,
    client_against,
    frame,
    headless,
    netlens,
    search_frame,
)
from support.synth import Conversation
from waiting import wait_for

from netlens.capture import write_pcap


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_surrogates_neither_crash_nor_reach_the_terminal(tmp_path: Path, fmt: str) -> None:
    # LANG=C: Python would write \udc80-\udcff as raw bytes 0x80-0xff there.
    with headless(tmp_path, *(["--json"] if fmt == "json" else []), locale="C") as (port, out, err):
        assert b"First 10 bytes of request: abc" in ask(port, frame(SURROGATE_TYPE, b"abc"))
        # The search for a lone surrogate is answered; so are \udc80-\udcff (raw bytes under C).
        assert b"No match for '\\ud800'." in ask(port, search_frame(b'"\\ud800"'))
        assert b"\\udc9b" in ask(port, search_frame(b'"\\udc9b\\u009b\\u202e"'))
        huge = ask(port, search_frame(json.dumps("w" * 100_000).encode()))
        assert len(huge) > 100_000
        wait_for(lambda: out.read_bytes().count(b"closed") >= 4)
    text = assert_printable(out.read_bytes())
    assert "Traceback" not in err.read_text()
    if fmt == "json":
        for line in text.splitlines():
            json.loads(line)
        assert "\\ud800" in text and "\\u009b" in text
    else:
        assert "\\ud800" in text and "\\x9b" in text and "\\u202e" in text
        assert max(len(line) for line in text.splitlines()) < 400  # a 100k value is cut, not printed twice


def test_out_of_file_descriptors_is_one_sentence() -> None:
    def tiny_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (5, 5))

    proc = netlens("serve", "--headless", "--port", "0", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   preexec_fn=tiny_limit)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1 and b"Traceback" not in err
    assert err.decode().strip().splitlines()[-1] == (
        "netlens: out of file descriptors (this process may open 5); raise the limit, e.g. `ulimit -n 4096`, "
        "and try again.")


def pcap_with_surrogates(path: Path) -> Path:
    conv = Conversation()
    conv.handshake()
    conv.client(frame(SURROGATE_TYPE, b"abc"))
    body = b'{"result": "\\ud800 \\u009b[31m \\u202e \\udc9b"}'
    conv.server(frame(json.dumps({"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8",
                                  "content-length": len(body)}).encode(), body))
    conv.close(first=1)
    write_pcap(path, conv.ring)
    return path


@pytest.mark.parametrize("command", ["serve", "read"])
def test_closed_stdout_and_a_full_disk_are_one_sentence(tmp_path: Path, command: str) -> None:
    pcap = pcap_with_surrogates(tmp_path / "s.pcap")
    args = ["serve", "--headless", "--port", "0"] if command == "serve" else ["read", str(pcap)]
    proc = netlens(*args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1 and b"Traceback" not in err
    assert b"standard output is closed" in err
    with open("/dev/full", "wb") as full:
        proc = netlens(*args, stdout=full, stderr=subprocess.PIPE)
        if command == "serve":
            threading.Timer(3, proc.send_signal, (signal.SIGTERM,)).start()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1 and b"Traceback" not in err and b"Exception ignored" not in err
    assert b"No space left on device." in err


def test_read_every_view_of_a_hostile_pcap(tmp_path: Path) -> None:
    pcap = pcap_with_surrogates(tmp_path / "s.pcap")
    for view in ([], ["--json"], ["--ladder", "1"], ["--follow", "1"], ["--dissect", "5"]):
        proc = netlens("read", str(pcap), *view, locale="C", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and b"Traceback" not in err, (view, err)
        assert_printable(out)


def test_client_shows_a_hostile_answer_safely() -> None:
    code, out, err = client_against(b'{"result": "\\ud800\\udc9b\\udcff \\u009b[2J \\u202e"}', "C")
    assert code == 0 and b"Traceback" not in err
    text = assert_printable(out)
    # \ud800\udc9b is a valid surrogate pair in JSON: one real character (U+1009B).
    assert "\U0001009b" in text
    assert "\\udcff" in text and "\\x9b[2J" in text and "\\u202e" in text
