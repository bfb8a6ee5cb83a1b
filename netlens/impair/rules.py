"""nftables on the netdev **ingress** hook of a lab device: random loss and a blackhole, changeable live.

Why ingress of the *receiving* device: a packet capture on that device sees the
frame before the ingress hook runs, so the lost original is in the capture (and
on the sender's side) and then never reaches the receiving socket; a drop on the
sender's output hook would hide it from every capture.

Each device gets one table in its own namespace with a base chain hooked on it
and two *named* counters, so the number of drops survives every change of the
rules (changing a rule flushes the chain, but not the counters).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from netlens.impair.errors import ImpairError

# Loss is expressed in hundredths of a percent: `numgen random mod 10000 < N`.
LOSS_RESOLUTION = 10000


@dataclass(frozen=True)
class IngressPolicy:
    """What the ingress chain of one device drops: a share of frames at random, or every frame."""

    loss_percent: float = 0.0
    blackhole: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss_percent <= 100.0:
            raise ImpairError(f"a loss of {self.loss_percent} % is not between 0 and 100.")


def loss_threshold(percent: float) -> int:
    """The ``numgen random mod 10000 < N`` bound for ``percent`` (rounded to 0.01 %)."""
    return round(percent * LOSS_RESOLUTION / 100)


def ingress_script(table: str, device: str, policy: IngressPolicy) -> str:
    """The ``nft -f`` script that (re)creates ``table`` on ``device`` and installs ``policy``.

    Declaring the table, counters and chain again is harmless (nft merges); the
    chain is flushed and its rules written anew, in one atomic transaction.
    """
    lines = [
        f"table netdev {table} {{",
        "  counter loss { }",
        "  counter blackhole { }",
        f'  chain ingress {{ type filter hook ingress device "{device}" priority 0; policy accept; }}',
        "}",
        f"flush chain netdev {table} ingress",
    ]
    if policy.blackhole:
        lines.append(f'add rule netdev {table} ingress counter name "blackhole" drop')
    threshold = loss_threshold(policy.loss_percent)
    if threshold > 0:
        lines.append(f'add rule netdev {table} ingress numgen random mod {LOSS_RESOLUTION} < {threshold} '
                     f'counter name "loss" drop')
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class DropCounts:
    """Frames dropped on one device's ingress since the lab was built."""

    loss: int = 0
    blackhole: int = 0

    @property
    def total(self) -> int:
        """Every frame dropped, for either reason."""
        return self.loss + self.blackhole


def parse_counters(nft_json: str) -> DropCounts:
    """Read the named counters out of ``nft -j list counters table netdev TABLE`` output."""
    try:
        items = json.loads(nft_json)["nftables"]
    except (ValueError, KeyError, TypeError):
        raise ImpairError("nft printed counters netlens cannot read.") from None
    packets = {}
    for item in items:
        counter = item.get("counter") if isinstance(item, dict) else None
        if isinstance(counter, dict) and counter.get("name") in ("loss", "blackhole"):
            packets[counter["name"]] = int(counter.get("packets", 0))
    return DropCounts(loss=packets.get("loss", 0), blackhole=packets.get("blackhole", 0))
