"""``bench_ui.py --against DIR``: this benchmark and another checkout's, run in turn, figures side by side.

The UI benchmark drives the whole app, whose insides (the packet feed, the
widgets) change between versions, so one tree's measuring code cannot drive
another tree's app. Each tree runs *its own* ``tests/benchmarks/bench_ui.py``
(with its own ``.venv`` when it has one) with the same options; the trees
take turns, round by round, and the figures every version prints in its
"Summary" (key press to painted frame, the packet rate it ran at, the refresh
costs) are compared as medians over the rounds. The whole output of every run
is kept in a directory printed at the end.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from against import label, print_table

_KEY_FRAME = re.compile(r"key->frame, (?P<target>.+?)\s+n=\s*(?P<painted>\d+)/(?P<presses>\d+)"
                        r"\s+p50\s+(?P<p50>[\d.na]+)\s+p90\s+(?P<p90>[\d.na]+)"
                        r"\s+p99\s+(?P<p99>[\d.na]+)\s+max\s+(?P<max>[\d.na]+) ms.*?"
                        r"at (?P<pps>[\d,]+) packets/s.*?packet list (?P<behind>[\d,]+) packets behind")
_REFRESH = re.compile(r"refresh, cursor (?P<where>\w+)\s+(?P<what>.+?)\s{2,}(?P<cells>(?:[\d,]+:\s+[\d.]+ ms\s*)+)")
#: Options of this tree's bench_ui.py that the other trees' do not have.
THIS_TREE_ONLY = ("--no-kernel-trace",)
_CELL = re.compile(r"([\d,]+):\s+([\d.]+) ms")


def parse_summary(text: str) -> dict[str, float]:
    """The figures of a bench_ui run's "Summary" section, by row key."""
    figures: dict[str, float] = {}
    for line in text.split("\nSummary\n", 1)[-1].splitlines():
        found = _KEY_FRAME.search(line)
        if found:
            target = found["target"].strip()
            for key in ("p50", "p90", "p99", "max"):
                figures[f"{target} {key}"] = float(found[key])
            figures[f"{target} pps"] = float(found["pps"].replace(",", ""))
            figures[f"{target} behind"] = float(found["behind"].replace(",", ""))
            figures[f"{target} painted"] = float(found["painted"])
            continue
        found = _REFRESH.search(line)
        if found:
            for size, value in _CELL.findall(found["cells"]):
                figures[f"refresh {found['where']} {found['what'].strip()} {size}"] = float(value)
    return figures


def rows_of(figures: dict[str, float]) -> list[tuple[str, str, str]]:
    """Table rows for every figure found, in the order the benchmark prints them."""
    rows = []
    for key in figures:
        if key.startswith("refresh "):
            _, where, rest = key.split(" ", 2)
            what, size = rest.rsplit(" ", 1)
            rows.append((key, f"{size} stored, {where}: {what} (ms)", ".2f"))
        else:
            target, what = key.rsplit(" ", 1)
            text = {"pps": "packets/s it ran at", "behind": "packets behind at the end",
                    "painted": "presses painted"}.get(what, f"key->frame {what} (ms)")
            rows.append((key, f"{target[:14]}: {text}", ",.0f" if what in ("pps", "behind", "painted") else ".1f"))
    return rows


def without(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """``argv`` without ``options`` and their values (``--opt value`` or ``--opt=value``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif not any(arg.startswith(option + "=") for option in options):
            out.append(arg)
    return out


def compare(trees: list[Path], rounds: int, argv: Sequence[str]) -> int:
    """Run each tree's bench_ui.py ``rounds`` times in turn with ``argv``; print the medians side by side."""
    logs = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    results: list[dict[Path, dict[str, float]]] = []
    for turn in range(rounds):
        got: dict[Path, dict[str, float]] = {}
        for tree in trees[turn % len(trees):] + trees[:turn % len(trees)]:
            venv = tree / ".venv" / "bin" / "python"
            python = str(venv) if venv.exists() and tree != trees[0] else sys.executable
            started = time.monotonic()
            # Options older trees do not know (their app has no kernel-trace feed) go to this tree only.
            options = list(argv) if tree == trees[0] else [arg for arg in argv if arg not in THIS_TREE_ONLY]
            run = subprocess.run([python, str(tree / "tests" / "benchmarks" / "bench_ui.py"), *options],
                                 capture_output=True, text=True, cwd=tree, timeout=1800)
            log = logs / f"round{turn + 1}-{label(tree).replace('/', '_')}.txt"
            log.write_text(run.stdout + run.stderr, encoding="utf-8")
            if run.returncode:
                print(f"bench_ui.py of {tree} failed (exit status {run.returncode}); see {log}", file=sys.stderr)
                return 1
            got[tree] = parse_summary(run.stdout)
            print(f"  round {turn + 1}: {label(tree)} in {time.monotonic() - started:.0f} s", flush=True)
        results.append(got)
    rows = rows_of(results[0][trees[0]])
    print_table(f"bench_ui.py of each tree, {' '.join(argv)}; medians of {rounds} round(s):", rows, trees, results)
    print(f"  whole outputs: {logs}")
    return 0
