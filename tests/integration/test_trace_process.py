"""The kernel trace in a helper process (root): records come back, the instance never outlives us."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from trace_helpers import abort, cookie_of, listener

from netlens.trace import Kind, TraceFilter, TraceUnavailable, materialize
from netlens.trace.events import TraceRecord
from netlens.trace.process import TraceProcess
from netlens.trace.sample import Sampling


def _prefix() -> str:
    return f"ntp{os.getpid()}"


def _until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition was not met in time"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def _one_connection(server_listener: socket.socket) -> int:
    """Connect, exchange a byte, close both ends; the server end's cookie."""
    port = server_listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    server, _ = server_listener.accept()
    try:
        cookie = cookie_of(server)
        client.sendall(b"x")
        assert server.recv(1) == b"x"
    finally:
        abort(client, server)
    return cookie


def test_records_come_back_and_stop_ends_the_helper_and_its_instance() -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    trace = TraceProcess(TraceFilter.of(ports=(port,)), prefix=_prefix()).start()
    records: list[TraceRecord] = []
    try:
        assert trace.process is not None and trace.path is not None
        assert trace.path.name == f"{_prefix()}-{trace.process.pid}" and trace.path.is_dir()
        server_listener.listen()
        cookie = _one_connection(server_listener)

        def established() -> bool:
            records.extend(trace.drain_records())
            return any(r[0] == Kind.STATE and r[4] == cookie and r[-1] == "ESTABLISHED" for r in records)

        _until(established)
    finally:
        stats = trace.stop()
        abort(server_listener)
    assert trace.process.returncode == 0 and not trace.path.exists()
    records.extend(trace.drain_records())
    # The helper's socket joins crossed intact: the server end's lifetime carries its cookie throughout.
    mine = [materialize(r) for r in records if r[4] == cookie]
    assert [(e.old, e.new) for e in mine if e.kind == Kind.STATE][:2] == [  # type: ignore[attr-defined]
        ("LISTEN", "SYN_RECV"), ("SYN_RECV", "ESTABLISHED")]
    assert len({e.sock for e in mine}) == 1 and all(e.sport == port for e in mine)
    assert stats.delivered == len(records) and stats.lost == 0 and trace.error is None


def test_the_buffer_here_is_bounded_and_what_it_drops_is_counted() -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    trace = TraceProcess(TraceFilter.of(ports=(port,)), prefix=_prefix(), capacity=8).start()
    try:
        server_listener.listen()
        for _ in range(6):
            _one_connection(server_listener)
        _until(lambda: trace.stats.delivered >= 30)  # nobody drains meanwhile
    finally:
        stats = trace.stop()
        abort(server_listener)
    kept = trace.drain_records()
    assert len(kept) == 8 and stats.dropped > 0
    assert len(kept) + stats.dropped == stats.delivered  # every record either reached us or is counted lost


def test_sampling_in_the_helper_sends_only_the_newest_and_counts_the_rest() -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    sampling = Sampling(newest=5, probes_per_socket=1, every=0.5)
    trace = TraceProcess(TraceFilter.of(ports=(port,)), prefix=_prefix(), sampling=sampling).start()
    try:
        server_listener.listen()
        for _ in range(6):  # ~60 records within one sampling period
            _one_connection(server_listener)
        _until(lambda: trace.stats.delivered + trace.stats.skipped >= 30)
    finally:
        stats = trace.stop()
        abort(server_listener)
    kept = trace.drain_records()
    assert trace.skipped > 0 and len(kept) < stats.delivered + stats.skipped
    # Every record the kernel gave reached us or is counted: sampled out after decoding (delivered),
    # or only noted by the helper's session (its newest-only decoding, stats.skipped).
    assert len(kept) + trace.skipped + trace.probes_skipped == stats.delivered + stats.skipped
    assert stats.lost == 0
    assert [r[1] for r in kept] == sorted(r[1] for r in kept)


def test_the_helpers_refusal_keeps_its_sentence_and_leaves_nothing() -> None:
    trace = TraceProcess(TraceFilter.of(ports=(5000,)), kinds=(), prefix=_prefix())
    with pytest.raises(TraceUnavailable) as raised:
        trace.start()
    assert str(raised.value) == "this kernel has none of the TCP tracepoints netlens reads (sock, tcp, skb)."
    assert trace.process is not None and trace.process.returncode == 0
    assert not any(p.name.startswith(f"{_prefix()}-") for p in Path("/sys/kernel/tracing/instances").iterdir())


PARENT = """
import sys, time
from netlens.trace import TraceFilter
from netlens.trace.process import TraceProcess
from netlens.trace.sample import Sampling
trace = TraceProcess(TraceFilter.of(ports=(5000,)), prefix=sys.argv[1]).start()
print(trace.process.pid, trace.path, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_parent_that_dies_leaves_no_helper_and_no_instance(signum: int) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, _prefix()], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        helper_pid, path = parent.stdout.readline().split()
        assert Path(path).is_dir() and _alive(int(helper_pid))
        parent.send_signal(signum)
        parent.wait(5)
        # The helper reads EOF on its socket, removes the instance and exits: well within a second.
        _until(lambda: not Path(path).exists() and not _alive(int(helper_pid)), timeout=3.0)
    finally:
        parent.kill()
        parent.wait(5)


def test_a_killed_helper_is_reported_and_its_instance_removed_on_stop() -> None:
    trace = TraceProcess(TraceFilter.of(ports=(5000,)), prefix=_prefix()).start()
    try:
        assert trace.process is not None and trace.path is not None
        trace.process.kill()
        _until(lambda: trace.error is not None)
        assert trace.error == "the kernel-trace helper process ended unexpectedly"
        assert trace.path.exists()
    finally:
        trace.stop()
    assert not trace.path.exists()


def test_sigterm_to_the_helper_removes_its_instance_and_says_so() -> None:
    trace = TraceProcess(TraceFilter.of(ports=(5000,)), prefix=_prefix()).start()
    try:
        assert trace.process is not None and trace.path is not None
        trace.process.terminate()
        assert trace.process.wait(5) == 0  # a clean exit: it stopped its session first
        assert not trace.path.exists()
        _until(lambda: trace.error is not None)
        assert trace.error == "the kernel-trace helper process was stopped by a signal"
    finally:
        trace.stop()
