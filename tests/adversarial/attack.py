"""What an entry of the adversarial corpus is, and the tools its builders use.

An :class:`Attack` names a student (grading order is alphabetical: the name decides who runs before
whom), the assignment, what the submission does, a builder that makes the submission from a
:class:`Context` (the course, its canaries, the host's loopback server, a marker for files and
processes), and the outcome it must get: every test cell at full marks except those in ``lost``, or
``failed`` (not graded, the report says why).
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from compresslib.course.examples import wrong_answers
from compresslib.course.notebooks import grade_id, read_notebook, release_path, solution_code, solution_path
from course_kit import complete

A01 = "01_soft_targets"
A03 = "03_lottery_tickets"
# The graded tests, by the name of the function each grades.
SOFTMAX, DISTILLATION, COMBINED, KD_STEP = ("test_softmax_with_temperature", "test_distillation_loss",
                                            "test_combined_loss", "test_kd_step")
MAGNITUDE, REMAINING, TRAIN, IMP = "test_magnitude_mask", "test_prune_remaining", "test_train_with_mask", "test_imp_round"


@dataclass(frozen=True)
class Attack:
    name: str  # the student id
    assignment: str
    what: str  # how the submission is built and what it tries
    build: Callable[[Context], object]  # a notebook, raw text, or a function filling the submission folder
    lost: Mapping[str, float] = field(default_factory=dict)  # test -> score, where it is not full marks
    failed: str | None = None  # regex of the report's reason when the submission must not be graded
    feedback: Mapping[str, str] = field(default_factory=dict)  # test -> regex its feedback must show
    present: tuple[str, ...] = ()  # regexes in the graded notebook's outputs: evidence the attack ran
    absent: tuple[str, ...] = ()  # regexes in no output of the graded notebook (so in no output of its feedback)
    inert: tuple[str, ...] = ()  # regexes not in the feedback page's HTML: active tags a browser would run
    unprotected: str | None = None  # an attack the kit does not stop: what it achieves, and why


@dataclass
class Context:
    """What a builder may use: the course folder and the things planted in it for the corpus."""

    root: Path
    canaries: list[Path]
    canary: str
    port: int
    marker: str

    def complete(self, assignment: str, overrides: dict[str, str] | None = None) -> nbformat.NotebookNode:
        return complete(self.root, assignment, {k: textwrap.dedent(v) for k, v in (overrides or {}).items()})

    def blank(self, assignment: str) -> nbformat.NotebookNode:
        return copy.deepcopy(read_notebook(release_path(self.root, assignment)))

    def solution(self, assignment: str, cell: str) -> str:
        """The solution code of the answer cell ``cell`` (markers removed)."""
        nb = read_notebook(solution_path(self.root, assignment))
        return solution_code(next(c for c in nb.cells if grade_id(c) == cell).source)

    def unanswered(self, assignment: str, cell: str) -> str:
        """The answer cell ``cell`` as released (``raise NotImplementedError()`` in its body)."""
        nb = read_notebook(release_path(self.root, assignment))
        return next(c for c in nb.cells if grade_id(c) == cell).source

    def mistake(self, assignment: str, name: str) -> str:
        """The code of the catalogued wrong answer ``name`` (``solutions/<assignment>/wrong_answers.py``)."""
        return wrong_answers(self.root, assignment)[name]["code"]

    def probe_reads(self) -> str:
        """Code that reads the canaries by path and searches everything visible for the canary text
        (kept in hex in the code, so that the cell's own source does not hold it); prints ``FOUND n``."""
        from hostile import PROBE_READS

        return PROBE_READS.format(paths=[str(p) for p in self.canaries], canary_hex=self.canary.encode().hex(),
                                  course=str(self.root))


# --- editing notebooks ---------------------------------------------------------------------------


def index(nb, cell_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if grade_id(c) == cell_id)


def cell(nb, cell_id: str):
    return nb.cells[index(nb, cell_id)]


def code(source: str, **nbgrader) -> nbformat.NotebookNode:
    """A code cell (with nbgrader metadata when given)."""
    new = new_code_cell(textwrap.dedent(source).strip() + "\n")
    if nbgrader:
        new.metadata["nbgrader"] = {"schema_version": 3, "task": False, **nbgrader}
    return new


def markdown(source: str) -> nbformat.NotebookNode:
    return new_markdown_cell(textwrap.dedent(source).strip() + "\n")


def insert(nb, new, *, after: str | None = None, before: str | None = None, top: bool = False):
    """``nb`` with the cell ``new`` added after (or before) the cell with that grade id, or right after
    the first code cell (the notebook's imports) when ``top``."""
    if top:
        position = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code") + 1
    elif after is not None:
        position = index(nb, after) + 1
    else:
        position = index(nb, before)
    nb.cells.insert(position, new)
    return nb


def move_above(nb, cells: list[str], anchor: str):
    """``nb`` with the cells of these grade ids moved, in order, just above the cell ``anchor``."""
    moved = [nb.cells[index(nb, name)] for name in cells]
    nb.cells = [c for c in nb.cells if all(c is not m for m in moved)]
    position = index(nb, anchor)
    nb.cells[position:position] = moved
    return nb


def wrapped(solution: str, function: str, before: str = "", after: str = "") -> str:
    """The solution of ``function``'s cell, then ``function`` wrapped: ``before`` runs ahead of the
    honest call, ``after`` once ``result`` holds its return value."""
    body = textwrap.indent(textwrap.dedent(before).strip() or "pass", "    ")
    tail = textwrap.indent(textwrap.dedent(after).strip() or "pass", "    ")
    return (f"{solution}\n\n_honest_{function} = {function}\n\n\ndef {function}(*args, **kwargs):\n{body}\n"
            f"    result = _honest_{function}(*args, **kwargs)\n{tail}\n    return result\n")
