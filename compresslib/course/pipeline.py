"""The instructor pipeline end to end: release, collect, autograde, feedback, export, score table.

Resumable: a submission whose autograded copy is newer than it and whose grade is in the gradebook
is not graded again. A submission that cannot be graded (malformed notebook, a kernel that dies) is
reported and skipped; it never stops the others or touches their grades.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from compresslib.course import nbgrader_steps as steps
from compresslib.course.notebooks import NotebookError


@dataclass
class GradingReport:
    assignment: str
    graded: list[str]
    skipped: list[str]
    failed: dict[str, str]
    seconds_per_submission: float


def grade_all(root: Path, assignment: str, students: list[str], *, feedback: bool = True) -> GradingReport:
    """Autograde (and write feedback for) each student's submission of ``assignment``."""
    already = steps.scores(root, assignment) if (root / "gradebook.db").exists() else {}
    graded, skipped, failed, timings = [], [], {}, []
    for student in tqdm(students, desc=f"grading {assignment}", unit="submission"):
        if student in already and steps.is_graded(root, student, assignment):
            skipped.append(student)
            continue
        start = time.perf_counter()
        try:
            steps.autograde(root, assignment, student)
            if feedback:
                steps.generate_feedback(root, assignment, student)
        except (NotebookError, steps.NbgraderError) as error:
            failed[student] = str(error)
            continue
        timings.append(time.perf_counter() - start)
        graded.append(student)
    mean = sum(timings) / len(timings) if timings else 0.0
    return GradingReport(assignment, graded, skipped, failed, mean)


def score_table(root: Path, assignment: str, failed: dict[str, str] | None = None) -> str:
    """A plain-text table: one row per student, one column per graded test cell, and the total."""
    results = steps.scores(root, assignment)
    if not results:
        return f"{assignment}: no graded submissions"
    columns = sorted({name for r in results.values() for name in r.cells}, key=_cell_order(results))
    header = ["student", *[c.removeprefix("test_") for c in columns], "total"]
    rows = []
    for student, result in sorted(results.items()):
        cells = [f"{result.cells[c].score:g}/{result.cells[c].max_score:g}" if c in result.cells else "-" for c in columns]
        rows.append([student, *cells, f"{result.score:g}/{result.max_score:g}"])
    for student, reason in sorted((failed or {}).items()):
        rows.append([student, *["-"] * len(columns), "not graded (see below)"])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = lambda row: "  ".join(str(v).ljust(w) for v, w in zip(row, widths))  # noqa: E731
    return "\n".join([f"== {assignment} ==", line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _cell_order(results):
    order = []
    for result in results.values():
        for name in result.cells:
            if name not in order:
                order.append(name)
    return order.index
