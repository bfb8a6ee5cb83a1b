"""A recorded exchange for the UI's kernel-trace parts: the server closes first, as the kernel tells it.

Times, states and packets follow what ``tests/integration/test_trace_states.py``
measures on loopback (passive side: LISTEN→SYN_RECV→ESTABLISHED together at
the final ACK; the closer's ``FIN_WAIT2 → CLOSE`` handed over to a TIME_WAIT
socket that only sock_diag shows), fixed so screens are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from netlens.trace.events import Probe, Retransmit, SocketDestroyed, StateChange, TraceEvent

S = 1_000_000_000
T0 = 1_764_590_400.0  # 2025-12-01 12:00:00 UTC
SERVER = ("127.0.0.1", 5000)
CLIENT = ("127.0.0.1", 40000)
SERVER_COOKIE = 0x3A
CLIENT_COOKIE = 0x3B


class Packet(NamedTuple):
    """The fields of a captured packet the timeline reads (``PacketSummary`` has them all)."""

    no: int
    time: float
    src: str
    sport: int
    dst: str
    dport: int
    flags: str


@dataclass(frozen=True)
class Timer:
    name: str
    expires_ms: int
    retrans: int = 0


@dataclass(frozen=True)
class Sock:
    """The sock_diag fields the timeline fold reads (``netlens.probe.SocketInfo`` has them all)."""

    state: str
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int
    cookie: int | None
    timer: Timer | None = None


def _state(t: float, sock: int, old: str, new: str, here: tuple[str, int], there: tuple[str, int],
           cookie: int | None = None) -> StateChange:
    return StateChange(round(t * S), 0, sock, cookie, 2, *here, *there, old, new)


def events() -> list[TraceEvent]:
    """Both ends' kernel events (server socket 1, client socket 2)."""
    c0 = (CLIENT[0], 0)
    out: list[TraceEvent] = [
        _state(T0, 2, "CLOSE", "SYN_SENT", c0, SERVER),
        _state(T0 + 0.000090, 2, "SYN_SENT", "ESTABLISHED", CLIENT, SERVER),
        _state(T0 + 0.000130, 1, "LISTEN", "SYN_RECV", SERVER, CLIENT),
        _state(T0 + 0.000131, 1, "SYN_RECV", "ESTABLISHED", SERVER, CLIENT),
        _state(T0 + 0.500000, 1, "ESTABLISHED", "FIN_WAIT1", SERVER, CLIENT),
        _state(T0 + 0.500030, 2, "ESTABLISHED", "CLOSE_WAIT", CLIENT, SERVER),
        _state(T0 + 0.500050, 1, "FIN_WAIT1", "FIN_WAIT2", SERVER, CLIENT),
        _state(T0 + 0.600000, 2, "CLOSE_WAIT", "LAST_ACK", CLIENT, SERVER),
        _state(T0 + 0.600030, 1, "FIN_WAIT2", "CLOSE", SERVER, CLIENT, SERVER_COOKIE),
        SocketDestroyed(int((T0 + 0.600031) * S), 0, 1, SERVER_COOKIE, 2, *SERVER, *CLIENT),
        _state(T0 + 0.600060, 2, "LAST_ACK", "CLOSE", CLIENT, SERVER, CLIENT_COOKIE),
        SocketDestroyed(int((T0 + 0.600061) * S), 0, 2, CLIENT_COOKIE, 2, *CLIENT, *SERVER),
        Retransmit(int((T0 + 0.300000) * S), 0, 1, None, 2, *SERVER, *CLIENT, "ESTABLISHED", 0),
    ]
    for i, (cwnd, srtt, wnd) in enumerate([(10, 60, 65483), (10, 55, 65483), (11, 52, 65483), (12, 50, 60000),
                                           (13, 48, 52000), (14, 47, 65483)]):
        out.append(Probe(int((T0 + 0.01 + i * 0.02) * S), 0, 1, None, 2, *SERVER, *CLIENT, cwnd, 0x7FFFFFFF,
                         srtt, wnd, 65483, 0, 1000 + i, 1000 + i))
    return out


def packets() -> list[Packet]:
    """What a capture on lo saw of the exchange (outgoing copies only: one per segment)."""
    c, s = CLIENT, SERVER
    rows = [
        (T0 + 0.000050, c, s, "S"), (T0 + 0.000080, s, c, "SA"), (T0 + 0.000120, c, s, "A"),
        (T0 + 0.010000, c, s, "PA"), (T0 + 0.010050, s, c, "A"), (T0 + 0.020000, s, c, "PA"),
        (T0 + 0.020040, c, s, "A"), (T0 + 0.500010, s, c, "FA"), (T0 + 0.500040, c, s, "A"),
        (T0 + 0.600010, c, s, "FA"), (T0 + 0.600040, s, c, "A"),
    ]
    return [Packet(no, t, *a, *b, flags) for no, (t, a, b, flags) in enumerate(rows, start=1)]


SNAPSHOT_AT = T0 + 1.0


def snapshot() -> list[Sock]:
    """sock_diag one second in: the server's end waits in TIME_WAIT (59.6 s left), the listener listens."""
    return [
        Sock("LISTEN", SERVER[0], SERVER[1], "0.0.0.0", 0, 0x10),
        Sock("TIME_WAIT", *SERVER, *CLIENT, SERVER_COOKIE, Timer("timewait", 59_600)),
    ]
