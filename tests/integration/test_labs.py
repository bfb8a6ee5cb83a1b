"""Every lab on the real stack (root): it passes, its key step matters, outside witnesses agree,
and it leaves nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from netlens.labs.catalog import COURSE, discover
from netlens.labs.model import LabResult
from netlens.labs.runner import LabSession, run_lab
from tests.integration.lab_witness import census, left_behind, nstat_value, tshark

LABS = discover()


def _run(name: str, variant: str | None = None, write: Path | None = None,
         witness: Callable[[LabSession], None] | None = None) -> LabResult:
    before = census()
    result = run_lab(LABS[name], variant, write=write, before_cleanup=witness)
    assert left_behind(before, census()) == {}, f"lab {name} left something behind"
    return result


def _explain(result: LabResult) -> str:
    return "; ".join(f"{c.name}: {c.observed}" for c in result.checks if not c.ok) + " | " + "; ".join(result.notes)


@pytest.mark.parametrize("name", [n for n in COURSE if n in LABS])
def test_lab_passes_and_leaves_nothing(name: str) -> None:
    result = _run(name)
    assert result.passed, _explain(result)


@pytest.mark.parametrize("name", [n for n in COURSE if n in LABS])
def test_lab_fails_without_its_key_step(name: str) -> None:
    lab = LABS[name]
    result = _run(name, lab.control)
    assert not result.passed, f"{name} passed with its key step removed ({lab.variants[lab.control]})"
    assert any(not check.ok for check in result.checks)
