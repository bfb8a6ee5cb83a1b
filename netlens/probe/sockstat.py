"""The namespace's TCP socket counts from ``/proc/net/sockstat`` and ``sockstat6`` (what ``ss -s`` prints).

The kernel keeps these as counters, so reading them costs about 20 µs
however many sockets there are, where counting by a sock_diag dump costs
about 4 µs per socket (measured with 27,000 TIME_WAIT sockets: 97 ms).
They are read from ``/proc/thread-self/net``: the calling thread's network
namespace, the one the sock_diag socket a snapshot opens lives in
(``/proc/net`` is the main thread's, which differs in a thread that moved).
"""

from __future__ import annotations

from netlens.probe.model import TcpTotals

PROC = "/proc"
_NET_DIRS = ("thread-self/net", "net")  # the second for kernels before 3.17


def _counters(text: str, label: str) -> dict[str, int]:
    """The ``name value`` pairs of the line that starts with ``label`` (``"TCP:"``); empty if absent or garbled."""
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == label:
            try:
                return {name: int(value) for name, value in zip(words[1::2], words[2::2], strict=False)}
            except ValueError:
                return {}
    return {}


def read_tcp_totals(proc: str = PROC) -> TcpTotals | None:
    """Return the namespace's TCP counts, or ``None`` where ``/proc/net/sockstat`` is missing or unreadable."""
    for net in _NET_DIRS:
        try:
            with open(f"{proc}/{net}/sockstat", encoding="ascii") as handle:
                v4 = _counters(handle.read(), "TCP:")
            break
        except (OSError, UnicodeDecodeError):
            continue
    else:
        return None
    if "inuse" not in v4 or "tw" not in v4:
        return None
    try:
        with open(f"{proc}/{net}/sockstat6", encoding="ascii") as handle:
            v6 = _counters(handle.read(), "TCP6:")
    except (OSError, UnicodeDecodeError):
        v6 = {}  # a kernel without IPv6
    # TIME_WAIT sockets of both families share one counter, in "TCP:".
    return TcpTotals(sockets=v4["inuse"] + v6.get("inuse", 0), time_wait=v4["tw"])


def read_tcp_counter(name: str, proc: str = PROC) -> int | None:
    """One of the namespace's ``TcpExt`` counters in ``/proc/net/netstat`` (``nstat``'s names), or ``None`` if absent.

    ``TcpExt:`` comes as two lines, the names then the values; a kernel
    counter only grows (wrapping aside), so a change tells that the event it
    counts happened somewhere in the namespace since the last reading.
    """
    for net in _NET_DIRS:
        try:
            with open(f"{proc}/{net}/netstat", encoding="ascii") as handle:
                lines = [line.split() for line in handle if line.startswith("TcpExt:")]
            break
        except (OSError, UnicodeDecodeError):
            continue
    else:
        return None
    if len(lines) < 2 or name not in lines[0]:
        return None
    index = lines[0].index(name)
    try:
        return int(lines[1][index])
    except (IndexError, ValueError):
        return None
