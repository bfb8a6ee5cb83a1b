"""Sampling a flood of trace records for a display: the newest kept, probes thinned per socket, the rest counted."""

from __future__ import annotations

import pickle

from netlens.trace.events import Kind, TraceRecord
from netlens.trace.sample import Sampling, sample, thin_probes

LOOPBACK = b"\x7f\x00\x00\x01"


def probe(ts: int, sock: int) -> TraceRecord:
    return (Kind.PROBE, ts, 0, sock, None, 2, LOOPBACK, 5000, LOOPBACK, 40000 + sock, 10, 7, 50, 1, 1, 100, 0, 0)


def state(ts: int, sock: int, old: str, new: str) -> TraceRecord:
    return (Kind.STATE, ts, 0, sock, None, 2, LOOPBACK, 5000, LOOPBACK, 40000 + sock, old, new)


def test_probes_are_thinned_per_socket_evenly_keeping_the_last_and_states_all() -> None:
    records = [probe(ts, 1 + ts % 2) for ts in range(40)] + [state(40, 1, "ESTABLISHED", "FIN_WAIT1")]
    kept, skipped = thin_probes(records, 4)
    socket1 = [r[1] for r in kept if r[0] == Kind.PROBE and r[3] == 1]
    assert socket1 == [0, 10, 20, 38]  # its 20 samples (even times): every fifth, and the last one
    assert len([r for r in kept if r[0] == Kind.PROBE and r[3] == 2]) == 4
    assert skipped == 40 - 8 and kept[-1][0] == Kind.STATE
    assert [r[1] for r in kept] == sorted(r[1] for r in kept)


def test_sample_keeps_the_newest_and_counts_everything_it_leaves_out() -> None:
    records = [state(0, 9, "LISTEN", "SYN_RECV")] + [probe(ts, 1) for ts in range(1, 100)] + [
        state(100, 1, "ESTABLISHED", "CLOSE_WAIT")]
    kept = sample(records, Sampling(newest=50, probes_per_socket=3))
    assert kept.skipped == 51  # the oldest: the first state change and 50 probes
    assert kept.probes_skipped == 49 - 3
    assert [r[1] for r in kept.records] == [51, 67, 99, 100]  # 49 probes: indices 0 and 16, and the last
    assert len(kept.records) + kept.skipped + kept.probes_skipped == len(records)


def test_a_quiet_batch_passes_untouched_and_the_settings_cross_a_process_boundary() -> None:
    records = [state(1, 1, "SYN_SENT", "ESTABLISHED"), probe(2, 1)]
    kept = sample(records, Sampling(300, 8))
    assert kept.records == records and kept.skipped == kept.probes_skipped == 0
    assert pickle.loads(pickle.dumps(Sampling(300, 8, 0.1))) == Sampling(300, 8, 0.1)
