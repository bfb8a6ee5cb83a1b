"""Sockets found by exact 4-tuple lookups, and the two ends of a connection read at one moment."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from netlens.probe import netlink
from netlens.probe.model import SocketInfo
from netlens.probe.sockdiag import SNAPSHOT_EXT, DumpParser

#: Exact requests sent per datagram: their replies (with TCP_INFO, a few hundred
#: bytes each) wait in the socket's receive buffer until read. Even: see both_ends().
LOOKUP_BATCH = 64
#: ``(host, port)``.
Address = tuple[str, int]
#: A connection as one end sees it: ``(local, remote)``.
Pair = tuple[Address, Address]


def both_ends(pairs: Iterable[Pair]) -> list[Pair]:
    """Every connection named in ``pairs`` once, as its two ends side by side: ``(a, b)`` then ``(b, a)``.

    The kernel answers the lookups of one datagram one after the other,
    microseconds apart, so two ends asked side by side (:data:`LOOKUP_BATCH`
    is even: a datagram never splits them) are read at one moment.
    """
    seen: set[Pair] = set()
    out: list[Pair] = []
    for local, remote in pairs:
        key = (local, remote) if local <= remote else (remote, local)
        if key not in seen:
            seen.add(key)
            out += ((local, remote), (remote, local))
    return out


def pair_of(sock: SocketInfo) -> Pair:
    """The connection as ``sock`` sees it: ``(local, remote)``."""
    return (sock.local_addr, sock.local_port), (sock.remote_addr, sock.remote_port)


#: States in which an end has received its peer's FIN, and those in which it has not sent its own.
GOT_FIN = frozenset({"CLOSE_WAIT", "LAST_ACK", "CLOSING", "TIME_WAIT"})
NO_FIN_SENT = frozenset({"SYN_SENT", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT"})
#: States in which an end's FIN was acknowledged, and those in which its peer has not received that FIN.
FIN_ACKED = frozenset({"FIN_WAIT2", "TIME_WAIT"})
FIN_UNSEEN = frozenset({"SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1"})


def ends_disagree(state: str, peer_state: str) -> bool:
    """True when a connection's two ends cannot be in these states at one moment.

    An end that received its peer's FIN cannot sit beside a peer that has
    not sent one (TIME_WAIT beside ESTABLISHED), nor can an end whose FIN was
    acknowledged sit beside a peer that has not received it (FIN_WAIT2
    beside ESTABLISHED).
    """
    for one, other in ((state, peer_state), (peer_state, state)):
        if (one in GOT_FIN and other in NO_FIN_SENT) or (one in FIN_ACKED and other in FIN_UNSEEN):
            return True
    return False


def settle_pairs(sock: socket.socket, port: int | None, sockets: list[SocketInfo]) -> list[SocketInfo]:
    """``sockets`` (a dump), where the two ends of a connection on this host disagree, with both ends read
    again side by side (one datagram of lookups).

    A dump walks the kernel's table bucket by bucket over many reads, and a
    connection's two ends sit in different buckets: under a flood one end is
    read milliseconds after the other, and the pair can show states that
    never existed together (measured on a search flood: 86 % of the pairs
    whose two ends were both listed, most of them a client ESTABLISHED
    beside its server's fresh TIME_WAIT). Only such pairs are read again: a pair that agrees keeps
    the dump's view, so connections in flight still show. An end gone since
    the dump is left out; the other end's newer state is the truth.
    """
    if port is None:
        return sockets
    states = {pair_of(s): s.state for s in sockets if s.state != "LISTEN"}
    twins = [(local, remote) for (local, remote), state in states.items()
             if local <= remote and ends_disagree(state, states.get((remote, local), "CLOSED"))]
    if not twins:
        return sockets
    fresh: dict[Pair, list[SocketInfo]] = {}
    for found in look_up(sock, port, both_ends(twins)):
        fresh.setdefault(pair_of(found), []).append(found)
    stale = {end for local, remote in twins for end in ((local, remote), (remote, local))}
    settled: list[SocketInfo] = []
    for old in sockets:  # in the dump's order, each settled end where its old record was
        pair = pair_of(old) if old.state != "LISTEN" else None
        if pair not in stale:
            settled.append(old)
        elif pair in fresh:
            settled += fresh.pop(pair)
    return settled


def look_up(sock: socket.socket, port: int, pairs: Iterable[tuple[Address, Address]]) -> list[SocketInfo]:
    """The sockets (without owners) with these ``(local, remote)`` 4-tuples, by exact lookups on ``sock``.

    No walk of the kernel's socket table: the cost follows the pairs. A pair
    with no socket is left out (the kernel may answer it with the listener of
    its port, which is dropped: a listener comes from a LISTEN-only dump).
    """
    requests = [netlink.build_exact_request(local, remote, SNAPSHOT_EXT, seq)
                for seq, (local, remote) in enumerate(pairs, start=10)]
    found = DumpParser(port)
    for start in range(0, len(requests), LOOKUP_BATCH):
        netlink.run_lookups(sock, requests[start:start + LOOKUP_BATCH], found.feed)
    return [s for s in found.sockets if s.state != "LISTEN"]
