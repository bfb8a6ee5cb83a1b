"""The UI thread's per-tick work: merging kernel records into the server's, folding the server's facts."""

from __future__ import annotations

import heapq
import random

from netlens.server.events import EVENT_CODES, Accepted, CloseCause, Closed
from netlens.ui.facts import MAX_FACTS, FactBook
from netlens.ui.kernel_events import KERNEL, interleave


def test_interleave_is_a_stable_merge_by_time() -> None:
    rng = random.Random(15)
    for _ in range(300):
        # Coarse times: many ties between the two sources (and within each).
        server = sorted(((1, rng.randrange(40) / 10, n) for n in range(rng.randrange(0, 60))), key=lambda r: r[1])
        kernel = sorted(((KERNEL, rng.randrange(40) / 10, n) for n in range(rng.randrange(0, 20))),
                        key=lambda r: r[1])
        expected = list(heapq.merge(server, kernel, key=lambda record: record[1]))
        assert interleave(server, kernel) == expected


def test_facts_of_a_flood_stay_within_their_cap() -> None:
    accepted, closed = EVENT_CODES[Accepted], EVENT_CODES[Closed]
    book = FactBook()
    conns = MAX_FACTS  # two ends each: twice the cap
    records = []
    for conn in range(conns):
        client = ("127.0.0.1", 10_000 + conn % 50_000)
        records.append((accepted, float(conn), conn, client, ("127.0.0.1", 8000), 0))
        records.append((closed, float(conn), conn, CloseCause.RESET.value, "ECONNRESET"))
    touched = book.ingest(records)
    assert len(touched) == 2 * conns
    last_server_end = ("127.0.0.1", 8000, "127.0.0.1", 10_000 + (conns - 1) % 50_000)
    fact = book.fact(last_server_end, 0.0)
    assert fact is not None and fact.state == "RST received" and fact.final
    # The oldest went first: the first connection's ends are forgotten, the cap holds.
    assert book.fact(("127.0.0.1", 8000, "127.0.0.1", 10_000), 0.0) is None
    assert len(book._facts) == MAX_FACTS

