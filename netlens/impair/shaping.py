"""A rate limit with ``tc tbf`` on a device's egress: the lab's bottleneck link.

The token bucket is kept small (a few frames, or 4 ms at the rate) so the
bottleneck is crisp, and the queue behind it holds ``queue_ms`` worth of bytes:
that queue is what fills while a sender's window grows, and what overflows into
loss when it grows past it.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlens.impair.errors import ImpairError

ETHERNET_HEADER = 14


@dataclass(frozen=True)
class RateLimit:
    """``rate_kbit`` kbit/s (1 kbit = 1000 bit, as tc counts), with a queue of ``queue_ms`` at that rate."""

    rate_kbit: int
    queue_ms: float = 50.0

    def __post_init__(self) -> None:
        if self.rate_kbit <= 0:
            raise ImpairError(f"a rate of {self.rate_kbit} kbit/s is not a positive number.")
        if self.queue_ms <= 0:
            raise ImpairError(f"a queue of {self.queue_ms} ms is not a positive length.")

    def bytes_per_second(self) -> float:
        """The rate in bytes per second, counted on whole Ethernet frames as tbf counts them."""
        return self.rate_kbit * 1000 / 8

    def tbf_arguments(self, mtu: int) -> list[str]:
        """The ``tc qdisc replace ... tbf`` arguments after ``root``."""
        frame = mtu + ETHERNET_HEADER
        burst = max(2 * frame, round(self.bytes_per_second() * 0.004))
        limit = max(burst + frame, round(self.bytes_per_second() * self.queue_ms / 1000))
        return ["tbf", "rate", f"{self.rate_kbit}kbit", "burst", str(burst), "limit", str(limit)]


def tbf_command(device: str, limit: RateLimit | None, mtu: int) -> list[str]:
    """The ``tc`` command that installs ``limit`` on ``device`` (or removes any limit, for ``None``)."""
    if limit is None:
        return ["tc", "qdisc", "del", "dev", device, "root"]
    return ["tc", "qdisc", "replace", "dev", device, "root", *limit.tbf_arguments(mtu)]
