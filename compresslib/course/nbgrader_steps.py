"""The instructor's nbgrader steps, run as the real ``nbgrader`` commands in the course directory.

Each function is one command of the README's instructor workflow, so what the kit runs is exactly
what an instructor types:

    nbgrader generate_assignment <a> --force
    nbgrader autograde <a> --student <s> --force
    nbgrader generate_feedback <a> --student <s> --force
    nbgrader export --to grades.csv
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from compresslib.course.notebooks import NotebookError, read_notebook


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds the command and the end of its log."""


def nbgrader(root: Path, *args: str) -> str:
    """Run ``nbgrader <args>`` in the course directory ``root``; return its log or raise NbgraderError."""
    command = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader calls `alembic` (its database migrations) by name: put this environment's scripts first.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env)
    log = done.stdout + done.stderr
    if done.returncode != 0 or "[ERROR]" in log:
        tail = "\n".join(log.strip().splitlines()[-25:])
        raise NbgraderError(f"`nbgrader {' '.join(args)}` failed (exit {done.returncode}):\n{tail}")
    return log


def generate_assignment(root: Path, assignment: str) -> Path:
    """``solutions/<a>`` -> ``notebooks/<a>``: solutions and hidden tests stripped, outputs cleared."""
    nbgrader(root, "generate_assignment", assignment, "--force")
    return root / "notebooks" / assignment


def submission_dir(root: Path, student: str, assignment: str) -> Path:
    return root / "submitted" / student / assignment


def autograded_dir(root: Path, student: str, assignment: str) -> Path:
    return root / "autograded" / student / assignment


def is_graded(root: Path, student: str, assignment: str, names=None) -> bool:
    """True when every submitted notebook (of ``names``, the assignment's notebooks, when given) has an
    autograded copy newer than it (a rerun can skip it)."""
    submitted = sorted(p for p in submission_dir(root, student, assignment).glob("*.ipynb")
                       if names is None or p.stem in names)
    graded = autograded_dir(root, student, assignment)
    return bool(submitted) and all(
        (graded / nb.name).exists() and (graded / nb.name).stat().st_mtime >= nb.stat().st_mtime for nb in submitted
    )


def check_submission(root: Path, student: str, assignment: str) -> None:
    """Raise NotebookError, before any grading, when a submission is missing or not a valid notebook."""
    folder = submission_dir(root, student, assignment)
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        raise NotebookError(f"{folder} holds no notebook")
    for path in notebooks:
        read_notebook(path)


def autograde(root: Path, assignment: str, student: str) -> None:
    """Grade one student's submission with the tests stored in the gradebook: edited test cells are
    overwritten and deleted ones restored (``OverwriteCells.add_missing_cells``)."""
    check_submission(root, student, assignment)
    nbgrader(root, "autograde", assignment, "--student", student, "--force")


def generate_feedback(root: Path, assignment: str, student: str) -> Path:
    nbgrader(root, "generate_feedback", assignment, "--student", student, "--force")
    return root / "feedback" / student / assignment


def export_grades(root: Path, path: str = "grades.csv") -> Path:
    nbgrader(root, "export", "--to", path)
    return root / path


@dataclass
class CellScore:
    grade_id: str
    score: float
    max_score: float


@dataclass
class SubmissionScore:
    student: str
    score: float
    max_score: float
    cells: dict[str, CellScore] = field(default_factory=dict)


def scores(root: Path, assignment: str) -> dict[str, SubmissionScore]:
    """Per-student, per-test-cell scores of an assignment, read from the gradebook."""
    from nbgrader.api import Gradebook

    out: dict[str, SubmissionScore] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            entry = SubmissionScore(submission.student_id, submission.score, submission.max_score)
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    entry.cells[grade.name] = CellScore(grade.name, grade.score, grade.max_score)
            out[submission.student_id] = entry
    return out


def copy_submissions(source: Path, root: Path) -> list[tuple[str, str]]:
    """Copy ``source/<student>/<assignment>/`` into ``root/submitted/``, leaving unchanged files alone
    (so their grades stay valid); return the (student, assignment) pairs found. Symbolic links are
    copied as links, never read through (grading then reports them): a link in a submission could
    point at the instructor's files or another student's."""
    pairs = []
    for student_dir in sorted(p for p in source.iterdir() if p.is_dir() and not p.is_symlink()):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.is_symlink()):
            target = submission_dir(root, student_dir.name, assignment_dir.name)
            target.mkdir(parents=True, exist_ok=True)
            for file in assignment_dir.iterdir():
                destination = target / file.name
                if file.is_dir() and not file.is_symlink():
                    shutil.copytree(file, destination, symlinks=True, dirs_exist_ok=True)
                elif file.is_symlink() or destination.is_symlink():
                    destination.unlink(missing_ok=True)
                    if file.is_symlink():
                        destination.symlink_to(os.readlink(file))
                elif not destination.exists() or destination.read_bytes() != file.read_bytes():
                    shutil.copy2(file, destination)
                    destination.touch()
            pairs.append((student_dir.name, assignment_dir.name))
    return pairs
