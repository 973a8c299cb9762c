"""What the in-process grading tests of every notebook share (tests/test_grading_*.py).

The nbgrader pipeline test grades whole notebooks; these helpers grade single cells in-process, in
seconds: run a notebook's solution cells (optionally with one cell replaced by a catalogued wrong
answer), then call a graded check on the function the cell defines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compresslib.course.notebooks import from_source, grade_id, solution_code, source_path
from compresslib.grading import GradingError

ROOT = Path(__file__).resolve().parents[1]


def solution_namespace(assignment: str, base: dict, overrides: dict | None = None) -> dict:
    """The solution cells of ``assignment`` executed in order on top of ``base`` (the notebook's imports);
    ``overrides`` maps a cell's grade_id to the code that replaces it."""
    overrides = overrides or {}
    namespace = dict(base)
    for cell in from_source(source_path(ROOT, assignment)).cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            exec(overrides.get(grade_id(cell), solution_code(cell.source)), namespace)
    return namespace


def solution_cell(assignment: str, grade: str) -> str:
    """The solution code of the cell with grade_id ``grade`` (markers removed)."""
    cell = next(c for c in from_source(source_path(ROOT, assignment)).cells if grade_id(c) == grade)
    return solution_code(cell.source)


def assert_check_fails(check, function, message: str) -> None:
    """``check(function)`` raises a GradingError whose text matches the regular expression ``message``."""
    with pytest.raises(GradingError) as caught:
        check(function)
    assert re.search(message, str(caught.value)), str(caught.value)


def assert_catalog_entry_caught(assignment: str, base: dict, checks: dict, entry: dict) -> dict:
    """The catalogued wrong answer ``entry`` fails its own check with its message; returns the namespace."""
    namespace = solution_namespace(assignment, base, {entry["cell"]: entry["code"]})
    function_name, check = checks[entry["test"]]
    assert_check_fails(check, namespace[function_name], entry["message"])
    return namespace


def assert_blank_cells_score_zero(checks: dict) -> None:
    """A blank release cell raises NotImplementedError; every check lets it through, so nbgrader scores 0."""
    def blank(*args, **kwargs):
        raise NotImplementedError()

    for _, check in checks.values():
        with pytest.raises(NotImplementedError):
            check(blank)
