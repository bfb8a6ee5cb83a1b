"""Make the small captures under ``tests/data/graphs/`` (run as root: ``python tests/support/make_graph_pcaps.py``).

Each is a real transfer between the two namespaces of a ``netlens.impair``
``LabNetwork`` (TAP delay relay, tbf rate limit, nftables loss toward the
receiver), captured by tcpdump on the sender's device with a 128-byte snaplen
so the files stay small.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.bulk import bulk_transfer, lab

DATA = Path(__file__).resolve().parent.parent / "data" / "graphs"

#: file name -> (one-way delay ms, rate kbit/s, loss % toward the receiver, bytes sent)
RECIPES = {
    "bulk-25ms-20mbit.pcap": (25.0, 20_000, 0.0, 400_000),
    "bulk-25ms-20mbit-loss3pc.pcap": (25.0, 20_000, 3.0, 400_000),
}


def main() -> None:
    """Write every recipe's capture."""
    DATA.mkdir(parents=True, exist_ok=True)
    for name, (delay, rate, loss, size) in RECIPES.items():
        with lab(delay, rate, loss) as net:
            bulk_transfer(net, DATA / name, size, snaplen=128)
        print(f"wrote {DATA / name}")


if __name__ == "__main__":
    main()
