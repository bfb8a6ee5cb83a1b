"""Make the README's stream-graph pictures from a real transfer (run as root, from the repository root).

    .venv/bin/python screenshots/make_graphs.py

2,000,000 bytes go from one network namespace to another through ``netlens.impair``'s
delay link (25 ms each way, 20 Mbit/s, 1 % of the frames toward the receiver dropped
by nftables), captured by tcpdump on the sender's side while
the sender samples its own TCP_INFO. From that capture it writes the four graphs
as vector SVGs (``graph-tsg.svg``, ``graph-throughput.svg``, ``graph-rtt.svg``,
``graph-window.svg``; the kernel's srtt and cwnd come from the TCP_INFO samples)
and an SVG screenshot of the TUI's graph screen on the same stream
(``graph-screen.svg``).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from support.bulk import bulk_transfer, lab  # noqa: E402
from support.wireshark import load  # noqa: E402
from textual.app import App  # noqa: E402

from netlens.capture.feed import FeedState, StoreFeed  # noqa: E402
from netlens.capture.stats import KernelSample  # noqa: E402
from netlens.capture.stats.render import write_graph  # noqa: E402
from netlens.capture.stats.series import GRAPHS, build_graph  # noqa: E402
from netlens.capture.stats.tracker import StatsTracker  # noqa: E402
from netlens.ui.screens.graph import GraphScreen  # noqa: E402


class _GraphApp(App[None]):
    def __init__(self, tracker: StatsTracker) -> None:
        super().__init__()
        self.tracker = tracker

    def on_mount(self) -> None:
        feed = StoreFeed(self.tracker.ring, self.tracker.store, FeedState.RECORDED)
        self.push_screen(GraphScreen(feed, feed.stream(1)))


async def _screenshot(tracker: StatsTracker, path: Path) -> None:
    app = _GraphApp(tracker)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, GraphScreen)
        for _ in range(200):
            await pilot.pause(0.05)
            state = screen.state
            if state is not None and state.behind == 0 and screen.drawn_packets == state.graphed > 0:
                break
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        app.save_screenshot(filename=path.name, path=str(path.parent))


def main() -> None:
    """Transfer, capture, draw."""
    with tempfile.TemporaryDirectory(prefix="nlg-") as scratch:
        pcap = Path(scratch) / "bulk.pcap"
        with lab(25.0, 20_000, loss_percent=1) as net:
            samples = bulk_transfer(net, pcap, 2_000_000)
        tracker = load(pcap)
    stats = tracker.stream(1)
    stats.kernel.extend(KernelSample(ts, srtt, rttvar, cwnd * mss) for ts, srtt, rttvar, cwnd, mss in samples)
    for kind in GRAPHS:
        path = HERE / f"graph-{kind}.svg"
        write_graph(build_graph(kind, stats, 0), str(path))
        print(f"wrote {path}")
    asyncio.run(_screenshot(tracker, HERE / "graph-screen.svg"))
    print(f"wrote {HERE / 'graph-screen.svg'}")


if __name__ == "__main__":
    main()
