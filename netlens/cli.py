"""The ``netlens`` command line: a thin dispatcher over :mod:`netlens.commands`.

Every subcommand lives in its own module; this file only wires them into
argparse and turns :class:`~netlens.errors.UserError` into one sentence on
stderr and an exit code, so no user ever sees a traceback for a known failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from netlens import __version__
from netlens.errors import UserError

# Subcommand name -> module. Order is the order shown by --help.
COMMANDS: dict[str, str] = {
    "serve": "netlens.commands.serve",
    "client": "netlens.commands.client",
    "load": "netlens.commands.load",
    "conns": "netlens.commands.conns",
    "capture": "netlens.commands.capture",
    "read": "netlens.commands.read",
    "trace": "netlens.commands.trace",
    "lab": "netlens.commands.lab",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser with one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="netlens",
        description="See TCP: a teaching TCP server with a live view of its sockets, events and packets.",
    )
    parser.add_argument("--version", action="version", version=f"netlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd_parser)
        cmd_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``netlens`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"netlens: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the reader left: not an error worth a word.
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
