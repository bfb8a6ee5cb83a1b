"""Plain-text forms of trace events: one line each, for ``netlens trace`` and the UI's events panel.

Everything returned is escaped with :func:`netlens.textsafe.safe_str`: the
names come from the kernel's format files and addresses from ``inet_ntop``,
but a terminal line is no place to trust anything.
"""

from __future__ import annotations

import time

from netlens.display import endpoint
from netlens.textsafe import safe_str
from netlens.trace.events import (
    CongestionState,
    Drop,
    Probe,
    ResetReceived,
    ResetSent,
    Retransmit,
    StateChange,
    TraceEvent,
)

INFINITE_SSTHRESH = 0x7FFFFFFF  # TCP_INFINITE_SSTHRESH: slow start has not ended yet


def clock_us(ts_ns: int) -> str:
    """Local time of day with microseconds: ``14:03:07.412345``."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{ns // 1000:06d}"


def _end(addr: str, port: int) -> str:
    if not addr:
        return "?" if not port else f"?:{port}"
    return endpoint(addr, port)


def detail(event: TraceEvent) -> str:
    """What happened, in a few words: ``SYN_SENT → ESTABLISHED``, ``reason NO_SOCKET``..."""
    if isinstance(event, StateChange):
        return f"{event.old} → {event.new}"
    if isinstance(event, Retransmit):
        return f"in {event.state}" + (f", transmit failed ({event.err})" if event.err else "")
    if isinstance(event, ResetSent):
        return f"reason {event.reason or 'unknown'}, sender in {event.state}"
    if isinstance(event, ResetReceived):
        return f"sender's reason {event.reason}" if event.reason else "sender not on this host"
    if isinstance(event, Probe):
        ssthresh = "∞" if event.ssthresh >= INFINITE_SSTHRESH else str(event.ssthresh)
        return (f"cwnd {event.cwnd} ssthresh {ssthresh} srtt {event.srtt_us}µs snd_wnd {event.snd_wnd} "
                f"rcv_wnd {event.rcv_wnd} len {event.data_len}")
    if isinstance(event, CongestionState):
        return f"→ {event.state}"
    if isinstance(event, Drop):
        return f"reason {event.reason}"
    return ""


def line(event: TraceEvent) -> str:
    """One terminal line: time, event, ``src → dst``, detail, socket number and cookie."""
    ends = f"{_end(event.src, event.sport)} → {_end(event.dst, event.dport)}"
    who = f"sock {event.sock}" if event.sock else "no socket"
    if event.cookie is not None:
        who += f" cookie {event.cookie:#x}"
    text = f"{clock_us(event.ts_ns)}  {event.event:<17} {ends:<47} {detail(event):<44} {who}"
    return safe_str(text.rstrip())
