"""The headless server: the loop on its thread, socket events printed on this one."""

from __future__ import annotations

import json
import signal
import sys
import threading
from types import FrameType

from netlens.server import Server, ServerConfig
from netlens.server.events import event_line

#: How often pending events are printed (the loop never waits for this).
DRAIN_INTERVAL = 0.05


def serve_headless(config: ServerConfig, as_json: bool = False) -> int:
    """Run until SIGINT/SIGTERM, printing one line (or JSON object) per socket event."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = Server(config)
    subscription = server.subscribe()
    out = sys.stdout
    try:
        server.start()
        while True:
            stopping = stop.wait(DRAIN_INTERVAL) or not server.running
            if stopping:
                server.stop()
            events = subscription.drain()
            for event in events:
                out.write((json.dumps(event.to_dict(), ensure_ascii=False) if as_json
                           else event_line(event)) + "\n")
            if subscription.dropped:
                out.write(f"... {subscription.dropped} events dropped (output too slow)\n")
                subscription.dropped = 0
            out.flush()
            if stopping:
                return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
