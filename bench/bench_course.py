"""Timings of the course pipeline (a benchmark that prints its figures; not a pass/fail test).

    .venv/bin/python bench/bench_course.py [01_soft_targets ...]   # notebook execution + autograde
    .venv/bin/python bench/bench_course.py --demo     # also `make demo` end to end (after setup)

Goals on a 2-core CPU: each solution notebook under 120 s top to bottom (02 and 03: under 300 s),
autograding under 30 s per submission.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import torch

from compresslib.course import nbgrader_steps as steps
from compresslib.course.examples import example_submissions
from compresslib.course.notebooks import assignments, execute, from_source, source_path

ROOT = Path(__file__).resolve().parents[1]


def time_notebook(assignment: str) -> float:
    nb = from_source(source_path(ROOT, assignment))
    start = time.perf_counter()
    execute(nb, source_path(ROOT, assignment).parent)
    return time.perf_counter() - start


def time_autograde(assignment: str, repeats: int = 2) -> tuple[float, float]:
    """Seconds for `nbgrader autograde` of one complete submission, and for its feedback (best of repeats)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copy(ROOT / "nbgrader_config.py", root)
        shutil.copytree(ROOT / "solutions", root / "solutions")
        steps.generate_assignment(root, assignment)
        folder = steps.submission_dir(root, "student", assignment)
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(nbformat.writes(example_submissions(root, assignment)["complete"]))
        grade, feedback = float("inf"), float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            steps.autograde(root, assignment, "student")
            grade = min(grade, time.perf_counter() - start)
            start = time.perf_counter()
            steps.generate_feedback(root, assignment, "student")
            feedback = min(feedback, time.perf_counter() - start)
        return grade, feedback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment")
    parser.add_argument("--demo", action="store_true", help="also time `make demo` (setup already done)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}")
    for assignment in args.assignments or assignments(ROOT):
        seconds = time_notebook(assignment)
        grade, feedback = time_autograde(assignment)
        print(f"{assignment}: notebook top to bottom {seconds:.1f} s; autograde {grade:.1f} s per submission "
              f"(+ feedback {feedback:.1f} s)")
    if args.demo:
        start = time.perf_counter()
        subprocess.run(["make", "clean-grading"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["make", "demo"], cwd=ROOT, check=True, capture_output=True)
        print(f"make demo (after setup, from clean grading state): {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
