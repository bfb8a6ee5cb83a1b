"""The ``netlens`` command line: a thin dispatcher over :mod:`netlens.commands`.

Every subcommand lives in its own module; this file only wires them into
argparse and turns :class:`~netlens.errors.UserError` into one sentence on
stderr and an exit code, so no user ever sees a traceback for a known failure.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import resource
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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser with one subparser per command module (or only the one named ``only``).

    Every command module is imported to add its options; a command that is
    about to run needs only its own, which spares ``netlens read`` the
    imports of the trace engine, the labs and the rest (~0.1 s a run).
    """
    parser = argparse.ArgumentParser(
        prog="netlens",
        description="See TCP: a teaching TCP server with a live view of its sockets, events and packets.",
    )
    parser.add_argument("--version", action="version", version=f"netlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(module_name)
        cmd_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd_parser)
        cmd_parser.set_defaults(_run=module.run)
    return parser


def harden_stdio() -> None:
    """Make every later write to stdout/stderr encodable, whatever the locale.

    Text from the wire is escaped before it is printed, but a last line of
    defence costs nothing: a character the stream's encoding cannot hold
    becomes a backslash escape instead of a UnicodeEncodeError (under a C
    locale Python would otherwise write lone surrogates as raw bytes).
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (OSError, ValueError):
                pass


def _silence_stdout() -> None:
    """After a failed write, point stdout at /dev/null so the exit-time flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def last_resort(exc: OSError) -> str:
    """One sentence for an OSError nobody caught (out of descriptors, a full disk, a closed pipe)."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return (f"out of file descriptors (this process may open {soft}); "
                f"raise the limit, e.g. `ulimit -n 4096`, and try again.")
    if exc.errno in (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EDQUOT):
        return f"cannot write the output: {exc.strerror}."
    return f"{exc.strerror or exc}."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``netlens`` console script; returns the process exit code."""
    harden_stdio()
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(words)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    if sys.stdout is None:
        print("netlens: standard output is closed, so there is nowhere to print the results; "
              "run without closing it (e.g. `> out.txt`).", file=sys.stderr)
        return 1
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"netlens: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the reader left: not an error worth a word.
        _silence_stdout()
        return 0
    except OSError as exc:
        _silence_stdout()
        print(f"netlens: {last_resort(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
