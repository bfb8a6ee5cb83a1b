"""Event lines, JSON objects and the clock conversion."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from netlens.trace import clock
from netlens.trace.events import Drop, Kind, Probe, ResetSent, StateChange, materialize
from netlens.trace.text import line

T = 1_796_136_844_065_850_123


def test_a_state_line_and_its_json() -> None:
    event = StateChange(T, 1, 3, 0x4C33A, 2, "127.0.0.1", 40000, "127.0.0.1", 65432, "SYN_SENT", "ESTABLISHED")
    text = line(event)
    assert text.startswith(time.strftime("%H:%M:%S", time.localtime(T // 10**9)) + ".065850  state ")
    assert "127.0.0.1:40000 → 127.0.0.1:65432" in text and "SYN_SENT → ESTABLISHED" in text
    assert text.endswith("sock 3 cookie 0x4c33a")
    data = json.loads(json.dumps(event.to_dict()))
    assert data == {"time": 1796136844.06585, "event": "state", "cookie": 0x4C33A, "sock": 3, "src": "127.0.0.1",
                    "sport": 40000, "dst": "127.0.0.1", "dport": 65432, "cpu": 1, "old": "SYN_SENT",
                    "new": "ESTABLISHED"}


def test_kind_specific_fields() -> None:
    probe = Probe(T, 0, 1, None, 2, "::1", 1, "::1", 2, 10, 0x7FFFFFFF, 22, 65536, 65483, 0, 1, 1)
    assert "ssthresh ∞ srtt 22µs" in line(probe) and "[::1]:1 → [::1]:2" in line(probe)
    assert {"cwnd": 10, "ssthresh": 0x7FFFFFFF, "srtt_us": 22, "snd_wnd": 65536, "rcv_wnd": 65483}.items() \
        <= probe.to_dict().items()
    reset = ResetSent(T, 0, 0, None, 2, "127.0.0.1", 5000, "127.0.0.1", 41000, "UNKNOWN", "NO_SOCKET")
    assert reset.to_dict()["event"] == "reset-sent" and reset.to_dict()["reason"] == "NO_SOCKET"
    assert reset.to_dict()["sock"] is None and "no socket" in line(reset)
    drop = Drop(T, 0, 0, None, 0, "", 0, "", 0, "NETFILTER_DROP")
    assert "? → ?" in line(drop) and drop.to_dict()["src"] is None


def test_lines_escape_whatever_the_kernel_files_said() -> None:
    hostile = Drop(T, 0, 0, None, 0, "", 0, "", 0, "\x1b[31mRED\x1b]0;title\x07")
    text = line(hostile)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[31mRED" in text


def test_records_materialize_into_their_dataclass() -> None:
    record = (Kind.STATE, T, 0, 5, None, 2, b"\x7f\x00\x00\x01", 1, b"\x7f\x00\x00\x01", 2, "LISTEN", "SYN_RECV")
    event = materialize(record)
    assert isinstance(event, StateChange) and event.src == "127.0.0.1" and event.new == "SYN_RECV"
    assert event.time == T / 1e9 and event.event == "state"


def test_the_tai_offset_is_whole_seconds_whatever_the_read_jitter() -> None:
    def reads(tai_minus_real: int, jitter: int) -> Callable[[int], int]:
        def read(which: int) -> int:
            base = 1_800_000_000 * 10**9
            return base + tai_minus_real + jitter if which == time.CLOCK_TAI else base
        return read
    assert clock.tai_offset_ns(reads(37 * 10**9, 3_000)) == 37 * 10**9
    assert clock.tai_offset_ns(reads(37 * 10**9, -3_000)) == 37 * 10**9
    assert clock.tai_offset_ns(reads(0, 800)) == 0
    assert clock.tai_offset_ns() % 10**9 == 0  # this machine's, for real


def test_the_best_clock_is_chosen_from_the_trace_clock_file() -> None:
    assert clock.choose("[local] global counter uptime perf mono mono_raw boot tai x86-tsc") is clock.TAI
    fallback = clock.choose("[local] global counter uptime perf mono")
    assert fallback.trace_clock == "mono" and not fallback.exact
    offset = fallback.offset_ns()
    assert abs(offset + time.monotonic_ns() - time.time_ns()) < 5_000_000
