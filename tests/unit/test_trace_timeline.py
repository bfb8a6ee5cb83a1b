"""Timelines: states in order, cookies joined late, TIME_WAIT folded in from sock_diag."""

from __future__ import annotations

from dataclasses import dataclass

from netlens.trace.events import Probe, ResetReceived, Retransmit, SocketDestroyed, StateChange
from netlens.trace.timeline import TimelineBook

S = 1_000_000_000
SERVER, CLIENT = ("127.0.0.1", 5000), ("127.0.0.1", 40000)


def state(t: float, sock: int, old: str, new: str, here: tuple[str, int] = SERVER,
          there: tuple[str, int] = CLIENT, cookie: int | None = None) -> StateChange:
    return StateChange(int(t * S), 0, sock, cookie, 2, *here, *there, old, new)


@dataclass
class Timer:
    name: str
    expires_ms: int


@dataclass
class Sock:  # the fields of netlens.probe.SocketInfo that the fold reads
    state: str
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int
    cookie: int | None
    timer: Timer | None = None


def server_closes_first(book: TimelineBook) -> None:
    book.add([
        state(10.0, 1, "LISTEN", "SYN_RECV"), state(10.0, 1, "SYN_RECV", "ESTABLISHED"),
        state(9.9, 2, "CLOSE", "SYN_SENT", CLIENT[:1] + (0,), SERVER),
        state(10.0, 2, "SYN_SENT", "ESTABLISHED", CLIENT, SERVER),
        state(11.0, 1, "ESTABLISHED", "FIN_WAIT1"), state(11.0, 2, "ESTABLISHED", "CLOSE_WAIT", CLIENT, SERVER),
        state(11.04, 1, "FIN_WAIT1", "FIN_WAIT2"), state(11.04, 1, "FIN_WAIT2", "CLOSE", cookie=0xA),
        SocketDestroyed(int(11.04 * S), 0, 1, 0xA, 2, *SERVER, *CLIENT),
    ])


def test_states_in_order_and_late_cookies() -> None:
    book = TimelineBook()
    server_closes_first(book)
    server, client = book.get(1), book.get(2)
    assert server is not None and client is not None
    assert server.states == ["LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE"]
    assert client.states == ["CLOSE", "SYN_SENT", "ESTABLISHED", "CLOSE_WAIT"]
    assert client.tuple == (*CLIENT, *SERVER)  # the bound port, not the first event's 0
    assert book.by_cookie(0xA) is server and server.destroyed == 11.04
    assert book.by_tuple(*CLIENT, *SERVER) is client
    assert book.bind_cookie(0xB, *CLIENT, *SERVER) is client and book.by_cookie(0xB) is client
    assert book.bind_cookie(0xC, *CLIENT, *SERVER) is None  # it has a cookie already


def test_an_orphaned_closer_waits_in_fin_wait2_then_time_wait_starts_at_the_peers_fin() -> None:
    book = TimelineBook()
    server_closes_first(book)
    tw_fin_wait2 = Sock("FIN_WAIT2", *SERVER, *CLIENT, cookie=0xF, timer=Timer("timewait", 59_000))
    assert book.fold_sockets([tw_fin_wait2], ts=11.5) == {1}
    server = book.get(1)
    assert server is not None and server.current == "FIN_WAIT2"  # the kernel's CLOSE is not the end yet
    book.add([state(12.0, 2, "CLOSE_WAIT", "LAST_ACK", CLIENT, SERVER),
              state(12.0001, 2, "LAST_ACK", "CLOSE", CLIENT, SERVER)])
    tw = Sock("TIME_WAIT", *SERVER, *CLIENT, cookie=0xF, timer=Timer("timewait", 58_000))
    book.fold_sockets([tw], ts=12.5)
    assert server.states == ["LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT"]
    time_wait = server.transitions[-1]
    assert (time_wait.old, time_wait.new, time_wait.source) == ("FIN_WAIT2", "TIME_WAIT", "sock_diag")
    assert time_wait.time == 12.0  # the peer's FIN (its -> LAST_ACK), not the handover at 11.04
    assert server.timewait is not None and server.timewait.expires == 12.5 + 58.0
    assert [s.new for s in server.kernel_transitions][-1] == "CLOSE"  # the raw account is kept
    # The timewait socket expires: gone from the next complete snapshot.
    book.fold_sockets([], ts=80.0)
    assert server.states[-2:] == ["TIME_WAIT", "CLOSE"] and server.transitions[-1].time == 70.5


def test_time_wait_without_a_traced_peer_starts_at_the_handover() -> None:
    book = TimelineBook()
    book.add([state(1.0, 7, "ESTABLISHED", "FIN_WAIT1"), state(1.1, 7, "FIN_WAIT1", "FIN_WAIT2"),
              state(1.2, 7, "FIN_WAIT2", "CLOSE")])
    book.fold_sockets([Sock("TIME_WAIT", *SERVER, *CLIENT, None, Timer("timewait", 60_000))], ts=1.3)
    timeline = book.get(7)
    assert timeline is not None and timeline.transitions[-1].time == 1.2
    assert timeline.states[-1] == "TIME_WAIT"


def test_live_sockets_lend_their_cookie_and_unrelated_ones_change_nothing() -> None:
    book = TimelineBook()
    book.add([state(1.0, 3, "SYN_RECV", "ESTABLISHED")])
    changed = book.fold_sockets([Sock("ESTABLISHED", *SERVER, *CLIENT, 0x99),
                                 Sock("ESTABLISHED", "127.0.0.1", 1, "127.0.0.1", 2, 0x98)], ts=2.0)
    assert changed == {3} and book.by_cookie(0x99) is book.get(3) and book.by_cookie(0x98) is None
    # A closed connection with no kernel CLOSE yet is not folded with a TIME_WAIT socket.
    assert book.fold_sockets([Sock("TIME_WAIT", *SERVER, *CLIENT, 0x97, Timer("timewait", 1))], 2.5) == set()


def test_retransmissions_resets_and_probes_are_kept_per_socket() -> None:
    book = TimelineBook()
    book.add([Retransmit(1 * S, 0, 4, None, 2, *CLIENT, *SERVER, "ESTABLISHED", 0),
              Probe(2 * S, 0, 4, 0x5, 2, *CLIENT, *SERVER, 10, 7, 30, 100, 200, 0, 1, 1),
              ResetReceived(3 * S, 0, 4, 0x5, 2, *CLIENT, *SERVER, "NO_SOCKET")])
    timeline = book.get(4)
    assert timeline is not None
    assert timeline.retransmits == [(1.0, "ESTABLISHED")]
    assert timeline.resets == [(3.0, "received", "NO_SOCKET")]
    assert [(p.cwnd, p.ssthresh, p.srtt_us) for p in timeline.probes] == [(10, 7, 30)]


def test_the_book_stays_bounded_and_forgets_closed_sockets_first() -> None:
    book = TimelineBook(max_timelines=8)
    book.add([state(float(n), n, "LISTEN", "SYN_RECV", ("127.0.0.1", 6000 + n)) for n in range(1, 9)])
    assert len(book) == 8
    # The ninth is the newest but already closed: over the cap, the book drops to 7/8 of it
    # at once, the closed one first, then the oldest open one.
    book.add([SocketDestroyed(9 * S, 0, 9, None, 2, *SERVER, *CLIENT)])
    assert len(book) == 7 and book.get(9) is None and book.get(1) is None
    assert all(book.get(n) is not None for n in range(2, 9))
