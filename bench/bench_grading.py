"""Grading at class size (a benchmark that prints its figures; not a pass/fail test).

    .venv/bin/python bench/bench_grading.py [--per-notebook 100] [--workers 1 2] [--modes sandboxed unsandboxed]

Builds a fresh course from this repository, releases every assignment, and writes ``--per-notebook``
submissions of each: half complete, the catalogued wrong answers and the held-out mutants, blank ones,
and hostile ones (warnings and stderr, an output flood, a kernel that exits, a loop that ignores
interrupts). Each configuration (sandboxed or not, 1 or 2 workers) grades all of them from scratch with
``compresslib.course.grade.grade_class`` and the bench prints seconds per submission, the total, the
speed-up of 2 workers over 1, the sandbox's overhead, and where the seconds went (summed over
submissions: sandbox start, kernel start, cells, replays after a crash in the workers; sanitizing,
autograding and feedback in the one writer). The issue's goals on a 2-core machine: 300 submissions in
under 20 minutes with 2 workers, 2 workers at least 1.7x faster than 1, sandbox overhead under 15%.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compresslib.course import nbgrader_steps as steps  # noqa: E402
from compresslib.course.examples import example_submissions, wrong_answers, wrong_submission  # noqa: E402
from compresslib.course.grade import grade_class  # noqa: E402
from compresslib.course.notebooks import (  # noqa: E402
    assignments,
    fill_release,
    read_notebook,
    release_path,
    solution_path,
)
from compresslib.grading.nbgrader_plugins import grading_policy  # noqa: E402

HOSTILE = {
    "noisy": "import sys, warnings\nwarnings.warn('a harmless warning')\nprint('to stderr', file=sys.stderr)\n",
    "flood": "print('x' * 20_000_000)\n",
    "exits": "import os\nos._exit(3)\n",
    "hang": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
}
MIX = {"complete": 50, "wrong": 30, "blank": 8, "noisy": 4, "flood": 3, "exits": 3, "hang": 2}  # per 100


def _mutants(assignment: str) -> dict:
    path = ROOT / "tests" / "mutants" / f"{assignment}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"mutants_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


def _with_cell(nb, code: str):
    """The notebook with one extra code cell after its first code cell (an unlocked, ungraded cell)."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first + 1, nbformat.v4.new_code_cell(code))
    return nb


def submissions(course: Path, assignment: str, count: int) -> dict[str, object]:
    """``count`` submissions of ``assignment``, named by kind, in the proportions of MIX."""
    release, solution = read_notebook(release_path(course, assignment)), read_notebook(solution_path(course, assignment))
    complete = fill_release(release, solution)
    wrong = [wrong_submission(course, assignment, name) for name in wrong_answers(course, assignment)]
    wrong += [fill_release(release, solution, {e["cell"]: e["code"]}) for e in _mutants(assignment).values()]
    made: dict[str, object] = {}
    for kind, share in MIX.items():
        for i in range(round(share * count / 100)):
            name = f"{kind}-{i:03d}"
            if kind == "complete":
                made[name] = complete
            elif kind == "blank":
                made[name] = example_submissions(course, assignment)["blank"]
            elif kind == "wrong":
                made[name] = wrong[i % len(wrong)]
            else:
                made[name] = _with_cell(complete, HOSTILE[kind])
    return made


def fresh_course(base: Path, into: Path) -> Path:
    if into.exists():
        shutil.rmtree(into)
    shutil.copytree(base, into, ignore=shutil.ignore_patterns("autograded", "feedback", "build", "grades.csv"))
    return into


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-notebook", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", choices=["sandboxed", "unsandboxed"], default=["sandboxed", "unsandboxed"])
    parser.add_argument("--assignments", nargs="+", default=None)
    parser.add_argument("--cell-timeout", type=float, default=30.0, help="seconds (the hanging submissions cost this)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the course folders here")
    args = parser.parse_args(argv)
    names = args.assignments or assignments(ROOT)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-grading-"))
    base = work / "base"
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", base)
    shutil.copytree(ROOT / "solutions", base / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "compresslib", base / "compresslib", ignore=shutil.ignore_patterns("__pycache__"))
    (base / "requirements.txt").write_text((ROOT / "requirements.txt").read_text())
    (base / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for assignment in names:
        steps.generate_assignment(base, assignment)
        for student, nb in submissions(base, assignment, args.per_notebook).items():
            folder = steps.submission_dir(base, student, assignment)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{assignment}.ipynb").write_text(nbformat.writes(nb))
    total = sum(len(list((base / "submitted").glob(f"*/{a}"))) for a in names)
    print(f"{total} submissions of {', '.join(names)} in {base}")
    policy = grading_policy(cell_timeout=args.cell_timeout)
    rows = []
    for mode in args.modes:
        for workers in args.workers:
            course = fresh_course(base, work / f"{mode}-{workers}")
            where = defaultdict(float)
            started = time.perf_counter()
            failed = 0
            for assignment in names:
                report = grade_class(course, assignment, workers=workers, unsandboxed=mode == "unsandboxed",
                                     policy=policy)
                failed += len(report.by_status("failed"))
                for outcome in report.outcomes.values():
                    for key, value in outcome.timings.items():
                        where[key] += value
            seconds = time.perf_counter() - started
            rows.append({"mode": mode, "workers": workers, "seconds": seconds, "per": seconds / total,
                         "failed": failed, "where": dict(where)})
            print(f"  {mode:11s} {workers} worker(s): {seconds:7.1f} s, {seconds / total:5.2f} s per submission "
                  f"({failed} not graded)")
    print(f"\n{total} submissions ({args.per_notebook} per notebook), cell timeout {args.cell_timeout:g} s")
    print(f"{'mode':12s}{'workers':>8s}{'total s':>10s}{'s/sub':>8s}{'speed-up':>10s}{'overhead':>10s}")
    for row in rows:
        one = next((r for r in rows if r["mode"] == row["mode"] and r["workers"] == 1), None)
        plain = next((r for r in rows if r["mode"] == "unsandboxed" and r["workers"] == row["workers"]), None)
        speedup = f"{one['seconds'] / row['seconds']:.2f}x" if one else "-"
        overhead = f"{100 * (row['seconds'] / plain['seconds'] - 1):+.1f}%" if plain and row is not plain else "-"
        print(f"{row['mode']:12s}{row['workers']:>8d}{row['seconds']:>10.1f}{row['per']:>8.2f}{speedup:>10s}{overhead:>10s}")
    print("\nwhere the seconds went (summed over submissions; workers run in parallel):")
    for row in rows:
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(row["where"].items(), key=lambda kv: -kv[1]))
        print(f"  {row['mode']} x{row['workers']}: {parts}")
    (work / "bench_grading.json").write_text(json.dumps(rows, indent=1))
    print(f"\nfigures in {work / 'bench_grading.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
