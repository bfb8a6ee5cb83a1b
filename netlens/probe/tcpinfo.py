"""The kernel's ``struct tcp_info`` (``linux/tcp.h``): the record, and its decoding by length.

Each kernel release appended fields to the struct and reports the size it
has, so a reply from an older kernel is a prefix of the layout below: every
field that ends past the reply's length is ``None``. Newer kernels may send
more than this layout knows (6.18 adds ECN byte counters); the extra tail is
ignored.
"""

from __future__ import annotations

import struct
import sys
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from netlens.probe.fastbuild import fast_builder


@dataclass(frozen=True, slots=True)
class TcpInfo:
    """The kernel's ``struct tcp_info`` for one socket (``ss -i``), field names as in ``linux/tcp.h`` minus ``tcpi_``.

    The struct has grown with the kernel; a field the running kernel does not
    report is ``None``. Counts of "segments" are TCP segments (packets), not
    bytes. ``snd_cwnd`` is the congestion window in segments, ``snd_ssthresh``
    the slow-start threshold in segments; ``rcv_ssthresh``, ``rcv_space``,
    ``snd_mss``, ``rcv_mss``, ``advmss``, ``pmtu``, ``snd_wnd`` and
    ``rcv_wnd`` are bytes.
    """

    ca_state: int | None  # congestion-avoidance state: 0 Open, 1 Disorder, 2 CWR, 3 Recovery, 4 Loss
    retransmits: int | None  # consecutive RTO retransmissions of the current segment (ss: "retrans:N/")
    probes: int | None  # unanswered zero-window / keepalive probes
    backoff: int | None  # RTO exponential backoff count
    options: int | None  # TCPI_OPT_* bits: 1 timestamps, 2 SACK, 4 wscale, 8 ECN, 16 ECN seen, 32 SYN data
    snd_wscale: int | None
    rcv_wscale: int | None
    delivery_rate_app_limited: bool | None
    fastopen_client_fail: int | None
    rto_us: int | None
    ato_us: int | None  # delayed-ACK timeout
    snd_mss: int | None
    rcv_mss: int | None
    unacked: int | None  # segments sent and not yet acknowledged (on a listener: its accept queue)
    sacked: int | None  # segments SACKed (on a listener: its backlog limit)
    lost: int | None  # segments considered lost
    retrans: int | None  # retransmitted segments still unacknowledged
    fackets: int | None
    last_data_sent_ms: int | None  # time since the last data segment was sent
    last_ack_sent_ms: int | None  # the kernel never fills this one (always 0)
    last_data_recv_ms: int | None
    last_ack_recv_ms: int | None
    pmtu: int | None
    rcv_ssthresh: int | None
    rtt_us: int | None  # smoothed round-trip time
    rttvar_us: int | None
    snd_ssthresh: int | None
    snd_cwnd: int | None
    advmss: int | None
    reordering: int | None
    rcv_rtt_us: int | None
    rcv_space: int | None
    total_retrans: int | None  # retransmitted segments over the connection's life
    pacing_rate_bytes_per_s: int | None
    max_pacing_rate_bytes_per_s: int | None
    bytes_acked: int | None
    bytes_received: int | None
    segs_out: int | None
    segs_in: int | None
    notsent_bytes: int | None  # bytes in the send queue not yet sent
    min_rtt_us: int | None
    data_segs_in: int | None
    data_segs_out: int | None
    delivery_rate_bytes_per_s: int | None
    busy_time_us: int | None
    rwnd_limited_us: int | None
    sndbuf_limited_us: int | None
    delivered: int | None
    delivered_ce: int | None
    bytes_sent: int | None  # includes retransmissions
    bytes_retrans: int | None
    dsack_dups: int | None
    reord_seen: int | None
    rcv_ooopack: int | None
    snd_wnd: int | None  # the peer's advertised receive window, scaled
    rcv_wnd: int | None  # our advertised receive window, scaled
    rehash: int | None
    total_rto: int | None
    total_rto_recoveries: int | None
    total_rto_time_ms: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict (``None`` for fields the kernel did not give)."""
        return dict(zip(self.__slots__, _TCPINFO_VALUES(self), strict=True))


_build_tcp_info = fast_builder(TcpInfo)
# Every field at once, in one C call: to_dict runs for each socket of ``conns --json``.
_TCPINFO_VALUES = attrgetter(*TcpInfo.__slots__)

#: ``struct tcp_info`` member by member, in declaration order: (name, struct
#: format character). ``wscale`` and ``flags`` are the bytes that hold bit-fields.
# '=' (native order, no automatic padding) is right because the kernel laid
# the members out with no holes: every u64 already sits on an 8-byte offset.
# The comment gives the kernel release that appended each group.
TCP_INFO_LAYOUT: tuple[tuple[str, str], ...] = (
    ("state", "B"),  # duplicate of the socket state; SocketInfo has it
    ("ca_state", "B"),
    ("retransmits", "B"),
    ("probes", "B"),
    ("backoff", "B"),
    ("options", "B"),
    ("wscale", "B"),  # snd_wscale:4, rcv_wscale:4
    ("flags", "B"),  # delivery_rate_app_limited:1, fastopen_client_fail:2
    ("rto_us", "I"),
    ("ato_us", "I"),
    ("snd_mss", "I"),
    ("rcv_mss", "I"),
    ("unacked", "I"),
    ("sacked", "I"),
    ("lost", "I"),
    ("retrans", "I"),
    ("fackets", "I"),
    ("last_data_sent_ms", "I"),
    ("last_ack_sent_ms", "I"),
    ("last_data_recv_ms", "I"),
    ("last_ack_recv_ms", "I"),
    ("pmtu", "I"),
    ("rcv_ssthresh", "I"),
    ("rtt_us", "I"),
    ("rttvar_us", "I"),
    ("snd_ssthresh", "I"),
    ("snd_cwnd", "I"),
    ("advmss", "I"),
    ("reordering", "I"),
    ("rcv_rtt_us", "I"),
    ("rcv_space", "I"),
    ("total_retrans", "I"),  # 104 bytes: the 2.6 - 3.14 struct
    ("pacing_rate_bytes_per_s", "Q"),  # 3.15
    ("max_pacing_rate_bytes_per_s", "Q"),
    ("bytes_acked", "Q"),  # 4.1
    ("bytes_received", "Q"),
    ("segs_out", "I"),  # 4.2
    ("segs_in", "I"),
    ("notsent_bytes", "I"),  # 4.6
    ("min_rtt_us", "I"),
    ("data_segs_in", "I"),
    ("data_segs_out", "I"),
    ("delivery_rate_bytes_per_s", "Q"),  # 4.9
    ("busy_time_us", "Q"),  # 4.10
    ("rwnd_limited_us", "Q"),
    ("sndbuf_limited_us", "Q"),
    ("delivered", "I"),  # 4.18
    ("delivered_ce", "I"),
    ("bytes_sent", "Q"),  # 4.19
    ("bytes_retrans", "Q"),
    ("dsack_dups", "I"),
    ("reord_seen", "I"),  # 5.0
    ("rcv_ooopack", "I"),  # 5.4
    ("snd_wnd", "I"),
    ("rcv_wnd", "I"),  # 6.2
    ("rehash", "I"),
    ("total_rto", "H"),  # 6.7
    ("total_rto_recoveries", "H"),
    ("total_rto_time_ms", "I"),
)
_NAMES = tuple(name for name, _ in TCP_INFO_LAYOUT)
_FULL = struct.Struct("=" + "".join(fmt for _, fmt in TCP_INFO_LAYOUT))
#: Size in bytes of the part of ``struct tcp_info`` this module decodes (248: Linux 6.7's struct).
TCP_INFO_KNOWN_SIZE: int = _FULL.size
# _OFFSETS[i] / _ENDS[i]: where member i starts / ends. A reply of length L
# holds members [0, n) with n = bisect_right(_ENDS, L).
_ENDS: tuple[int, ...] = tuple(
    struct.calcsize("=" + "".join(fmt for _, fmt in TCP_INFO_LAYOUT[: i + 1])) for i in range(len(TCP_INFO_LAYOUT))
)
_OFFSETS: tuple[int, ...] = (0, *_ENDS[:-1])
_NONES: tuple[None, ...] = (None,) * len(TCP_INFO_LAYOUT)
_ZEROS = bytes(_FULL.size)
_DELIVERY_RATE_END = _ENDS[_NAMES.index("delivery_rate_bytes_per_s")]

# C bit-fields are allocated from the least significant bit on little-endian
# ABIs and from the most significant bit on big-endian ones.
_LITTLE = sys.byteorder == "little"


def _split_bitfields(wscale: int | None, flags: int | None, length: int) -> tuple[Any, Any, Any, Any]:
    """Return (snd_wscale, rcv_wscale, delivery_rate_app_limited, fastopen_client_fail) from the two packed bytes."""
    if wscale is None or flags is None:
        return (None, None, None, None)
    if _LITTLE:
        snd, rcv = wscale & 0x0F, wscale >> 4
        app_limited, fo_fail = flags & 0x01, (flags >> 1) & 0x03
    else:
        snd, rcv = wscale >> 4, wscale & 0x0F
        app_limited, fo_fail = flags >> 7, (flags >> 5) & 0x03
    # Before 4.9 the app-limited bit did not exist (its byte was padding).
    limited = bool(app_limited) if length >= _DELIVERY_RATE_END else None
    return (snd, rcv, limited, fo_fail)


def parse_tcp_info(buf: bytes | bytearray | memoryview, offset: int = 0, length: int | None = None) -> TcpInfo:
    """Decode a ``struct tcp_info`` of ``length`` bytes found at ``offset`` in ``buf``.

    ``length`` defaults to the rest of ``buf``. Fields the struct is too short
    to hold are ``None``; bytes past :data:`TCP_INFO_KNOWN_SIZE` are ignored.
    """
    if length is None:
        length = len(buf) - offset
    if length >= _FULL.size:
        v = _FULL.unpack_from(buf, offset)  # every current kernel: one unpack, no copy
    else:
        # Older kernel: pad to the known size, then blank what was padding.
        present = bisect_right(_ENDS, length)
        v = _FULL.unpack_from(bytes(buf[offset : offset + length]) + _ZEROS[length:])
        v = v[:present] + _NONES[present:]
    return _build_tcp_info(v[1], v[2], v[3], v[4], v[5], *_split_bitfields(v[6], v[7], length), *v[8:])


def field_reader(
    names: tuple[str, ...],
) -> Callable[[bytes | bytearray | memoryview, int, int], tuple[Any, ...]]:
    """Return ``read(buf, offset, length)`` that decodes only the members ``names`` of a struct tcp_info.

    One precompiled unpack with pad bytes skips the rest, so it is several
    times cheaper than :func:`parse_tcp_info`; the change tracker uses it to
    compare counters across thousands of sockets. ``names`` must be raw
    members (not the split bit-fields) in struct order, so the unpacked tuple
    is the answer as it stands. A struct too short for them all returns
    ``None`` for the missing ones.
    """
    indexes = [_NAMES.index(name) for name in names]
    if indexes != sorted(set(indexes)) or not indexes or min(indexes) < 1 or {6, 7} & set(indexes):
        raise ValueError(f"not distinct raw struct tcp_info members in struct order: {names}")
    fmt, pos = "=", 0
    for index in indexes:
        gap = _OFFSETS[index] - pos
        fmt += (f"{gap}x" if gap else "") + TCP_INFO_LAYOUT[index][1]
        pos = _ENDS[index]
    reader = struct.Struct(fmt)
    needed = reader.size

    def read(buf: bytes | bytearray | memoryview, offset: int, length: int) -> tuple[Any, ...]:
        if length >= needed:
            return reader.unpack_from(buf, offset)
        info = parse_tcp_info(buf, offset, length)
        return tuple(getattr(info, name) for name in names)

    return read
