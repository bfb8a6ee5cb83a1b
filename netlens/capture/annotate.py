"""What netlens knows about each packet, as text to attach to it in a saved pcapng (``opt_comment``).

Two sources: the analysis marks of the packet (each with its rule's sentence),
and socket events the caller knows about (the server's ``accepted``, ``recv``,
``send``... from its event bus), each attached to the packet that caused it:
the last packet of the event's connection captured at or before the event.
Events are plain ``(ts_ns, local, remote, text)`` tuples, so this module needs
nothing from the server package (the layers stay apart); the caller holds the
store's lock while building the comments.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable

from netlens.capture.store import PacketStore
from netlens.capture.streams import Stream

#: One socket event: when (epoch ns), the socket's local and remote ``(host, port)``, and what happened.
SocketEvent = tuple[int, tuple[str, int], tuple[str, int], str]


def packet_comments(store: PacketStore, events: Iterable[SocketEvent] = ()) -> Callable[[int], list[str]]:
    """A function giving each stored packet's comments: its analysis sentences, then its socket events.

    The analysis is copied now (a snapshot), so the function can run on
    another thread while the capture goes on.
    """
    notes: dict[int, list[str]] = defaultdict(list)
    for no in store.flagged():
        notes[no] = [f"{mark}: {mark.rule}" for mark in store.analysis(no)]
    for no, text in _place_events(store, events):
        notes[no].append(text)
    return lambda no: notes.get(no, [])


def _place_events(store: PacketStore, events: Iterable[SocketEvent]) -> list[tuple[int, str]]:
    """Each event with the packet it belongs to (events of connections not captured are left out)."""
    streams = store.streams()
    # Streams by their two (host, port) ends, both ways round, the first one first (a reused 4-tuple
    # keeps its first stream, as StreamKey.matches would find it); matches() catches other spellings.
    by_ends: dict[tuple[tuple[str, int], tuple[str, int]], Stream | None] = {}
    for known in streams:
        by_ends.setdefault((known.key.client, known.key.server), known)
        by_ends.setdefault((known.key.server, known.key.client), known)
    timelines: dict[int, tuple[list[int], list[int]]] = {}
    placed = []
    for ts_ns, local, remote, text in events:
        ends = ((str(local[0]), int(local[1])), (str(remote[0]), int(remote[1])))
        if ends in by_ends:
            stream = by_ends[ends]
        else:  # another spelling of the addresses (IPv4-mapped IPv6...), or not captured: look once
            stream = by_ends[ends] = next((s for s in streams if s.key.matches(local, remote)), None)
        if stream is None:
            continue
        if stream.id not in timelines:
            packets = [no for no in store.stream_packets(stream.id) if no in store.ring]
            timelines[stream.id] = (packets, [store.ring.ts_ns(no) for no in packets])
        packets, times = timelines[stream.id]
        if not packets:
            continue
        index = bisect_right(times, ts_ns) - 1
        placed.append((packets[max(index, 0)], f"server socket: {text}"))
    return placed
