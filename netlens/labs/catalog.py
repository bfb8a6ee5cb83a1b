"""Find labs: every module under ``netlens/labs/`` and every ``*.py`` in ``--labs-dir`` with a ``LAB``."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

from netlens.errors import UserError
from netlens.labs.model import Lab

#: The order a workshop takes them in (the rest follow, by name).
COURSE = ("handshake", "refused", "time-wait", "half-close", "abort", "framing", "nagle", "zero-window",
          "backlog", "syn-cookies", "keepalive", "self-connect", "rto-backoff", "loss", "slow-start", "mss", "linger")


def _builtin() -> list[Lab]:
    import netlens.labs as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"netlens.labs.{info.name}")
        lab = getattr(module, "LAB", None)
        if isinstance(lab, Lab):
            found.append(lab)
    return found


def _from_dir(directory: Path) -> list[Lab]:
    if not directory.is_dir():
        raise UserError(f"the labs directory {str(directory)!r} does not exist.")
    found = []
    for path in sorted(directory.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"netlens_lab_{path.stem}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a teacher's lab with a typo: say where, keep the others
            raise UserError(f"the lab file {path.name} cannot be loaded: {type(exc).__name__}: {exc}") from None
        lab = getattr(module, "LAB", None)
        if isinstance(lab, Lab):
            found.append(lab)
    return found


def discover(labs_dirs: tuple[str, ...] = ()) -> dict[str, Lab]:
    """Every lab by name, course order first; a ``--labs-dir`` lab may replace a built-in one."""
    labs = {lab.name: lab for lab in _builtin()}
    for directory in labs_dirs:
        labs.update({lab.name: lab for lab in _from_dir(Path(directory))})
    rank = {name: index for index, name in enumerate(COURSE)}
    return dict(sorted(labs.items(), key=lambda item: (rank.get(item[0], len(COURSE)), item[0])))


def find(name: str, labs_dirs: tuple[str, ...] = ()) -> Lab:
    """The lab called ``name``, or a one-sentence error listing the known ones."""
    labs = discover(labs_dirs)
    if name not in labs:
        raise UserError(f"there is no lab called {name!r}; known labs: {', '.join(labs)}.")
    return labs[name]
