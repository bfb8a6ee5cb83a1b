"""KernelView: the table's TIME_WAIT cap never turns a socket it leaves out into a closed connection."""

from __future__ import annotations

from netlens.probe import RowStatus, Snapshot, SocketInfo, SocketTimer
from netlens.ui.kernel_view import KernelView


def sock(state: str, remote_port: int, cookie: int, left_ms: int = 0) -> SocketInfo:
    """A socket of the served port (65432) with ``cookie``; a TIME_WAIT one with ``left_ms`` on its timer."""
    timer = SocketTimer("timewait", left_ms, 0) if state == "TIME_WAIT" else None
    return SocketInfo(state, "IPv4", "127.0.0.1", 65432, "127.0.0.1", remote_port, 0, 0, timer=timer, cookie=cookie)


def snap(ts: float, *sockets: SocketInfo) -> Snapshot:
    return Snapshot(ts=ts, sockets=sockets, source="sock_diag", port=65432)


def test_a_shown_connection_whose_time_wait_the_cap_leaves_out_leaves_the_table_without_closing() -> None:
    view = KernelView(max_time_wait=1)
    view.fold(snap(1.0, sock("ESTABLISHED", 50001, 1), sock("ESTABLISHED", 50002, 2)))
    # Both ends went into TIME_WAIT; one place for them: the newest (more time left) is shown.
    later = view.fold(snap(2.0, sock("TIME_WAIT", 50001, 1, 59_000), sock("TIME_WAIT", 50002, 2, 59_500)))
    assert later.hidden_time_wait == 1
    assert [(row.key[4], row.socket.state, row.status) for row in later.update.rows] == [
        (50002, "TIME_WAIT", RowStatus.CHANGED)]
    assert later.update.closed == () and [key[4] for key in later.update.removed] == [50001]
