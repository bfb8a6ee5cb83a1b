"""The project's own linters, run as part of the suite: ruff and ``mypy --strict`` must stay clean.

Both read their settings from ``pyproject.toml``, so what a newcomer runs by
hand is exactly what the suite checks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "netlens", "tests", "screenshots")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- size, complexity, layering

PACKAGE = REPO / "netlens"
#: Cyclomatic complexity (radon) a function may reach; analysis rules are held tighter.
MAX_COMPLEXITY = 30
MAX_ANALYSIS_COMPLEXITY = 20
MAX_MODULE_LINES = 500
#: Modules over the size limit that their owners are splitting in another branch. Each entry must still be
#: over the limit (the test fails once it is not, so the list only shrinks).
KNOWN_LARGE: dict[str, str] = {}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_no_function_is_too_complex() -> None:
    from radon.complexity import cc_visit

    too_complex = []
    for path in modules():
        name = relative(path)
        limit = MAX_ANALYSIS_COMPLEXITY if name.startswith("netlens/capture/analysis") else MAX_COMPLEXITY
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if block.complexity > limit:
                too_complex.append(f"{name}:{block.lineno} {block.name} has complexity {block.complexity} > {limit}")
    assert not too_complex, "\n".join(too_complex)


def test_no_module_is_too_long() -> None:
    sizes = {relative(path): len(path.read_text(encoding="utf-8").splitlines()) for path in modules()}
    too_long = [f"{name}: {lines} lines" for name, lines in sizes.items()
                if lines > MAX_MODULE_LINES and name not in KNOWN_LARGE]
    assert not too_long, "\n".join(too_long)
    fixed = [name for name in KNOWN_LARGE if sizes.get(name, 0) <= MAX_MODULE_LINES]
    assert not fixed, f"{fixed} are within {MAX_MODULE_LINES} lines now: remove them from KNOWN_LARGE"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """netlens modules ``path`` imports anywhere (top level, functions, TYPE_CHECKING blocks)."""
    import ast

    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name``, mod.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != this}


def test_no_import_cycle_inside_netlens() -> None:
    paths = {module_name(path): path for path in modules()}
    known = set(paths)
    graph = {name: imports_of(path, known) for name, path in paths.items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
