"""What the in-process grading tests of every notebook share (tests/test_grading_*.py).

The pipeline tests grade whole notebooks through nbgrader and the sandbox; these helpers grade single
functions in-process, in seconds: run a notebook's solution cells (optionally with one cell replaced
by a catalogued wrong answer), run a hidden test's harness on them as the sandbox would
(``compresslib.capture``), send the report through JSON, and score it with the trusted judge.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from compresslib.capture import run_harness
from compresslib.capture.stand_ins import set_transport
from compresslib.course.notebooks import (
    from_source,
    grade_id,
    solution_code,
    source_path,
)
from compresslib.grading.fixtures import hidden_inputs, load_fixture
from compresslib.grading.judging import Verdict, score_report
from compresslib.grading.oracle import answer, scope

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


def graded_tests(assignment: str) -> list[str]:
    return sorted(load_fixture(assignment)["tests"])


def harness_report(assignment: str, test: str, namespace: dict) -> dict:
    """One hidden test's report on the functions in ``namespace``, as it leaves the sandbox (through JSON):
    the harness with its stand-ins answered by the oracle in-process instead of over stdin."""
    cases = hidden_inputs(assignment)[test]["cases"]
    allowed = scope([case.get("stand_ins", {}) for case in cases])
    set_transport(lambda request: answer(assignment, allowed, request))
    try:
        return json.loads(json.dumps(run_harness(assignment, test, cases, namespace)))
    finally:
        set_transport(None)


def grade(assignment: str, test: str, namespace: dict) -> Verdict:
    """One hidden test on the functions in ``namespace``: harness report, then the trusted judge."""
    return score_report(assignment, test, harness_report(assignment, test, namespace))


def grade_all(assignment: str, namespace: dict) -> dict[str, Verdict]:
    return {test: grade(assignment, test, namespace) for test in graded_tests(assignment)}


def assert_full_marks(assignment: str, namespace: dict) -> None:
    failed = {t: v.message for t, v in grade_all(assignment, namespace).items() if not v.passed}
    assert not failed, failed


def assert_catalog_entry_caught(assignment: str, base: dict, entry: dict) -> None:
    """The catalogued wrong answer ``entry`` fails its own test with its message, and only that test."""
    verdicts = grade_all(assignment, solution_namespace(assignment, base, {entry["cell"]: entry["code"]}))
    target = verdicts[entry["test"]]
    assert not target.passed, f"{entry['test']} passed"
    assert re.search(entry["message"], target.message), target.message
    others = {t: v.message for t, v in verdicts.items() if t != entry["test"] and not v.passed}
    assert not others, f"the mistake also cost points in {others}"


def blank_namespace(assignment: str, base: dict) -> dict:
    """Every solution cell as the release hands it out: ``raise NotImplementedError()`` in each body."""
    overrides = {}
    for cell in from_source(source_path(ROOT, assignment)).cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            names = re.findall(r"^def (\w+)\((.*?)\):", solution_code(cell.source), re.M | re.S)
            overrides[grade_id(cell)] = "\n".join(f"def {name}(*args, **kwargs):\n    raise NotImplementedError()\n"
                                                  for name, _ in names)
    return solution_namespace(assignment, base, overrides)


def assert_blank_scores_zero(assignment: str, base: dict) -> None:
    verdicts = grade_all(assignment, blank_namespace(assignment, base))
    for test, verdict in verdicts.items():
        assert not verdict.passed and "not answered" in verdict.message, (test, verdict)
