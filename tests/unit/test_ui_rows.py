"""What a connections row says and where it goes: the server's facts, row order, ages, word wrapping."""

from __future__ import annotations

from rich.text import Text

from netlens.probe import ConnectionRow, RowStatus, SocketInfo, SocketTimer
from netlens.server.bus import make_record
from netlens.server.events import Accepted, CloseCause, Closed, ControlApplied, PeerShutdown, Received
from netlens.ui.conn_rows import (
    CLOSING,
    LISTENING,
    OPEN,
    WAITING,
    Placed,
    age_cell,
    born,
    compact_size,
    order,
    state_cell,
)
from netlens.ui.facts import FactBook
from netlens.ui.fit import fit_line, wrap_words

SERVER = ("127.0.0.1", 65432)
CLIENT = ("127.0.0.1", 50000)
SERVER_END = (*SERVER, *CLIENT)
CLIENT_END = (*CLIENT, *SERVER)


def sock(state: str, local: tuple[str, int] = SERVER, remote: tuple[str, int] = CLIENT,
         timer: SocketTimer | None = None) -> SocketInfo:
    return SocketInfo(state, "IPv4", local[0], local[1], remote[0], remote[1], 0, 0, timer=timer)


def row(socket: SocketInfo, status: RowStatus = RowStatus.UNCHANGED, first_seen: float = 100.0) -> ConnectionRow:
    return ConnectionRow(socket.key, socket, status, frozenset(), first_seen, first_seen,
                         None if status is not RowStatus.CLOSED else first_seen + 5)


def book(*records: tuple[object, ...]) -> tuple[FactBook, set[tuple[str, int, str, int]]]:
    facts = FactBook()
    touched = facts.ingest([make_record(Accepted, 100.0, 1, CLIENT, SERVER), *records])  # type: ignore[arg-type]
    return facts, touched


def test_an_abort_is_rst_sent_on_the_server_end_and_rst_received_on_the_client_end() -> None:
    facts, touched = book(make_record(Closed, 105.0, 1, CloseCause.CONTROL, "aborted by the user (RST)"))
    assert touched == {SERVER_END, CLIENT_END}
    server, client = facts.fact(SERVER_END, 100.0), facts.fact(CLIENT_END, 100.0)
    assert server is not None and client is not None
    assert (server.state, server.final, server.reset) == ("RST sent", True, True)
    assert (client.state, client.final) == ("RST received", True)
    assert "ECONNRESET" in client.sentence


def test_a_close_is_closed_by_server_and_fin_received() -> None:
    facts, _ = book(make_record(Closed, 105.0, 1, CloseCause.SERVER, "response sent"))
    assert facts.fact(SERVER_END, 100.0).state == "CLOSED by server"  # type: ignore[union-attr]
    client = facts.fact(CLIENT_END, 100.0)
    assert client is not None and client.state == "FIN received" and not client.final


def test_a_peer_reset_and_half_closes() -> None:
    facts, _ = book(make_record(Closed, 105.0, 1, CloseCause.RESET, "connection reset by peer"))
    assert facts.fact(SERVER_END, 0).state == "RST received"  # type: ignore[union-attr]
    assert facts.fact(CLIENT_END, 0).state == "RST sent"  # type: ignore[union-attr]
    facts, _ = book(make_record(PeerShutdown, 103.0, 1))
    assert facts.fact(SERVER_END, 0).state == "FIN received"  # type: ignore[union-attr]
    facts, _ = book(make_record(ControlApplied, 103.0, 1, "shutdown(SHUT_WR)", "FIN sent; still reading"))
    assert facts.fact(SERVER_END, 0).state == "FIN sent"  # type: ignore[union-attr]
    assert facts.fact(CLIENT_END, 0).state == "FIN received"  # type: ignore[union-attr]


def test_other_events_and_unknown_connections_make_no_facts() -> None:
    facts, touched = book(make_record(Received, 101.0, 1, 5, b"hello"),
                          make_record(Closed, 105.0, 7, CloseCause.SERVER, "response sent"))
    assert touched == set() and facts.fact(SERVER_END, 0) is None


def test_a_fact_older_than_the_connection_belongs_to_an_earlier_one() -> None:
    facts, _ = book(make_record(Closed, 105.0, 1, CloseCause.SERVER, "response sent"))
    assert facts.fact(SERVER_END, since=106.0) is None
    facts.forget_before(200.0)
    assert facts.fact(SERVER_END, since=0) is None


def test_state_cell_takes_the_newer_of_kernel_and_server() -> None:
    facts, _ = book(make_record(Closed, 105.0, 1, CloseCause.CONTROL, "aborted by the user (RST)"))
    fact = facts.fact(SERVER_END, 100.0)
    established = row(sock("ESTABLISHED"))
    # The snapshot is older than the event: the event is the truth, in red.
    cell = state_cell(established, RowStatus.UNCHANGED, fact, kernel_ts=104.0)
    assert (cell.text, cell.source, cell.ended) == ("RST sent", "server", 1) and "red" in cell.style
    # A snapshot newer than the event: the kernel's state again.
    waiting = row(sock("TIME_WAIT"))
    cell = state_cell(waiting, RowStatus.CHANGED, fact, kernel_ts=106.0)
    assert (cell.text, cell.source, cell.group) == ("TIME_WAIT", "kernel", WAITING)
    # The kernel forgot the socket: the RST says why.
    gone = row(sock("ESTABLISHED"), RowStatus.CLOSED)
    assert state_cell(gone, RowStatus.CLOSED, fact, kernel_ts=106.0).text == "RST sent"
    assert state_cell(gone, RowStatus.CLOSED, None, kernel_ts=106.0).text == "CLOSED"


def test_highlights_fade_into_the_state_colour() -> None:
    listening = row(sock("LISTEN", remote=("0.0.0.0", 0)))
    new = state_cell(listening, RowStatus.NEW, None, 100.0)
    old = state_cell(listening, RowStatus.UNCHANGED, None, 100.0)
    assert "green" in new.style and new.tint == "bold green"
    assert old.style == "bold cyan" and old.tint == ""


def test_age_says_where_it_comes_from() -> None:
    assert age_cell(sock("ESTABLISHED"), first_seen=100.0, created=90.0, now=102.0) == "12s"
    tw = sock("TIME_WAIT", timer=SocketTimer("timewait", 42_000, 0))
    assert age_cell(tw, first_seen=100.0, created=None, now=102.0) == "42s left"
    # Gone before its timer ran out (a new connection on its 4-tuple): its last timer is no longer true.
    assert age_cell(tw, first_seen=100.0, created=90.0, now=102.0, gone=True) == "ended early"
    assert age_cell(sock("ESTABLISHED"), first_seen=100.0, created=90.0, now=102.0, gone=True) == "12s"
    assert age_cell(sock("CLOSE_WAIT"), first_seen=100.0, created=None, now=112.0) == "≥12s"


def test_order_listener_open_newest_first_closing_time_wait_and_pairs_together() -> None:
    def placed(key: str, s: SocketInfo, group: int, when: float) -> Placed:
        return Placed(key, s, group, when)

    old_c, new_c, tw_c = ("127.0.0.1", 40001), ("127.0.0.1", 40002), ("127.0.0.1", 40003)
    rows = [
        placed("tw", sock("TIME_WAIT", remote=tw_c), WAITING, 300.0),
        placed("old-client", sock("ESTABLISHED", local=old_c, remote=SERVER), OPEN, 10.0),
        placed("closing", sock("FIN_WAIT2", remote=("127.0.0.1", 40009)), CLOSING, 50.0),
        placed("new-server", sock("ESTABLISHED", remote=new_c), OPEN, 20.0),
        placed("old-server", sock("ESTABLISHED", remote=old_c), OPEN, 10.0),
        placed("listen", sock("LISTEN", remote=("0.0.0.0", 0)), LISTENING, 0.0),
        placed("new-client", sock("ESTABLISHED", local=new_c, remote=SERVER), OPEN, 20.0),
    ]
    assert order(rows, SERVER[1]) == ["listen", "new-server", "new-client", "old-server", "old-client",
                                      "closing", "tw"]


def test_time_wait_newest_is_the_one_with_most_time_left() -> None:
    soon = sock("TIME_WAIT", timer=SocketTimer("timewait", 1_000, 0))
    late = sock("TIME_WAIT", timer=SocketTimer("timewait", 59_000, 0))
    assert born(late, 0.0, None, 100.0) > born(soon, 0.0, None, 100.0)


def test_wrap_words_never_cuts_a_word_that_fits_a_line() -> None:
    text = Text("sent 17.0 KiB, acked 6.2 MiB, received 124.1 KiB, retrans 0 B")
    for width in range(8, 70):
        lines = [line.plain for line in wrap_words(text, width)]
        assert all(len(line) <= width for line in lines)
        assert " ".join(lines).split() == text.plain.split()
    assert [line.plain for line in wrap_words(Text("abcdefghijklmnopqrst"), 8)] == ["abcdefgh", "ijklmnop", "qrst"]


def test_compact_sizes() -> None:
    assert [compact_size(n) for n in (None, 0, 512, 17_000, 6_500_000, 2 << 30)] == ["-", "0", "512", "17K",
                                                                                    "6.2M", "2.0G"]


def test_fit_line_drops_whole_parts_and_keeps_the_tail() -> None:
    parts = [(Text(" netlens "), 10), (Text("  accepted 1,234"), 3), (Text("  errors 0"), 5)]
    line = fit_line(parts, 30, Text("  ? help"))
    assert line.plain.endswith("? help") and "accepted" not in line.plain and "errors 0" in line.plain
    assert fit_line(parts, 80, Text("  ? help")).plain.startswith(" netlens   accepted 1,234  errors 0")


def test_fact_sentences_are_filled_in_when_asked_and_stale_facts_go() -> None:
    from netlens.server.bus import make_record
    from netlens.server.events import Accepted, CloseCause, Closed
    from netlens.ui.facts import FactBook

    book = FactBook()
    local, peer = ("127.0.0.1", 9000), ("127.0.0.1", 51000)
    book.ingest([make_record(Accepted, 100.0, 7, peer, local)])
    touched = book.ingest([make_record(Closed, 101.0, 7, CloseCause.SERVER, "done\x1b[2J")])
    server_end, client_end = ("127.0.0.1", 9000, "127.0.0.1", 51000), ("127.0.0.1", 51000, "127.0.0.1", 9000)
    assert touched == {server_end, client_end}
    fact = book.fact(server_end, since=0.0)
    assert fact is not None and fact.state == "CLOSED by server" and fact.final
    assert "The server closed its socket at" in fact.sentence and "\x1b" not in fact.sentence
    assert book.fact(client_end, since=0.0) is not None
    book.forget_before(101.5)
    assert book.fact(server_end, since=0.0) is None and book.fact(client_end, since=0.0) is None
