"""The notebooks of the course: their jupytext sources, the executed walkthroughs, the submissions.

``solutions/<assignment>/<assignment>.py`` (py:percent, diffs well) is what instructors edit;
``solutions/<assignment>/<assignment>.ipynb`` is built from it and executed (the walkthrough that
self-learners read, and nbgrader's source); ``notebooks/`` is made from it by nbgrader.
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import nbformat

from compresslib.student.widget_outputs import strip_widgets

SOLUTION_REGION = re.compile(r"[ \t]*### BEGIN SOLUTION\n(.*?)[ \t]*### END SOLUTION\n?", re.S)


class NotebookError(ValueError):
    """A notebook that cannot be read or graded; the message says which file and why."""


def assignments(root: Path) -> list[str]:
    """Assignment names: the folders of ``solutions/`` that hold a ``<name>.py`` source."""
    return sorted(p.name for p in (root / "solutions").iterdir() if (p / f"{p.name}.py").exists())


def source_path(root: Path, assignment: str) -> Path:
    return root / "solutions" / assignment / f"{assignment}.py"


def solution_path(root: Path, assignment: str) -> Path:
    return root / "solutions" / assignment / f"{assignment}.ipynb"


def release_path(root: Path, assignment: str) -> Path:
    return root / "notebooks" / assignment / f"{assignment}.ipynb"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook, or raise NotebookError naming the file and the problem."""
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such notebook") from None
    except Exception as error:  # JSON errors, schema errors
        raise NotebookError(f"{path} is not a valid notebook ({type(error).__name__}: {error})") from error
    return nb


def from_source(source: Path) -> nbformat.NotebookNode:
    """The notebook of a py:percent source, with its cell metadata (nbgrader's included)."""
    import jupytext

    nb = jupytext.read(str(source))
    nb.metadata.pop("jupytext", None)
    for index, cell in enumerate(nb.cells):
        cell.id = _cell_id(cell, index)
    return nb


def _cell_id(cell, index: int) -> str:
    """Stable cell ids (nbformat 4.5 wants them): the nbgrader grade_id, else the position."""
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id or f"cell-{index:03d}"


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel started in ``cwd``; return the executed notebook."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}},
                            record_timing=False)
    client.execute()
    # Progress bars are widgets, which mean nothing outside a live kernel: keep their text copies only
    # (a saved widget view shows "model not found" when the walkthrough is opened).
    strip_widgets(nb)
    return nb


def build_solution(root: Path, assignment: str, *, run: bool = True) -> tuple[Path, float]:
    """Write ``solutions/<a>/<a>.ipynb`` from its source, executed when ``run``; return (path, seconds)."""
    source = source_path(root, assignment)
    nb = from_source(source)
    start = time.perf_counter()
    if run:
        nb = execute(nb, source.parent)
    seconds = time.perf_counter() - start
    path = solution_path(root, assignment)
    nbformat.write(nb, str(path))
    return path, seconds


def solution_code(cell_source: str) -> str:
    """A solution cell's code with the nbgrader markers removed (the region's content kept)."""
    return SOLUTION_REGION.sub(lambda m: m.group(1), cell_source)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def fill_release(release: nbformat.NotebookNode, solution: nbformat.NotebookNode,
                 overrides: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """A submission: the release with each solution cell answered from the solution notebook, except the
    cells in ``overrides`` (grade_id -> code), which get that code instead (a wrong answer)."""
    overrides = dict(overrides or {})
    answers = {grade_id(c): solution_code(c.source) for c in solution.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    unknown = set(overrides) - set(answers)
    if unknown:
        raise NotebookError(f"no solution cell with grade_id {sorted(unknown)}; known: {sorted(answers)}")
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in answers:
            cell.source = overrides.get(gid, answers[gid])
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb
