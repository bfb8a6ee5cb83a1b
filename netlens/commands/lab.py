"""``netlens lab``: list the labs, or run one headless, narrating each step and checking the kernel."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from types import FrameType
from typing import Any

HELP = "Staged TCP lessons on the real stack: list them, or run one and check what the kernel did."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``netlens lab list`` and ``netlens lab run``."""
    sub = parser.add_subparsers(dest="lab_command", metavar="{list,run}")
    listing = sub.add_parser("list", help="list the labs", description="List the labs.")
    listing.add_argument("--json", action="store_true", help="print a JSON list of the labs")
    listing.add_argument("--labs-dir", action="append", default=[], metavar="DIR",
                         help="also load the labs (*.py defining LAB) in DIR; may be repeated")
    running = sub.add_parser("run", help="run one lab headless", description="Run one lab headless.")
    running.add_argument("name", metavar="NAME", help="the lab to run (see `netlens lab list`)")
    running.add_argument("--check", action="store_true",
                         help="exit 0 only if every expectation was observed (1 otherwise)")
    running.add_argument("--json", action="store_true", help="print one JSON object with the checks")
    running.add_argument("--write", metavar="FILE",
        help="save the lab's capture to FILE (pcapng, each packet's analysis as a comment)")
    running.add_argument("--variant", metavar="NAME",
                         help="run a variant (e.g. the lab without its key step) to see what changes")
    running.add_argument("--no-trace", action="store_true", help="do not start the kernel-trace engine")
    running.add_argument("--labs-dir", action="append", default=[], metavar="DIR",
                         help="also load the labs (*.py defining LAB) in DIR; may be repeated")


def _list(labs: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps([lab.to_dict() for lab in labs.values()], indent=2))
        return 0
    width = max((len(name) for name in labs), default=4)
    for name, lab in labs.items():
        needs = lab.to_dict()["needs"]
        extra = f"  (needs {', '.join(needs)})" if needs else ""
        print(f"{name:<{width}}  {lab.title}{extra}")
    return 0


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into the same unwinding as Ctrl-C, so the lab's cleanup runs.
    raise KeyboardInterrupt


def _print_result(result: Any) -> None:
    for check in result.checks:
        mark = "PASS" if check.ok else "FAIL"
        where = f" [{check.evidence}]" if check.evidence else ""
        print(f"  {mark}  {check.name}: expected {check.expected}; observed {check.observed}{where}")
    for note in result.notes:
        print(f"  note: {note}")
    verdict = "passed" if result.passed else "did not pass"
    print(f"lab {result.lab} {verdict} in {result.seconds:.1f} s ({result.packets} packets captured)")


def _run(args: argparse.Namespace) -> int:
    from netlens.labs.catalog import find
    from netlens.labs.runner import run_lab

    lab = find(args.name, tuple(args.labs_dir))
    quiet = args.json

    def narrate(index: int, step: Any) -> None:
        if quiet:
            return
        print(f"[{index + 1}/{len(lab.steps)}] {step.title}")
        print(f"    {step.narration}")
        print(f"    watch: {step.watch.describe()}", flush=True)

    if not quiet:
        variant = f" (variant {args.variant})" if args.variant else ""
        print(f"lab {lab.name}: {lab.title}{variant}\n    {lab.lesson}", flush=True)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run_lab(lab, args.variant, before_step=narrate, trace=not args.no_trace, write=args.write)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if quiet:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_result(result)
    sys.stdout.flush()
    return 0 if result.passed or not args.check else 1


def run(args: argparse.Namespace) -> int:
    """Dispatch ``lab list`` / ``lab run``."""
    from netlens.labs.catalog import discover

    if args.lab_command == "run":
        return _run(args)
    return _list(discover(tuple(getattr(args, "labs_dir", []))), getattr(args, "json", False))
