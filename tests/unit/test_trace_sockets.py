"""Socket identity: skaddr lifetimes, cookies learned late, resets paired, drops attributed, filters."""

from __future__ import annotations

import socket
from typing import Any

from trace_records import kernel_format, v4

from netlens.trace.events import Kind
from netlens.trace.filters import Matcher, TraceFilter
from netlens.trace.sockets import SocketDirectory

LO = v4("127.0.0.1")
A, B = 0xFFFF_0000_0000_1000, 0xFFFF_0000_0000_2000
EVERYTHING = Matcher(TraceFilter())


def raw(kind: Kind, ts: int, skaddr: int, cookie: int = 0, sport: int = 40000, dport: int = 5000,
        *detail: Any, saddr: bytes = LO, daddr: bytes = LO) -> tuple[Any, ...]:
    return (kind, ts, 0, skaddr, cookie, socket.AF_INET, saddr, sport, daddr, dport, *detail)


def test_a_cookie_learned_later_in_the_batch_reaches_the_earlier_events() -> None:
    directory = SocketDirectory()
    batch = [raw(Kind.STATE, 1, A, 0, 0, 5000, "CLOSE", "SYN_SENT"),
             raw(Kind.STATE, 2, A, 0, 40000, 5000, "SYN_SENT", "CLOSE"),
             raw(Kind.DESTROY, 3, A, 0x77)]
    records, filtered = directory.resolve(batch, EVERYTHING)
    assert filtered == 0
    assert [r[3] for r in records] == [1, 1, 1]  # one socket number for the whole lifetime
    assert [r[4] for r in records] == [0x77, 0x77, 0x77]
    assert records[0][7] == 0  # the kernel's own tuple is kept: port 0 before the bind


def test_a_destroyed_address_starts_a_new_socket_when_reused() -> None:
    directory = SocketDirectory()
    first, _ = directory.resolve([raw(Kind.STATE, 1, A, 0, 1, 2, "ESTABLISHED", "CLOSE"),
                                  raw(Kind.DESTROY, 2, A, 0x10)], EVERYTHING)
    second, _ = directory.resolve([raw(Kind.STATE, 3, A, 0, 7, 8, "CLOSE", "LISTEN")], EVERYTHING)
    assert first[0][3] != second[0][3]
    assert second[0][4] is None  # the new socket's cookie is not the old one's


def test_a_different_cookie_at_the_same_address_is_another_socket() -> None:
    directory = SocketDirectory()
    old, _ = directory.resolve([raw(Kind.PROBE, 1, A, 0x10, 1, 2, *range(8))], EVERYTHING)
    new, _ = directory.resolve([raw(Kind.PROBE, 2, A, 0x20, 3, 4, *range(8))], EVERYTHING)
    assert old[0][3] != new[0][3] and new[0][4] == 0x20


def test_noted_records_keep_numbers_cookies_and_ends_for_the_records_built_later() -> None:
    directory = SocketDirectory()
    directory.note(A, 0, False)  # a state change seen only by its address
    directory.note(A, 0x33, False)  # a tcp_probe: the cookie
    records, _ = directory.resolve([raw(Kind.STATE, 5, A, 0, 1, 2, "ESTABLISHED", "FIN_WAIT1")], EVERYTHING)
    assert records[0][4] == 0x33  # the cookie learned from a record nobody decoded
    directory.note(A, 0x33, True)  # its destroy: the address is free again
    reused, _ = directory.resolve([raw(Kind.STATE, 9, A, 0, 3, 4, "CLOSE", "SYN_SENT")], EVERYTHING)
    assert reused[0][3] != records[0][3] and reused[0][4] is None
    directory.note(B, 0x44, True)  # the end of a socket never seen starts nothing
    assert len(directory) == 1


def test_a_received_reset_gets_the_local_senders_reason_in_either_order() -> None:
    directory = SocketDirectory()
    sent = raw(Kind.RESET_SENT, 10, B, 0, 5000, 40000, "CLOSE", "TCP_ABORT_ON_CLOSE", 0)
    received = raw(Kind.RESET_RECEIVED, 9, A, 0x5, 40000, 5000, None)
    records, _ = directory.resolve([received, sent], EVERYTHING)
    by_kind = {r[0]: r for r in records}
    assert by_kind[Kind.RESET_RECEIVED][-1] == "TCP_ABORT_ON_CLOSE"
    assert by_kind[Kind.RESET_SENT][10:] == ("CLOSE", "TCP_ABORT_ON_CLOSE")  # the packet address is gone
    # A reset from a host we do not trace has no reason.
    lone, _ = directory.resolve([raw(Kind.RESET_RECEIVED, 5 * 10**9, A, 0x5, 40001, 5000, None)], EVERYTHING)
    assert lone[0][-1] is None


def test_drops_are_attributed_to_their_socket_or_to_the_reset_that_answered_them() -> None:
    directory = SocketDirectory()
    directory.resolve([raw(Kind.STATE, 1, A, 0x9, 40000, 5000, "SYN_SENT", "ESTABLISHED")], EVERYTHING)
    owned = raw(Kind.DROP, 2, A, 0, 0, 0, "TCP_OLD_DATA", 0x1, saddr=b"", daddr=b"")
    answer = raw(Kind.RESET_SENT, 3, 0, 0, 6000, 41000, "UNKNOWN", "NO_SOCKET", 0xBEEF)
    unowned = raw(Kind.DROP, 4, 0, 0, 0, 0, "NO_SOCKET", 0xBEEF, saddr=b"", daddr=b"")
    stranger = raw(Kind.DROP, 5, 0, 0, 0, 0, "NETFILTER_DROP", 0xF00D, saddr=b"", daddr=b"")
    records, _ = directory.resolve([owned, answer, unowned, stranger], EVERYTHING)
    assert records[0][3:10] == (1, 0x9, socket.AF_INET, LO, 40000, LO, 5000)
    assert records[2][3] == 0 and records[2][6:10] == (LO, 6000, LO, 41000)
    assert records[3][3:10] == (0, None, socket.AF_INET, b"", 0, b"", 0)


def test_the_filter_keeps_every_event_of_a_socket_that_matched_once() -> None:
    directory = SocketDirectory()
    client_port = Matcher(TraceFilter.of(ports=[40000]))
    batch = [raw(Kind.STATE, 1, A, 0, 0, 5000, "CLOSE", "SYN_SENT"),  # port 0: does not match by itself
             raw(Kind.STATE, 2, A, 0, 40000, 5000, "SYN_SENT", "ESTABLISHED"),
             raw(Kind.STATE, 3, B, 0, 5000, 40001, "LISTEN", "SYN_RECV")]
    records, filtered = directory.resolve(batch, client_port)
    assert [r[1] for r in records] == [1, 2] and filtered == 1
    later, _ = directory.resolve([raw(Kind.DESTROY, 4, A, 0x3, 40000, 0)], client_port)
    assert len(later) == 1


def test_filters_by_address_and_cookie() -> None:
    directory = SocketDirectory()
    other = v4("10.1.2.3")
    by_address = Matcher(TraceFilter.of(addresses=["10.1.2.3"]))
    records, _ = directory.resolve([raw(Kind.STATE, 1, A, 0, 1, 2, "A", "B"),
                                    raw(Kind.STATE, 2, B, 0, 1, 2, "A", "B", daddr=other)], by_address)
    assert [r[1] for r in records] == [2]
    by_cookie = Matcher(TraceFilter.of(cookies=[0x42]))
    records, _ = SocketDirectory().resolve([raw(Kind.STATE, 1, A, 0, 1, 2, "A", "B"),
                                            raw(Kind.DESTROY, 2, A, 0x42),
                                            raw(Kind.DESTROY, 3, B, 0x43)], by_cookie)
    assert [r[1] for r in records] == [1, 2]


def test_kernel_filter_expressions_use_only_fields_the_event_has() -> None:
    ports = TraceFilter.of(ports=[5000, 65432], cookies=[7], addresses=["127.0.0.1"])
    state = ports.kernel_expression(kernel_format("sock", "inet_sock_set_state"))
    assert state == ("(protocol == 6) && (sport == 5000 || dport == 5000 || sport == 65432 || dport == 65432) && "
                     "(family == 10 || saddr == 0x100007f || daddr == 0x100007f)")
    probe = ports.kernel_expression(kernel_format("tcp", "tcp_probe"))
    assert "sock_cookie == 7" in probe and "saddr ==" not in probe  # 28-byte sockaddr: not comparable
    assert "dport == 0" in ports.kernel_expression(kernel_format("tcp", "tcp_destroy_sock"))
    assert ports.kernel_expression(kernel_format("tcp", "tcp_send_reset")) == ""
    drop = TraceFilter().kernel_expression(kernel_format("skb", "kfree_skb"))
    assert drop.startswith("(protocol == 2048 || protocol == 34525) && (reason != 2)")
    assert "reason != " in drop.split("&&")[-1]  # QUEUE_PURGE too


def test_filter_validation_and_description() -> None:
    assert TraceFilter().describe() == "every TCP socket" and TraceFilter().everything
    assert TraceFilter.of([80, 443], ["::1"]).describe() == "ports 80, 443 and address ::1"
    for bad in ({"ports": [0]}, {"ports": [70000]}, {"addresses": ["not-an-ip"]}):
        try:
            TraceFilter.of(**bad)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")
    mapped = Matcher(TraceFilter.of(addresses=["127.0.0.1"]))
    assert mapped.matches(bytes(10) + b"\xff\xff" + LO, 1, b"", 2, None)


def test_destroys_of_sockets_never_seen_cost_no_socket_number() -> None:
    directory = SocketDirectory()
    ours = Matcher(TraceFilter.of(ports=[5000]))
    strangers = [raw(Kind.DESTROY, t, 0xF000 + t, 0x100 + t, 33000 + t, 0) for t in range(5)]
    records, filtered = directory.resolve([*strangers, raw(Kind.STATE, 9, A, 0, 0, 5000, "CLOSE", "SYN_SENT")], ours)
    assert filtered == 5 and [r[3] for r in records] == [1] and len(directory) == 1
