"""The UI's kernel-trace feed on real loopback sockets (root), and its one sentence without root."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from trace_helpers import abort, cookie_of, listener

from netlens.probe import take_snapshot
from netlens.trace.timeline import SocketTimeline
from netlens.ui.kernel_events import kernel_records, kernel_row
from netlens.ui.tcp_states import CURRENT, LIT, diagram, timeline_text
from netlens.ui.trace_feed import LiveTraceFeed

TRACEFS_INSTANCES = Path("/sys/kernel/tracing/instances")


def _prefix() -> str:
    return f"nltu{os.getpid()}"


def _poll_until(feed: LiveTraceFeed, done: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the kernel events did not come"
        feed.poll()
        time.sleep(0.02)


def test_live_feed_follows_a_closed_connection_to_time_wait() -> None:
    server_listener = listener()
    port = server_listener.getsockname()[1]
    feed = LiveTraceFeed(port, prefix=_prefix())
    feed.start()
    client = server = None
    try:
        assert feed.unavailable is None, feed.unavailable
        server_listener.listen()
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        server, _ = server_listener.accept()
        server_cookie = cookie_of(server)
        client.sendall(b"ping")
        assert server.recv(4) == b"ping"
        server.close()  # the server closes first: it will wait in TIME_WAIT
        assert client.recv(10) == b""
        client.close()

        def waiting() -> SocketTimeline | None:
            snap = take_snapshot(port, processes=False)
            feed.fold_snapshot(snap.sockets, snap.ts)
            timeline = feed.book.by_cookie(server_cookie)
            return timeline if timeline is not None and timeline.current == "TIME_WAIT" else None

        _poll_until(feed, waiting)
    finally:
        feed.stop()
        abort(client, server_listener)
    timeline = waiting()
    assert timeline is not None
    assert timeline.states == ["LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT"]
    text = timeline_text(timeline, [], time.time()).plain
    assert "FIN_WAIT1 → FIN_WAIT2  the ACK of our FIN (not captured)" in text
    assert "TIME_WAIT timer:" in text and "(sock_diag)" in text
    lit = diagram(timeline.states, timeline.current)
    styled = {lit.plain[span.start:span.end]: str(span.style) for span in lit.spans}
    assert styled["TIME_WAIT"] == CURRENT and styled["FIN_WAIT2"] == LIT and styled["ESTABLISHED"] == LIT
    assert feed.session is not None and feed.session.path is not None and not feed.session.path.exists()
    # The events panel's rows for this port: every state change of both ends, in time order.
    shown = feed.events_between(0, time.time() + 1)
    rows = [kernel_row(record).plain for record in kernel_records(shown, {})]
    assert sum("state ESTABLISHED → FIN_WAIT1" in row for row in rows) == 1
    assert sum("state CLOSE_WAIT → LAST_ACK" in row for row in rows) == 1


def test_without_root_the_feed_says_what_is_missing_in_one_sentence() -> None:
    code = ("from netlens.ui.trace_feed import LiveTraceFeed\n"
            f"f = LiveTraceFeed(5000, prefix='{_prefix()}'); f.start(); print(f.unavailable); print(f.status())")
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=30, check=True)
    sentence, status = out.stdout.strip().splitlines()
    assert sentence == ("No kernel events: kernel tracing needs root (it reads tracefs at /sys/kernel/tracing): "
                        "run netlens with sudo.")
    assert status == "kernel trace off" and out.stderr == ""


def test_a_feed_stopped_before_its_start_ran_leaves_no_reader_or_instance() -> None:
    # The app starts the feed in a worker; quitting first must not leave a trace running.
    feed = LiveTraceFeed(5000, prefix=_prefix())
    feed.stop()
    feed.start()
    assert feed.session is None and feed.unavailable is None
    assert not any(path.name == f"{_prefix()}-{os.getpid()}" for path in TRACEFS_INSTANCES.iterdir())
