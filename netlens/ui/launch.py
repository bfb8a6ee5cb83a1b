"""Start the TUI from ``netlens serve`` (kept apart so the CLI imports Textual only here)."""

from __future__ import annotations

import os
import sys

from netlens.errors import UserError
from netlens.server import ServerConfig


def _is_terminal(stream: object) -> bool:
    try:
        return stream is not None and os.isatty(stream.fileno())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return False


def check_terminal() -> int:
    """0 if the screen can be seen; else says why in one sentence and returns the exit code (2).

    Textual draws on standard *error* (``sys.__stderr__``): with stderr
    redirected to a file the screen goes there and the terminal stays blank,
    so that case is told on standard output, which is still the terminal.
    """
    if not _is_terminal(sys.stdout) or not _is_terminal(sys.stdin):
        raise UserError("netlens serve needs an interactive terminal; use `netlens serve --headless` "
                        "to run the server with its events printed instead.", exit_code=2)
    if not _is_terminal(sys.__stderr__):
        print("netlens: the screen is drawn on standard error, which is redirected away from the terminal; "
              "run `netlens serve` without redirecting stderr (2>...), or use `netlens serve --headless`.",
              file=sys.stdout, flush=True)
        return 2
    return 0


def launch(config: ServerConfig, iface: str = "lo", capture: bool = True, event_log_bytes: int | None = None,
           capture_bytes: int | None = None) -> int:
    """Run the app until the user quits; returns the app's exit code (2 when the server could not start)."""
    refused = check_terminal()
    if refused:
        return refused
    from netlens.ui.app import NetlensApp
    from netlens.ui.feeds import LiveFeeds
    from netlens.ui.widgets.events import EventLog

    if event_log_bytes:
        EventLog.default_budget = event_log_bytes
    feeds = LiveFeeds(config, iface=iface, capture=capture)
    if capture_bytes:
        feeds.capture_budget = capture_bytes
    app = NetlensApp(feeds)
    try:
        app.run()
    finally:
        app.feeds.stop()
    # app.run() returns the value passed to exit() (None for a plain quit); the exit
    # code of a failed start (port in use, unknown host) is the app's return_code.
    return app.return_code or 0
