"""The headless server: the loop on its thread, socket events printed on this one."""

from __future__ import annotations

import json
import signal
import sys
import threading
from types import FrameType

from netlens.commands.kernel_printing import KernelPrinter
from netlens.server import Server, ServerConfig
from netlens.server.events import event_line

#: How often pending events are printed (the loop never waits for this).
DRAIN_INTERVAL = 0.05


def serve_headless(config: ServerConfig, as_json: bool = False, kernel: bool = False) -> int:
    """Run until SIGINT/SIGTERM, printing one line (or JSON object) per socket event (and kernel event)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = Server(config)
    subscription = server.subscribe()
    out = sys.stdout
    tracer: KernelPrinter | None = None
    try:
        server.start()
        if kernel:
            tracer = KernelPrinter(server.address[1], lambda text, lines: out.write(text), as_json)
            missing = tracer.start()
            if missing:
                print(f"netlens: {missing}", file=sys.stderr, flush=True)
        while True:
            stopping = stop.wait(DRAIN_INTERVAL) or not server.running
            if stopping:
                server.stop()
            events = subscription.drain()
            for event in events:
                out.write((json.dumps(event.to_dict(), ensure_ascii=False) if as_json
                           else event_line(event)) + "\n")
            if tracer is not None:
                tracer.pump()
            if subscription.dropped:
                out.write(f"... {subscription.dropped} events dropped (output too slow)\n")
                subscription.dropped = 0
            out.flush()
            if stopping:
                break
    finally:
        server.stop()
        if tracer is not None:
            lost = tracer.stop()
            out.flush()
            if lost:
                print(f"netlens: {lost}", file=sys.stderr, flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
