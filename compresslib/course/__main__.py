"""``python -m compresslib.course <command>``: the course's instructor commands.

  build      execute the solution walkthroughs from their jupytext sources (solutions/<a>/<a>.py)
  release    nbgrader generate_assignment for every assignment, then refresh examples/submissions
  grade      copy a folder of submissions into submitted/, autograde, feedback, export, score table
  demo       release + grade the shipped example submissions (what `make demo` starts with)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compresslib.course import nbgrader_steps as steps
from compresslib.course.examples import write_examples
from compresslib.course.notebooks import assignments, build_solution
from compresslib.course.pipeline import grade_all, score_table


def cmd_build(root: Path, names: list[str]) -> None:
    for name in names:
        path, seconds = build_solution(root, name)
        print(f"executed {path} in {seconds:.1f} s")


def cmd_release(root: Path, names: list[str]) -> None:
    for name in names:
        print(f"released {steps.generate_assignment(root, name)}")
        for path in write_examples(root, name):
            print(f"  example submission {path.relative_to(root)}")


def cmd_grade(root: Path, names: list[str], source: Path) -> int:
    pairs = steps.copy_submissions(source, root)
    problems = 0
    for name in names:
        students = sorted({s for s, a in pairs if a == name})
        if not students:
            continue
        start = time.perf_counter()
        report = grade_all(root, name, students)
        grades = steps.export_grades(root)
        print(score_table(root, name, report.failed))
        for student, reason in report.failed.items():
            print(f"\n{student} was not graded:\n  " + reason.replace("\n", "\n  "))
        print(
            f"\ngraded {len(report.graded)} (skipped {len(report.skipped)} already graded, "
            f"{len(report.failed)} failed) in {time.perf_counter() - start:.1f} s; "
            f"{report.seconds_per_submission:.1f} s per submission; feedback in feedback/, grades in {grades.name}"
        )
        problems += len(report.failed)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compresslib.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "release", "grade", "demo"])
    parser.add_argument("assignments", nargs="*", help="default: every assignment in solutions/")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the course directory (default: here)")
    parser.add_argument("--submissions", type=Path, default=None,
                        help="grade: folder of <student>/<assignment>/ (default examples/submissions)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    names = args.assignments or assignments(root)
    if args.command == "build":
        cmd_build(root, names)
    elif args.command == "release":
        cmd_release(root, names)
    elif args.command == "grade":
        cmd_grade(root, names, (args.submissions or root / "examples" / "submissions").resolve())
    else:  # demo: release, then grade the shipped examples; a malformed example is expected to fail
        for name in names:
            print(f"released {steps.generate_assignment(root, name)}")
        cmd_grade(root, names, root / "examples" / "submissions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
