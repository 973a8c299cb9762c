"""Example submissions (``examples/submissions/<student>/<assignment>/``) and wrong-answer submissions.

Made from the release and the solution so they never drift from the notebooks:

* ``complete``  every answer filled in from the solution: full marks;
* ``blank``     the release as handed out: zero;
* ``mistake``   one typical mistake from the assignment's wrong-answer catalog;
* ``tampered``  the same mistake, its test cell edited to ``pass`` and another test cell deleted with
  a second mistake behind it: graded with the original tests all the same;
* ``malformed`` a truncated file: reported as such, graded as nothing, other students unaffected.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import nbformat

from compresslib.course.notebooks import (
    fill_release,
    grade_id,
    read_notebook,
    release_path,
    solution_path,
)


def wrong_answers(root: Path, assignment: str) -> dict:
    """The catalog ``solutions/<a>/wrong_answers.py`` as a dict (empty when there is none)."""
    module = _catalog_module(root, assignment)
    return getattr(module, "WRONG_ANSWERS", {}) if module else {}


def _catalog_module(root: Path, assignment: str):
    path = root / "solutions" / assignment / "wrong_answers.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"wrong_answers_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wrong_submission(root: Path, assignment: str, name: str) -> nbformat.NotebookNode:
    """A complete submission except for the catalogued wrong answer ``name``."""
    entry = wrong_answers(root, assignment)[name]
    release = read_notebook(release_path(root, assignment))
    solution = read_notebook(solution_path(root, assignment))
    return fill_release(release, solution, {entry["cell"]: entry["code"]})


def example_submissions(root: Path, assignment: str) -> dict[str, nbformat.NotebookNode | str]:
    """The shipped examples of one assignment: student name -> notebook (or raw text when malformed)."""
    release = read_notebook(release_path(root, assignment))
    solution = read_notebook(solution_path(root, assignment))
    complete = fill_release(release, solution)
    examples: dict[str, nbformat.NotebookNode | str] = {"complete": complete, "blank": copy.deepcopy(release)}

    module = _catalog_module(root, assignment)
    catalog = getattr(module, "WRONG_ANSWERS", {}) if module else {}
    mistake = getattr(module, "EXAMPLE_MISTAKE", None)
    if mistake:
        entry = catalog[mistake]
        examples["mistake"] = fill_release(release, solution, {entry["cell"]: entry["code"]})
        examples["tampered"] = _tampered(release, solution, catalog, mistake)
    text = nbformat.writes(complete)
    examples["malformed"] = text[: len(text) // 2]
    return examples


def _tampered(release, solution, catalog, mistake) -> nbformat.NotebookNode:
    """The mistake hidden by editing its test cell, plus a second mistake whose test cell is deleted."""
    first = catalog[mistake]
    second = next((e for e in catalog.values() if e["test"] != first["test"] and e["cell"] != first["cell"]), None)
    overrides = {first["cell"]: first["code"]}
    if second:
        overrides[second["cell"]] = second["code"]
    nb = fill_release(release, solution, overrides)
    for cell in nb.cells:
        if grade_id(cell) == first["test"]:
            cell.source = "pass  # tests removed by the student"
    if second:
        nb.cells = [c for c in nb.cells if grade_id(c) != second["test"]]
    return nb


def write_examples(root: Path, assignment: str, folder: Path | None = None) -> list[Path]:
    """Write the examples under ``examples/submissions/<name>/<assignment>/<assignment>.ipynb``."""
    folder = folder or root / "examples" / "submissions"
    written = []
    for name, nb in example_submissions(root, assignment).items():
        path = folder / name / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(nb if isinstance(nb, str) else nbformat.writes(nb))
        written.append(path)
    return written
