"""Make the small captures under ``tests/data/graphs/`` (run as root: ``python tests/support/make_graph_pcaps.py``).

Each is a real transfer through :mod:`support.delaynet` (two namespaces, a
TUN delay link, tbf rate limit, nftables loss), captured by tcpdump on the
sender's side with a 128-byte snaplen so the files stay small.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.bulk import bulk_transfer
from support.delaynet import delay_link

DATA = Path(__file__).resolve().parent.parent / "data" / "graphs"

#: file name -> (one-way delay ms, rate, data-segment loss ‰, bytes sent)
RECIPES = {
    "bulk-25ms-20mbit.pcap": (25.0, "20mbit", 0, 400_000),
    "bulk-25ms-20mbit-loss3pc.pcap": (25.0, "20mbit", 30, 400_000),
}


def main() -> None:
    """Write every recipe's capture."""
    DATA.mkdir(parents=True, exist_ok=True)
    for name, (delay, rate, loss, size) in RECIPES.items():
        with delay_link(delay, rate, loss) as link:
            bulk_transfer(link, DATA / name, size, snaplen=128)
        print(f"wrote {DATA / name}")


if __name__ == "__main__":
    main()
