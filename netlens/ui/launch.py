"""Start the TUI from ``netlens serve`` (kept apart so the CLI imports Textual only here)."""

from __future__ import annotations

import sys

from netlens.errors import UserError
from netlens.server import ServerConfig


def launch(config: ServerConfig, iface: str = "lo", capture: bool = True) -> int:
    """Run the app until the user quits; returns the exit code."""
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        raise UserError("netlens serve needs an interactive terminal; use `netlens serve --headless` "
                        "to run the server with its events printed instead.", exit_code=2)
    from netlens.ui.app import NetlensApp
    from netlens.ui.feeds import LiveFeeds

    app = NetlensApp(LiveFeeds(config, iface=iface, capture=capture))
    try:
        code = app.run()
    finally:
        app.feeds.stop()
    return code or 0
