"""Held-out wrong answers lose points: every entry of every ``tests/mutants/<assignment>.py`` (plausible
wrong answers written outside the assignment's catalog, the catalog's entry format: ``cell``, ``code``)
is graded in-process like a submission (``graded.grade_all``: harness, JSON, trusted judge) and must
fail at least one hidden test. The catalog tests prove that the mistakes the judges were built for are
caught; this corpus measures whether the hidden tests catch what they were not built for.

The answers run on top of the notebook's own setup (its code cells above the first answer cell), as in
a student's kernel.
"""

import functools
import importlib.util
from pathlib import Path

import pytest
from graded import ROOT, grade_all, solution_namespace

from compresslib.capture import GRADER_SKIP_TAG
from compresslib.course.examples import wrong_answers
from compresslib.course.notebooks import from_source, source_path

MUTANTS_DIR = Path(__file__).resolve().parent / "mutants"


@functools.cache
def mutants(assignment: str) -> dict:
    """``MUTANTS`` of ``tests/mutants/<assignment>.py``."""
    path = MUTANTS_DIR / f"{assignment}.py"
    spec = importlib.util.spec_from_file_location(f"mutants_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


@functools.cache
def _setup(assignment: str) -> tuple:
    namespace: dict = {}
    for cell in from_source(source_path(ROOT, assignment)).cells:
        metadata = cell.get("metadata", {})
        if metadata.get("nbgrader", {}).get("solution"):
            break
        if cell.cell_type == "code" and GRADER_SKIP_TAG not in metadata.get("tags", []):
            exec(cell.source, namespace)
    return tuple(namespace.items())


def setup_namespace(assignment: str) -> dict:
    """What a student's kernel holds when the first answer cell runs: the notebook's code cells above it."""
    return dict(_setup(assignment))


ASSIGNMENTS = sorted(p.stem for p in MUTANTS_DIR.glob("*.py"))
CASES = [(assignment, name) for assignment in ASSIGNMENTS for name in mutants(assignment)]


@pytest.mark.parametrize(("assignment", "name"), CASES, ids=[f"{a}-{n}" for a, n in CASES])
def test_each_held_out_mutant_loses_points(assignment, name):
    entry = mutants(assignment)[name]
    namespace = solution_namespace(assignment, setup_namespace(assignment), {entry["cell"]: entry["code"]})
    verdicts = grade_all(assignment, namespace)
    assert not all(v.passed for v in verdicts.values()), f"{assignment}/{name} kept full marks"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_held_out_mutants_are_outside_the_catalog(assignment):
    catalogued = {" ".join(e["code"].split()) for e in wrong_answers(ROOT, assignment).values()}
    held_out = {name for name, e in mutants(assignment).items() if " ".join(e["code"].split()) in catalogued}
    assert not held_out, f"these mutants are catalogued wrong answers: {sorted(held_out)}"
