"""A bounded, lock-free event ring between the server loop and its subscribers.

The loop is the only writer and must never block or slow down for a reader,
so publishing is one slot store and one counter increment: the loop records
``(event code, timestamp, connection id, fields...)`` tuples, and the
dataclass is built only when a subscriber drains it. Records hold only plain
values (ints, floats, strings, bytes, tuples of those), so Python's garbage
collector stops tracking them: a UI keeping 200,000 of them does not make
every full collection scan them.

The ring is bounded twice: by ``capacity`` records and by a byte ``budget``
(each record is charged :func:`record_size`, an estimate of what it holds), so
events carrying long texts cannot make it grow past what the user set. A
subscriber that falls behind what the ring still holds loses the oldest
events, and its ``dropped`` counter says how many.
"""

from __future__ import annotations

import enum
from typing import Any

from netlens.server.events import EVENT_CODES, EVENT_TYPES, SocketEvent

DEFAULT_CAPACITY = 1 << 16
#: Default byte budget of the ring.
DEFAULT_BUDGET = 32 * 1024 * 1024
#: What a record costs besides its last field's text or bytes: the tuple, its float
#: stamp and ints, address tuples, the ring slot (measured with sys.getsizeof).
RECORD_OVERHEAD = 240
_SIZED = (str, bytes)

#: ``(event code, ts, conn, *fields)``: an event not yet built (see :func:`materialize`).
EventRecord = tuple[Any, ...]


def record_size(record: EventRecord) -> int:
    """Estimated bytes a record holds: a fixed overhead plus its variable field.

    Every event's variable-size field (received bytes, a detail, a reason, a
    summary) is its last one, and the loop cuts those before publishing.
    """
    last = record[-1]
    return RECORD_OVERHEAD + len(last) if last.__class__ in _SIZED else RECORD_OVERHEAD


class EventBus:
    """Single-writer ring of event records with any number of cursor readers."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, budget: int = DEFAULT_BUDGET) -> None:
        if capacity < 1 or capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        if budget < RECORD_OVERHEAD:
            raise ValueError(f"the event budget must be at least {RECORD_OVERHEAD} bytes")
        self.capacity = capacity
        self.budget = budget
        self._mask = capacity - 1
        self._ring: list[EventRecord | None] = [None] * capacity
        self._sizes = [0] * capacity
        #: Total records ever published (the next record's sequence number).
        self.published = 0
        #: Sequence number of the oldest record still held.
        self.oldest = 0
        #: Estimated bytes the held records take (see :func:`record_size`).
        self.bytes = 0
        #: Records let go early to stay within the byte budget.
        self.evicted = 0

    def publish(self, record: EventRecord) -> None:
        """Store one record ``(code, ts, conn, *fields)``. Called only by the loop thread."""
        seq = self.published
        slot = seq & self._mask
        sizes = self._sizes
        if seq - self.oldest >= self.capacity:
            # Full by count: this slot holds the oldest record. Move `oldest` first,
            # so a reader copying the slot meanwhile knows the copy is stale.
            self.oldest = seq - self.capacity + 1
            self.bytes -= sizes[slot]
        last = record[-1]
        size = RECORD_OVERHEAD + len(last) if last.__class__ in _SIZED else RECORD_OVERHEAD
        self.bytes += size
        if self.bytes > self.budget:
            self._evict(seq)
        sizes[slot] = size
        self._ring[slot] = record
        # The slot is written before the counter moves, so a reader that sees
        # the new count always finds the record in place.
        self.published = seq + 1

    def publish_many(self, records: list[EventRecord]) -> None:
        """:meth:`publish` each record in order (the loop hands over one wake-up's records at once).

        The usual batch (it fits the ring and the byte budget) is stored with
        slice assignments: the per-record Python work is one size estimate, not
        a dozen bookkeeping steps. A batch that would cross the budget takes
        the one-by-one path, so what is let go is exactly what :meth:`publish` lets go.
        """
        count = len(records)
        seq = self.published
        start = seq & self._mask
        stop = start + count
        new_sizes = [RECORD_OVERHEAD + len(record[-1]) if record[-1].__class__ in _SIZED else RECORD_OVERHEAD
                     for record in records]
        sizes = self._sizes
        added = sum(new_sizes)
        # Without the records it overwrites, the ring would still fit the budget after
        # every record of the batch: nothing is let go for the budget on the way.
        if stop > self.capacity or self.bytes + added > self.budget:
            # Wrapping round the ring's end, or near the budget: record by record.
            self._publish_each(records, new_sizes)
            return
        # Slots of dead records hold size 0: the sum is what the overwritten live records held.
        held = self.bytes - sum(sizes[start:stop]) + added
        # `oldest` moves before any slot is overwritten, so a reader copying meanwhile
        # counts what it may have seen overwritten as lost (see _read).
        if seq + count - self.oldest > self.capacity:
            self.oldest = seq + count - self.capacity
        self._ring[start:stop] = records
        sizes[start:stop] = new_sizes
        self.bytes = held
        # Every slot is written before the counter moves (see publish).
        self.published = seq + count

    def _publish_each(self, records: list[EventRecord], new_sizes: list[int]) -> None:
        """:meth:`publish_many` record by record, letting the oldest go as the budget requires."""
        seq = self.published
        mask, capacity, budget = self._mask, self.capacity, self.budget
        ring, sizes = self._ring, self._sizes
        held = self.bytes
        # The ring is full by count from this sequence number on (see publish).
        full_at = self.oldest + capacity
        for record, size in zip(records, new_sizes, strict=True):
            slot = seq & mask
            if seq >= full_at:
                self.oldest = full_at = seq - capacity + 1
                full_at += capacity
                held -= sizes[slot]
            held += size
            if held > budget:
                self.bytes = held
                self._evict(seq)
                held = self.bytes
                full_at = self.oldest + capacity
            sizes[slot] = size
            ring[slot] = record
            seq += 1
        self.bytes = held
        self.published = seq

    def _evict(self, upto: int) -> None:
        """Let the oldest records go until the held bytes fit the budget (never record ``upto``)."""
        ring, sizes, mask = self._ring, self._sizes, self._mask
        while self.bytes > self.budget and self.oldest < upto:
            oldest = self.oldest
            self.oldest = oldest + 1
            self.bytes -= sizes[oldest & mask]
            # A dead slot holds size 0 (publish_many sums what a batch overwrites).
            sizes[oldest & mask] = 0
            ring[oldest & mask] = None
            self.evicted += 1

    def subscribe(self, from_start: bool = False) -> Subscription:
        """Open a reader positioned at the newest event (or the oldest kept one)."""
        start = self.oldest if from_start else self.published
        return Subscription(self, start)

    def _read(self, cursor: int, limit: int | None) -> tuple[list[EventRecord], int, int]:
        """Records from ``cursor`` on: (records, new cursor, how many were lost)."""
        end = self.published
        lost = 0
        oldest = self.oldest
        if cursor < oldest:
            lost, cursor = oldest - cursor, oldest
        if limit is not None:
            end = min(end, cursor + limit)
        records: list[EventRecord | None] = []
        if end > cursor:
            ring = self._ring
            start = cursor & self._mask
            stop = start + end - cursor
            # Slices, not a comprehension: a busy server hands over thousands at a time.
            records = ring[start:stop] if stop <= self.capacity else ring[start:] + ring[:stop - self.capacity]
        # The writer may have moved on while we copied: anything now older than
        # the ring holds was possibly overwritten or let go, so count it lost, not shown.
        overwritten = self.oldest - cursor
        if overwritten > 0:
            del records[:overwritten]
            lost += overwritten
        return records, end, lost  # type: ignore[return-value]


class Subscription:
    """One reader's cursor into an :class:`EventBus`."""

    def __init__(self, bus: EventBus, cursor: int) -> None:
        self._bus = bus
        self._cursor = cursor
        #: Events this reader lost because it fell more than a ring behind.
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Events published since the last drain (some may already be lost)."""
        return self._bus.published - self._cursor

    def drain(self, limit: int | None = None) -> list[SocketEvent]:
        """Every event since the last drain (at most ``limit``), oldest first."""
        return [materialize(record) for record in self.drain_records(limit)]

    def drain_records(self, limit: int | None = None) -> list[EventRecord]:
        """Like :meth:`drain`, but the raw records, for readers that show only some events.

        A record is ``(event code, ts, conn, *fields)``: ``record[1]`` is the
        timestamp and ``record[2]`` the connection id, so a reader can filter
        and count without building anything; :func:`materialize` builds the
        event for the records it does show (a UI: the rows on screen).
        """
        records, self._cursor, lost = self._bus._read(self._cursor, limit)
        self.dropped += lost
        return records


def make_record(cls: type[SocketEvent], ts: float, conn: int, *fields: Any) -> EventRecord:
    """A record as the server loop publishes it (for tests and recordings): enums as their values."""
    plain = tuple(field.value if isinstance(field, enum.Enum) else field for field in fields)
    return (EVENT_CODES[cls], ts, conn, *plain)


def materialize(record: EventRecord) -> SocketEvent:
    """The frozen event dataclass for one raw record."""
    return EVENT_TYPES[record[0]](*record[1:])
