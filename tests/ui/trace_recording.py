"""Kernel trace events for recording.py's connection #1 (127.0.0.1:50412, the server closed first).

Each state change sits microseconds from the recorded packet that caused it,
as on loopback (see tests/integration/test_trace_states.py): the passive
side's LISTEN→SYN_RECV→ESTABLISHED at the final ACK, FIN_WAIT2→CLOSE handed
to the TIME_WAIT socket that recording.py's sock_diag snapshot shows.
"""

from __future__ import annotations

import recording

from netlens.trace.events import Probe, SocketDestroyed, StateChange, TraceEvent
from netlens.ui.feeds import RecordedFeeds
from netlens.ui.trace_feed import RecordedTraceFeed

CLIENT = ("127.0.0.1", 50412)
US = 1_000


def _packet_ns(no: int) -> int:
    """Packet ``no`` of the recording: the synthetic conversation's steps are 40 µs apart, 1 s after START."""
    return int(recording.START * 1e9) + 1_000_000_000 + no * 40 * US


def events() -> list[TraceEvent]:
    """Both ends of connection #1 as the kernel logs them (server: socket 1, client: socket 2)."""
    server, client = recording.SERVER, CLIENT

    def srv(ns: int, old: str, new: str, cookie: int | None = None) -> StateChange:
        return StateChange(ns, 0, 1, cookie, 2, *server, *client, old, new)

    def cli(ns: int, old: str, new: str, cookie: int | None = None, port: int = CLIENT[1]) -> StateChange:
        return StateChange(ns, 1, 2, cookie, 2, client[0], port, *server, old, new)

    out: list[TraceEvent] = [
        cli(_packet_ns(1) - 10 * US, "CLOSE", "SYN_SENT", port=0),
        cli(_packet_ns(2) + 2 * US, "SYN_SENT", "ESTABLISHED"),
        srv(_packet_ns(3) + 2 * US, "LISTEN", "SYN_RECV"),
        srv(_packet_ns(3) + 3 * US, "SYN_RECV", "ESTABLISHED"),
        srv(_packet_ns(8) - 2 * US, "ESTABLISHED", "FIN_WAIT1"),
        cli(_packet_ns(8) + 2 * US, "ESTABLISHED", "CLOSE_WAIT"),
        cli(_packet_ns(9) - 2 * US, "CLOSE_WAIT", "LAST_ACK"),
        srv(_packet_ns(9) + 2 * US, "FIN_WAIT1", "FIN_WAIT2"),
        srv(_packet_ns(9) + 3 * US, "FIN_WAIT2", "CLOSE", 0x1F01),
        SocketDestroyed(_packet_ns(9) + 4 * US, 0, 1, 0x1F01, 2, *server, *client),
        cli(_packet_ns(10) + 2 * US, "LAST_ACK", "CLOSE", 0x1F02),
        SocketDestroyed(_packet_ns(10) + 3 * US, 1, 2, 0x1F02, 2, *client, *server),
    ]
    for no, (cwnd, srtt, window) in zip((4, 7, 9), ((10, 60, 65483), (10, 52, 65336), (10, 47, 65336)),
                                        strict=True):
        out.append(Probe(_packet_ns(no) + US, 0, 1, None, 2, *server, *client, cwnd, 0x7FFFFFFF, srtt, window,
                         65483, 0, 0, 0))
    return out


def feeds_with_trace() -> RecordedFeeds:
    """recording.py's moment with its kernel trace (TIME_WAIT folded from its sock_diag snapshot)."""
    kernel = recording._kernel()
    trace = RecordedTraceFeed(events(), [(kernel.ts, kernel.sockets)])
    return RecordedFeeds(recording._server(), recording._events(), kernel, recording.NOW,
                         packets=recording._packets(), trace=trace)
