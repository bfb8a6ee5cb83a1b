"""ConnectionTracker on a scripted sequence of synthetic snapshots: open, send, half-close, close."""

from __future__ import annotations

import dataclasses

import pytest
from support.probe_fixtures import encode_attributes

from netlens.probe import (
    CHANGE_FIELDS,
    ConnectionTracker,
    ProcessRef,
    RowStatus,
    Snapshot,
    SocketInfo,
    SocketTimer,
    TcpInfo,
)

OWNER = (ProcessRef(4242, "server", 5),)


def tcp(**values: int) -> TcpInfo:
    """A TcpInfo with every field 0 except ``values``."""
    fields = {f.name: 0 for f in dataclasses.fields(TcpInfo)}
    fields.update(values)
    return TcpInfo(**fields)


def conn(
    state: str = "ESTABLISHED",
    recv_q: int = 0,
    send_q: int = 0,
    local_port: int = 65432,
    remote_port: int = 50000,
    owners: tuple[ProcessRef, ...] = OWNER,
    timer: SocketTimer | None = None,
    **tcp_values: int,
) -> SocketInfo:
    """A synthetic socket; TCP_INFO counters from ``tcp_values`` (TIME_WAIT gets none, as from the kernel)."""
    attributes = encode_attributes(tcp_info=tcp(**tcp_values)) if state != "TIME_WAIT" else b""
    return SocketInfo(
        state, "IPv4", "127.0.0.1", local_port, "127.0.0.1", remote_port, recv_q, send_q,
        inode=99 if owners else 0, uid=0, timer=timer, owners=owners, attributes=attributes,
    )  # fmt: skip


def snap(ts: float, *sockets: SocketInfo) -> Snapshot:
    return Snapshot(ts=ts, sockets=tuple(sockets), source="sock_diag", port=65432)


def test_scripted_connection_life() -> None:
    tracker = ConnectionTracker(linger=5.0)
    listener = conn("LISTEN", send_q=128, remote_port=0)

    up = tracker.update(snap(100.0, listener))
    assert [r.status for r in up.rows] == [RowStatus.NEW] and up.added == (listener.key,)

    # open
    up = tracker.update(snap(101.0, listener, conn()))
    key = conn().key
    assert up.added == (key,) and up.changed == ()
    rows = {r.key: r for r in up.rows}
    assert rows[listener.key].status is RowStatus.UNCHANGED
    assert rows[key].status is RowStatus.NEW and rows[key].first_seen == 101.0

    # send: bytes arrive unread, the peer acknowledged them
    up = tracker.update(snap(102.0, listener, conn(recv_q=44, bytes_received=44, segs_in=3)))
    row = {r.key: r for r in up.rows}[key]
    assert up.changed == (key,)
    assert row.status is RowStatus.CHANGED and row.changed == {"recv_q", "bytes_received"}
    assert (row.first_seen, row.last_change) == (101.0, 102.0)

    # nothing moves: the row stays, unchanged, remembering what changed last
    up = tracker.update(snap(103.0, listener, conn(recv_q=44, bytes_received=44, segs_in=3)))
    row = {r.key: r for r in up.rows}[key]
    assert (
        row.status is RowStatus.UNCHANGED and row.changed == {"recv_q", "bytes_received"} and row.last_change == 102.0
    )

    # half-close by the peer: same key, new state
    up = tracker.update(snap(104.0, listener, conn("CLOSE_WAIT", recv_q=44, bytes_received=44)))
    row = {r.key: r for r in up.rows}[key]
    assert row.status is RowStatus.CHANGED and row.changed == {"state"}

    # our side closes too: TIME_WAIT keeps the 4-tuple, loses the owner
    up = tracker.update(snap(105.0, listener, conn("TIME_WAIT", owners=(), timer=SocketTimer("timewait", 60_000, 0))))
    row = {r.key: r for r in up.rows}[key]
    assert row.status is RowStatus.CHANGED
    assert {"state", "recv_q", "owners", "bytes_received"} <= row.changed
    assert [r.key for r in up.rows] == [listener.key, key]  # order is stable

    # gone from the kernel: closed, kept for the linger
    up = tracker.update(snap(106.0, listener))
    row = {r.key: r for r in up.rows}[key]
    assert up.closed == (key,) and row.status is RowStatus.CLOSED and row.closed_at == 106.0
    assert row.socket.state == "TIME_WAIT"  # the last thing we saw
    up = tracker.update(snap(110.0, listener))
    assert key in {r.key for r in up.rows} and up.closed == ()
    up = tracker.update(snap(111.0, listener))
    assert up.removed == (key,) and key not in {r.key for r in up.rows}


def test_timer_countdowns_and_ages_are_not_changes() -> None:
    tracker = ConnectionTracker()
    tracker.update(snap(1.0, conn(timer=SocketTimer("keepalive", 7_000_000, 0), rtt_us=30, last_data_recv_ms=10)))
    up = tracker.update(
        snap(2.0, conn(timer=SocketTimer("keepalive", 6_999_000, 0), rtt_us=45, last_data_recv_ms=1010))
    )
    assert up.changed == () and up.rows[0].status is RowStatus.UNCHANGED
    assert up.rows[0].socket.timer is not None and up.rows[0].socket.timer.expires_ms == 6_999_000  # latest record kept


@pytest.mark.parametrize(
    "field",
    ["bytes_acked", "bytes_sent", "bytes_retrans", "unacked", "lost", "retransmits", "total_retrans", "notsent_bytes"],
)
def test_each_tcp_counter_counts_as_a_change(field: str) -> None:
    tracker = ConnectionTracker()
    tracker.update(snap(1.0, conn()))
    up = tracker.update(snap(2.0, conn(**{field: 1})))
    assert up.rows[0].changed == {field}
    assert field in CHANGE_FIELDS


def test_a_closed_key_that_comes_back_is_a_new_connection() -> None:
    tracker = ConnectionTracker(linger=10)
    tracker.update(snap(1.0, conn()))
    tracker.update(snap(2.0))
    up = tracker.update(snap(3.0, conn()))
    assert up.added == (conn().key,) and up.rows[0].status is RowStatus.NEW and up.rows[0].first_seen == 3.0


def test_duplicate_keys_in_one_snapshot_get_distinct_rows() -> None:
    a = conn("LISTEN", remote_port=0)
    b = dataclasses.replace(a, inode=100)
    up = ConnectionTracker().update(snap(1.0, a, b))
    assert len(up.rows) == 2 and up.rows[1].key == (*a.key, 2)


def test_highlight_holds_colours_for_a_while() -> None:
    tracker = ConnectionTracker()
    tracker.update(snap(10.0, conn()))
    row = tracker.update(snap(11.0, conn())).rows[0]
    assert row.status is RowStatus.UNCHANGED
    assert row.highlight(11.0, hold=2.0) is RowStatus.NEW
    assert row.highlight(12.5, hold=2.0) is RowStatus.UNCHANGED
    row = tracker.update(snap(13.0, conn(send_q=5))).rows[0]
    assert row.highlight(14.0, hold=2.0) is RowStatus.CHANGED
    assert row.highlight(15.5, hold=2.0) is RowStatus.UNCHANGED
    row = tracker.update(snap(16.0)).rows[0]
    assert row.highlight(16.0, hold=2.0) is RowStatus.CLOSED


def test_psutil_records_without_attributes_are_tracked_too() -> None:
    plain = SocketInfo("ESTABLISHED", "IPv4", "127.0.0.1", 1, "127.0.0.1", 2)
    tracker = ConnectionTracker()
    tracker.update(snap(1.0, plain))
    up = tracker.update(snap(2.0, dataclasses.replace(plain, state="CLOSE_WAIT")))
    assert up.rows[0].changed == {"state"}


def test_ten_thousand_sockets_are_tracked() -> None:
    # Its speed is measured by tests/benchmarks/bench_probe.py, not asserted here.
    sockets = [conn(local_port=1 + i // 60000, remote_port=1 + i % 60000, bytes_acked=i) for i in range(10_000)]
    tracker = ConnectionTracker()
    tracker.update(snap(1.0, *sockets))
    up = tracker.update(snap(2.0, *sockets))
    assert len(up.rows) == 10_000 and up.changed == ()


def test_a_connection_gone_into_a_time_wait_not_shown_is_not_shown_closed() -> None:
    tracker = ConnectionTracker(linger=10)
    seen, ended = dataclasses.replace(conn(), cookie=7), dataclasses.replace(conn(remote_port=50001), cookie=8)
    tracker.update(snap(1.0, seen, ended))
    # Both left the snapshot; the kernel counts 7 among the TIME_WAIT sockets it holds but the snapshot leaves out.
    up = tracker.update(dataclasses.replace(snap(2.0), hidden_cookies=frozenset({7})))
    assert up.removed == (seen.key,) and up.closed == (ended.key,)
    assert [(row.key, row.status) for row in up.rows] == [(ended.key, RowStatus.CLOSED)]
