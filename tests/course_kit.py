"""A fresh course directory for the grading tests (tests/test_course_pipeline.py, tests/adversarial/).

Made from this repository as an instructor has it: ``nbgrader_config.py``, ``solutions/``, and the
library (``compresslib/``, ``pyproject.toml``, ``requirements.txt``) that the grading kit is built from;
each assignment released with nbgrader's ``generate_assignment``. Helpers write submissions and read
back what grading made of them (scores, the autograded notebook, the feedback page).
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import nbformat

from compresslib.course import nbgrader_steps as steps
from compresslib.course.notebooks import fill_release, grade_id, read_notebook, release_path, solution_path
from compresslib.grading.fixtures import fixture_path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("compresslib", "pyproject.toml", "requirements.txt")


def graded_assignments() -> list[str]:
    """The assignments graded by the new protocol: a wrong-answer catalog and a fixture with a top-level
    ``tests`` key (an assignment still on the old schema joins once it is converted)."""
    found = []
    for catalog in sorted((ROOT / "solutions").glob("*/wrong_answers.py")):
        name = catalog.parent.name
        path = fixture_path(name)
        if path.exists() and "tests" in json.loads(path.read_text()):
            found.append(name)
    return found


def new_course(folder: Path, assignments: list[str]) -> Path:
    """``folder`` made a course directory with ``assignments`` released by nbgrader."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "solutions", folder / "solutions", ignore=ignore)
    for name in LIBRARY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore)
        else:
            shutil.copy(source, folder / name)
    for assignment in assignments:
        steps.generate_assignment(folder, assignment)
    return folder


def write_submission(root: Path, student: str, assignment: str, submission) -> Path:
    """Write one submission: a notebook, raw text (a malformed file), or a function that fills the
    submission folder itself (links, extra files)."""
    folder = steps.submission_dir(root, student, assignment)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if callable(submission):
        submission(folder)
    else:
        text = submission if isinstance(submission, str) else nbformat.writes(submission)
        (folder / f"{assignment}.ipynb").write_text(text)
    return folder


def complete(root: Path, assignment: str, overrides: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The release answered from the solution, except ``overrides`` (solution grade_id -> code)."""
    return fill_release(read_notebook(release_path(root, assignment)), read_notebook(solution_path(root, assignment)),
                        overrides)


def graded_points(root: Path, assignment: str) -> dict[str, float]:
    """grade_id -> points of every graded test cell, from the solution notebook."""
    solution = read_notebook(solution_path(root, assignment))
    return {grade_id(c): float(c.metadata.nbgrader["points"]) for c in solution.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def cell_scores(root: Path, assignment: str, student: str) -> dict[str, float]:
    result = steps.scores(root, assignment).get(student)
    return {name: cell.score for name, cell in result.cells.items()} if result else {}


def autograded(root: Path, student: str, assignment: str) -> nbformat.NotebookNode:
    return read_notebook(steps.autograded_dir(root, student, assignment) / f"{assignment}.ipynb")


def cell_text(nb: nbformat.NotebookNode, test: str) -> str:
    """Every output of the cell ``test`` as text (error values, tracebacks, streams, plain text)."""
    cell = next(c for c in nb.cells if grade_id(c) == test)
    return "\n".join(o.get("evalue", "") + "".join(o.get("traceback", [])) + o.get("text", "")
                     + str(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", []))


def feedback_path(root: Path, student: str, assignment: str) -> Path:
    return root / "feedback" / student / assignment / f"{assignment}.html"


def feedback_text(root: Path, student: str, assignment: str) -> str:
    """The feedback page as a reader sees it: tags removed, entities decoded."""
    page = feedback_path(root, student, assignment).read_text()
    return html.unescape(re.sub(r"<[^>]+>", " ", page))
