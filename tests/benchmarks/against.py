"""Run a benchmark's measurement in another checkout of netlens, and print trees side by side.

``--against DIR`` benchmarks measure each tree in a fresh interpreter whose
``sys.path`` starts with that tree, so ``import netlens`` gets the tree's code
while the measurement function comes from this checkout's benchmark module
(the same workload, the same timing code, for every tree). A child checks
which ``netlens`` it imported before it measures anything.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def label(tree: Path) -> str:
    """A short name for a tree: its git branch and commit when it has them, else its directory."""
    try:
        if (tree / ".git").exists():
            names = [subprocess.run(["git", "-C", str(tree), "rev-parse", option, "HEAD"], capture_output=True,
                                    text=True, timeout=10, check=True).stdout.strip()
                     for option in ("--abbrev-ref", "--short")]
            return "@".join(names)
    except (OSError, subprocess.SubprocessError):
        pass
    return tree.name


def child_code(tree: Path, module: str, call: str) -> str:
    """Python source for ``python -c``: import ``module`` from here, ``netlens`` from ``tree``, run ``call``."""
    return (f"import sys, json; sys.path[:0] = [{str(HERE)!r}, {str(ROOT / 'tests')!r}];"
            f"import {module} as bench; sys.path.insert(0, {str(tree)!r});"
            f"import netlens; assert netlens.__file__.startswith({str(tree / 'netlens')!r}), netlens.__file__;"
            f"print(json.dumps(bench.{call}))")


def run_in(tree: Path, module: str, call: str, timeout: float = 600) -> dict[str, float]:
    """Evaluate ``module.call`` in a fresh interpreter importing netlens from ``tree``; its JSON result."""
    out = subprocess.run([sys.executable, "-c", child_code(tree, module, call)], capture_output=True, text=True,
                         cwd=tree, timeout=timeout)
    if out.returncode:
        raise SystemExit(f"the measurement in {tree} failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def print_table(title: str, rows: Sequence[tuple[str, str, str]], trees: Sequence[Path],
                rounds: Sequence[dict[Path, dict[str, float]]]) -> None:
    """One line per figure: ``(key, description, format)``, each tree's median over ``rounds`` and its range.

    With two trees or more, the last column is the first tree's median over the second's.
    """
    if title:
        print(title)
    names = [label(tree) for tree in trees]
    width = max(38, *(len(description) + 1 for _, description, _ in rows))
    header = "".join(f"  {name[:26]:<26}" for name in names)
    print(f"  {'':<{width}}{header}" + (" this/other" if len(trees) > 1 else ""))
    for key, description, fmt in rows:
        cells, medians = [], []
        for tree in trees:
            values = [r[tree][key] for r in rounds if key in r.get(tree, {})]
            if not values:
                cells.append(f"{'-':>10}{'':18}")
                medians.append(float("nan"))
                continue
            median = statistics.median(values)
            medians.append(median)
            spread = f"[{format(min(values), fmt)}-{format(max(values), fmt)}]" if len(values) > 1 else ""
            cells.append(f"{format(median, fmt):>10} {spread:<17}")
        ratio = ""
        if len(trees) > 1 and medians[1] and medians[1] == medians[1] and medians[0] == medians[0]:
            ratio = f" {medians[0] / medians[1]:10.2f}"
        print(f"  {description:<{width}}{''.join(cells)}{ratio}")
