"""Tracepoint format files: fields, symbol tables and the struct built from them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trace_records import kernel_format, record

from netlens.trace.decode import state_names
from netlens.trace.formats import FieldReader, FormatError, parse_format


def test_fields_are_read_with_their_offsets_sizes_and_arrays() -> None:
    fmt = kernel_format("sock", "inet_sock_set_state")
    assert fmt.full_name == "sock:inet_sock_set_state"
    skaddr, saddr, saddr_v6 = fmt.field("skaddr"), fmt.field("saddr"), fmt.field("saddr_v6")
    assert skaddr is not None and (skaddr.offset, skaddr.size, skaddr.array) == (8, 8, None)
    assert saddr is not None and (saddr.size, saddr.array, saddr.code) == (4, 4, "4s")
    assert saddr_v6 is not None and saddr_v6.array == 16
    assert fmt.field("sock_cookie") is None  # this kernel's set_state event has no cookie (facts checked)
    oldstate = fmt.field("oldstate")
    assert oldstate is not None and oldstate.signed and oldstate.code == "i"


def test_symbol_tables_come_from_the_print_format() -> None:
    states = kernel_format("sock", "inet_sock_set_state").symbols("newstate")
    assert states[1] == "TCP_ESTABLISHED" and states[12] == "TCP_NEW_SYN_RECV"
    reasons = kernel_format("tcp", "tcp_send_reset").symbols("reason")
    assert reasons[1] == "NO_SOCKET" and "TCP_ABORT_ON_CLOSE" in reasons.values()
    drops = kernel_format("skb", "kfree_skb").symbols("reason")
    assert {"NOT_SPECIFIED", "NO_SOCKET", "TCP_OLD_DATA", "NETFILTER_DROP"} <= set(drops.values())


def test_symbolic_identifiers_fall_back_to_the_abi_state_numbers() -> None:
    # tcp_retransmit_skb prints { TCP_ESTABLISHED, "TCP_ESTABLISHED" }: no numbers in the file.
    fmt = kernel_format("tcp", "tcp_retransmit_skb")
    assert fmt.symbols("state") == {}
    names = state_names(fmt, "state")
    assert names[1] == "ESTABLISHED" and names[7] == "CLOSE" and names[11] == "CLOSING"


def test_a_reader_unpacks_exactly_the_fields_asked_for() -> None:
    fmt = kernel_format("tcp", "tcp_probe")
    reader = FieldReader(fmt, ["srtt", "snd_cwnd", "sock_cookie", "no_such_field"])
    raw = record(fmt, snd_cwnd=10, srtt=17, sock_cookie=0x1234_5678_9ABC)
    values = reader.unpack(raw, 0)
    assert reader.index("no_such_field") is None
    assert values[reader.index("snd_cwnd")] == 10  # type: ignore[index]
    assert values[reader.index("srtt")] == 17  # type: ignore[index]
    assert values[reader.index("sock_cookie")] == 0x1234_5678_9ABC  # type: ignore[index]
    assert reader.size <= len(raw)


def test_a_field_moved_by_another_kernel_is_read_at_its_new_offset() -> None:
    text = kernel_format("tcp", "tcp_destroy_sock")
    original = (  # the same fields, with an extra 8-byte field inserted before skaddr
        "name: tcp_destroy_sock\nID: 77\nformat:\n"
        "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
        "\tfield:u64 extra;\toffset:8;\tsize:8;\tsigned:0;\n"
        "\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n"
        "\tfield:__u64 sock_cookie;\toffset:24;\tsize:8;\tsigned:0;\n"
    )
    moved = parse_format(original, "tcp")
    assert moved.id == 77 and text.field("skaddr").offset == 8  # type: ignore[union-attr]
    reader = FieldReader(moved, ["skaddr", "sock_cookie"])
    values = reader.unpack(record(moved, skaddr=0xFFFF_8881_0000_1000, sock_cookie=42), 0)
    assert values[reader.index("skaddr")] == 0xFFFF_8881_0000_1000  # type: ignore[index]
    assert values[reader.index("sock_cookie")] == 42  # type: ignore[index]


def test_text_that_is_not_a_format_is_refused() -> None:
    with pytest.raises(FormatError):
        parse_format("hello", "tcp")
    with pytest.raises(FormatError):
        parse_format("name: x\nID: 1\n\tfield:;\toffset:0;\tsize:2;\tsigned:0;\n", "tcp")


@given(st.text(max_size=400))
def test_any_text_parses_or_raises_format_error(text: str) -> None:
    try:
        fmt = parse_format(text, "tcp")
    except FormatError:
        return
    for field in fmt.fields:
        fmt.symbols(field.name)
