"""Sampling a flood of records down to what a display refreshed a few times a second can use.

Under a search flood the kernel reports ~25 events per connection, 20,000 and
more a second, mostly ``tcp_probe`` (one per segment). A display showing the
events and per-socket sparklines at 10 frames a second uses the newest few
hundred records per frame and a handful of probe samples per socket; building
or even receiving the rest costs its process for nothing. :func:`sample` keeps
those and counts the rest, so the counts can be said ("skipped under load",
"tcp_probe sampled"). :class:`netlens.trace.process.TraceProcess` applies it
in the helper process, so the records it skips never cross to the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlens.trace.events import Kind, TraceRecord


@dataclass(frozen=True, slots=True)
class Sampling:
    """Per ``every`` seconds: at most ``newest`` records (the newest), ``probes_per_socket`` tcp_probe per socket."""

    newest: int
    probes_per_socket: int
    every: float = 0.1


@dataclass(frozen=True, slots=True)
class Sampled:
    """What :func:`sample` kept (time order) and how many records it left out, by reason."""

    records: list[TraceRecord]
    skipped: int  # beyond the newest `newest`
    probes_skipped: int  # tcp_probe samples beyond `probes_per_socket` for their socket


def thin_probes(records: list[TraceRecord], per_socket: int) -> tuple[list[TraceRecord], int]:
    """``records`` with each socket's tcp_probe samples thinned to ``per_socket`` (evenly, its last one kept).

    Returns the kept records in time order and how many samples were left out.
    """
    probes: dict[int, list[TraceRecord]] = {}
    kept: list[TraceRecord] = []
    skipped = 0
    for record in records:
        if record[0] == Kind.PROBE:
            probes.setdefault(record[3], []).append(record)
        else:
            kept.append(record)
    for samples in probes.values():
        if len(samples) > per_socket:
            step = len(samples) / per_socket
            chosen = [samples[int(i * step)] for i in range(per_socket - 1)] + [samples[-1]]
            skipped += len(samples) - len(chosen)
            samples = chosen
        kept.extend(samples)
    if probes:
        kept.sort(key=lambda record: record[1])
    return kept, skipped


def sample(records: list[TraceRecord], sampling: Sampling) -> Sampled:
    """The newest ``sampling.newest`` of ``records`` (time order), their probes thinned per socket."""
    skipped = max(0, len(records) - sampling.newest)
    if skipped:
        # The present matters more than a backlog: keep the newest, count the rest.
        records = records[-sampling.newest:]
    kept, probes_skipped = thin_probes(records, sampling.probes_per_socket)
    return Sampled(kept, skipped, probes_skipped)
