"""The grading fixtures: one file per assignment, one folder for all of them, one case schema.

``fixtures/<assignment>.json``::

    {"provenance": {...how and when it was recorded...},
     "tests": {"<grade_id of a test cell>": {"cases": [
         {"inputs": {...},                  # what the hidden test feeds the student's functions
          "expected": {...},                # what a correct function gives (never leaves the instructor)
          "wrong": {"<mistake>": {...}}}    # what each catalogued wrong answer gives
     ]}}}

Only the ``inputs`` ever reach a student's kernel, and only at grading time (:func:`write_inputs`).
Recorders (``python -m compresslib.grading.record <assignment>``) write these files.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

FIXTURES_DIR = Path(__file__).parent / "fixtures"


def fixture_path(assignment: str, directory: Path = FIXTURES_DIR) -> Path:
    return directory / f"{assignment}.json"


@functools.cache
def load_fixture(assignment: str) -> dict:
    """The fixture of an assignment, or FileNotFoundError saying how to record it."""
    path = fixture_path(assignment)
    if not path.exists():
        raise FileNotFoundError(
            f"no grading fixture for {assignment!r} at {path}: run `python -m compresslib.grading.record {assignment}`"
        )
    return json.loads(path.read_text())


def test_cases(assignment: str, test: str) -> list[dict]:
    """The recorded cases of one graded test."""
    tests = load_fixture(assignment)["tests"]
    if test not in tests:
        raise KeyError(f"{assignment} has no recorded test {test!r}; recorded: {sorted(tests)}")
    return tests[test]["cases"]


def hidden_inputs(assignment: str) -> dict:
    """``{test: {"cases": [inputs, ...]}}``: the part of a fixture a sandboxed kernel may see."""
    return {test: {"cases": [case["inputs"] for case in spec["cases"]]}
            for test, spec in load_fixture(assignment)["tests"].items()}


def write_inputs(assignment: str, path: Path) -> Path:
    """Write the hidden inputs of ``assignment`` (no expected values) for a sandbox to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(hidden_inputs(assignment)))
    return path
