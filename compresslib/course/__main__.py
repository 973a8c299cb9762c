"""``python -m compresslib.course <command>``: the course's instructor commands.

  build        execute the solution walkthroughs from their jupytext sources (solutions/<a>/<a>.py)
  release      nbgrader generate_assignment for every assignment, then refresh examples/submissions
  student-kit  write the student kit (release notebooks + compresslib without the answer key) and scan it
  grade        grade a class: sandboxed, in parallel, scored outside the students' kernels; feedback, grades.csv
  demo         release + grade the shipped example submissions (what `make demo` starts with)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compresslib.course import nbgrader_steps as steps
from compresslib.course.examples import write_examples
from compresslib.course.notebooks import assignments, build_solution


def cmd_build(root: Path, names: list[str]) -> int:
    for name in names:
        path, seconds = build_solution(root, name)
        print(f"executed {path} in {seconds:.1f} s")
    return 0


def cmd_release(root: Path, names: list[str]) -> int:
    for name in names:
        print(f"released {steps.generate_assignment(root, name)}")
        for path in write_examples(root, name):
            print(f"  example submission {path.relative_to(root)}")
    return 0


def cmd_student_kit(root: Path, out: Path, unlock: list[str]) -> int:
    from compresslib.course.kit_scan import scan_student_kit
    from compresslib.course.student_kit import KitError, build_student_kit

    try:
        kit = build_student_kit(root, out, unlock)
    except KitError as error:
        print(f"student-kit: {error}", file=sys.stderr)
        return 2
    manifest = json.loads((kit / "KIT.json").read_text())
    problems = scan_student_kit(root, kit)
    if problems:
        print(f"the student kit at {kit} failed its scan; do not hand it out:", file=sys.stderr)
        for problem in problems[:50]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"student kit written to {kit}")
    print(f"  locked: {', '.join(manifest['locked']) or 'none'} ({len(manifest['locked_functions'])} library functions)")
    print(f"  unlocked: {', '.join(manifest['unlocked']) or 'none'}")
    print("  scanned: no reference answer, hidden-test value or instructor file inside")
    return 0


def cmd_grade(root: Path, names: list[str], source: Path | None, args) -> int:
    from compresslib.course.grade import GradingSetupError, grade_class, score_table

    if source is not None:
        if not source.is_dir():
            print(f"--submissions {source} is not a folder of <student>/<assignment>/", file=sys.stderr)
            return 2
        steps.copy_submissions(source, root)
    problems = 0
    for name in names:
        try:
            report = grade_class(root, name, regrade=args.regrade, workers=args.workers, scheduler=args.scheduler,
                                 unsandboxed=args.unsandboxed, students=args.student or None)
        except GradingSetupError as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 2
        if not report.outcomes:
            continue
        failed = {s: o.error for s, o in report.outcomes.items() if o.status == "failed"}
        print(score_table(root, name, failed))
        for student, outcome in sorted(report.outcomes.items()):
            if outcome.error:
                print(f"\n{student} was not graded:\n  " + outcome.error.replace("\n", "\n  "))
            elif outcome.notes:
                print(f"\n{student}: " + "; ".join(outcome.notes))
        graded = report.by_status("graded")
        print(f"\n{name}: graded {len(graded)}, skipped {len(report.by_status('skipped'))} already graded, "
              f"{len(failed)} failed, in {report.seconds:.1f} s with {report.executor}"
              f"{'' if report.sandboxed else ' WITHOUT the sandbox'}; feedback in feedback/, grades in grades.csv")
        (root / "build").mkdir(exist_ok=True)
        (root / "build" / f"grading-report-{name}.json").write_text(json.dumps(report.to_json(), indent=1))
        problems += len(failed)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compresslib.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "release", "student-kit", "grade", "demo"])
    parser.add_argument("assignments", nargs="*", help="default: every assignment in solutions/")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the course directory (default: here)")
    parser.add_argument("--out", type=Path, default=None, help="student-kit: the folder to write the kit into")
    parser.add_argument("--unlock", action="append", default=[], metavar="ASSIGNMENT",
                        help="student-kit: ship the reference answers of this assignment (its deadline has passed)")
    parser.add_argument("--submissions", type=Path, default=None,
                        help="grade: a folder of <student>/<assignment>/ to collect into submitted/ first")
    parser.add_argument("--workers", type=int, default=2, help="grade: sandboxes run at once (local process pool)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="grade: a Dask scheduler (tcp://HOST:PORT) whose workers run the sandboxes")
    parser.add_argument("--regrade", action="append", default=[], metavar="STUDENT",
                        help="grade: grade this student again even if already graded")
    parser.add_argument("--student", action="append", default=[], metavar="STUDENT",
                        help="grade: only these students (default: every submission)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="grade: run kernels WITHOUT the sandbox (only for trusted submissions)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    names = args.assignments or assignments(root)
    unknown = [n for n in names if n not in assignments(root)]
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}: the assignments are {assignments(root)}")
    if args.command == "build":
        return cmd_build(root, names)
    if args.command == "release":
        return cmd_release(root, names)
    if args.command == "student-kit":
        if args.out is None:
            parser.error("student-kit needs --out DIR")
        return cmd_student_kit(root, args.out, args.unlock)
    if args.command == "grade":
        return cmd_grade(root, names, args.submissions.resolve() if args.submissions else None, args)
    for name in names:  # demo: release, then grade the shipped examples (the malformed one is reported)
        print(f"released {steps.generate_assignment(root, name)}")
    return cmd_grade(root, names, root / "examples" / "submissions", args)


if __name__ == "__main__":
    sys.exit(main())
