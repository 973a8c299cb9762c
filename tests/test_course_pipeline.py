"""The graded notebooks through the real grading path: ``grade_class`` (sandboxed execution in a pool of
2 workers, nbgrader's autograde with the kit's scorer, feedback, grades.csv) in a fresh course released
by ``nbgrader generate_assignment``.

Each assignment's submissions are graded in ONE ``grade_class`` call: the complete example (full marks),
the blank release (zero on every cell), the tampered example (graded with the original tests), one
submission per catalogued wrong answer (loses exactly its test's points, feedback names the mistake,
no other cell loses points) and a malformed file (reported, the others unaffected). Then a rerun skips
everything already graded and ``regrade`` grades one submission again.
"""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
import time

import nbformat
import pytest

from compresslib.course import nbgrader_steps as steps
from compresslib.course.examples import example_submissions, wrong_answers, wrong_submission
from compresslib.course.grade import grade_class
from compresslib.course.notebooks import fill_release, read_notebook, release_path, solution_path
from compresslib.grading.sandbox import availability
from course_kit import (ROOT, autograded, cell_scores, cell_text, feedback_path, feedback_text, graded_assignments,
                        graded_points, new_course, write_submission)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not availability(), reason=f"cannot sandbox here: {availability().reason}")]

ASSIGNMENTS = graded_assignments()
CASES = [(a, name) for a in ASSIGNMENTS for name in wrong_answers(ROOT, a)]
EXAMPLES = ("complete", "blank", "tampered", "malformed")


def _student(name: str) -> str:
    return "wrong-" + name.replace("_", "-")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return new_course(tmp_path_factory.mktemp("course"), ASSIGNMENTS)


@pytest.fixture(scope="module")
def graded(course):
    """Every submission of an assignment graded in one grade_class call with 2 workers; the wall time
    of each call is printed (run with -s to see it)."""
    reports = {}
    for assignment in ASSIGNMENTS:
        examples = example_submissions(course, assignment)
        for name in EXAMPLES:
            if name in examples:
                write_submission(course, name, assignment, examples[name])
        for name in wrong_answers(course, assignment):
            write_submission(course, _student(name), assignment, wrong_submission(course, assignment, name))
        started = time.perf_counter()
        report = grade_class(course, assignment, workers=2, progress=False)
        seconds = time.perf_counter() - started
        print(f"\n[timing] grade_class {assignment}: {len(report.outcomes)} submissions in {seconds:.1f} s "
              f"({seconds / len(report.outcomes):.1f} s each, 2 workers)")
        reports[assignment] = report
    return reports


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_in_repository_is_what_nbgrader_generates(course, assignment):
    generated = release_path(course, assignment).read_text()
    committed = release_path(ROOT, assignment).read_text()
    assert generated == committed, (
        f"notebooks/{assignment} differs from `nbgrader generate_assignment` of solutions/{assignment}: run `make release`"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_holds_no_solution_or_hidden_test(assignment):
    """No solution region, no hidden test (the capture line), and no line of any solution's code."""
    text = release_path(ROOT, assignment).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "compresslib.capture", "capture("):
        assert marker not in text, f"the release of {assignment} holds {marker!r}"
    release = read_notebook(release_path(ROOT, assignment))
    sources = "\n".join(c.source for c in release.cells)
    for cell in read_notebook(solution_path(ROOT, assignment)).cells:
        for region in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
            for line in region.splitlines():
                if len(line.strip()) > 12:  # long enough to be an answer, not a bare `return x`
                    assert line.strip() not in sources, f"the release of {assignment} holds solution code {line!r}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_walkthrough_is_built_from_its_source(assignment):
    from compresslib.course.notebooks import from_source, source_path

    built = [(c.cell_type, c.source) for c in from_source(source_path(ROOT, assignment)).cells]
    committed = [(c.cell_type, c.source) for c in read_notebook(solution_path(ROOT, assignment)).cells]
    assert built == committed, f"solutions/{assignment}/{assignment}.ipynb is stale: run `make release`"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_shipped_examples_match_the_release(assignment):
    for name, nb in example_submissions(ROOT, assignment).items():
        path = ROOT / "examples" / "submissions" / name / assignment / f"{assignment}.ipynb"
        expected = nb if isinstance(nb, str) else nbformat.writes(nb)
        assert path.read_text() == expected, f"{path} is stale: run `make release`"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_complete_example_gets_full_marks(course, graded, assignment):
    points = graded_points(course, assignment)
    assert graded[assignment].outcomes["complete"].status == "graded"
    assert cell_scores(course, assignment, "complete") == points
    assert graded[assignment].outcomes["complete"].score == sum(points.values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_gets_zero_on_every_cell(course, graded, assignment):
    scores = cell_scores(course, assignment, "blank")
    assert set(scores) == set(graded_points(course, assignment)) and set(scores.values()) == {0.0}, scores
    assert "not answered yet" in feedback_text(course, "blank", assignment)


@pytest.mark.parametrize(("assignment", "name"), CASES)
def test_wrong_answer_loses_exactly_its_tests_points(course, graded, assignment, name):
    entry = wrong_answers(course, assignment)[name]
    student = _student(name)
    expected = {**graded_points(course, assignment), entry["test"]: 0.0}
    assert cell_scores(course, assignment, student) == expected, f"{name}: not only {entry['test']} lost points"
    page = feedback_text(course, student, assignment)
    assert re.search(entry["message"], page), f"{name}: the feedback page does not name the mistake"
    assert re.search(entry["message"], cell_text(autograded(course, student, assignment), entry["test"]))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_tampered_example_is_graded_with_the_original_tests(course, graded, assignment):
    """The tampered example hides a mistake by editing its test cell to ``pass`` and deletes the test cell
    of a second mistake: both test cells are restored, so exactly those two tests lose their points."""
    catalog = runpy.run_path(str(course / "solutions" / assignment / "wrong_answers.py"))
    if not catalog.get("EXAMPLE_MISTAKE"):
        pytest.skip(f"{assignment} has no EXAMPLE_MISTAKE")
    entries = catalog["WRONG_ANSWERS"]
    first = entries[catalog["EXAMPLE_MISTAKE"]]
    second = next((e for e in entries.values() if e["test"] != first["test"] and e["cell"] != first["cell"]), None)
    lost = {first["test"]} | ({second["test"]} if second else set())
    expected = {t: (0.0 if t in lost else p) for t, p in graded_points(course, assignment).items()}
    assert cell_scores(course, assignment, "tampered") == expected
    assert re.search(first["message"], feedback_text(course, "tampered", assignment))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_malformed_notebook_is_reported_and_the_others_graded(course, graded, assignment):
    report = graded[assignment]
    assert report.outcomes["malformed"].status == "failed"
    assert "not a valid notebook" in report.outcomes["malformed"].error
    assert "malformed" not in steps.scores(course, assignment)
    others = {s for s, o in report.outcomes.items() if s != "malformed"}
    assert others == set(report.by_status("graded")), {s: o.error for s, o in report.outcomes.items()}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_and_grades_csv_are_written(course, graded, assignment):
    graded_students = graded[assignment].by_status("graded")
    for student in graded_students:
        page = feedback_path(course, student, assignment)
        assert page.exists(), f"no feedback for {student}"
    rows = (course / "grades.csv").read_text().splitlines()
    header = rows[0].split(",")
    for student in graded_students:
        row = next(r.split(",") for r in rows[1:] if r.split(",")[header.index("assignment")] == assignment
                   and r.split(",")[header.index("student_id")] == student)
        assert float(row[header.index("score")]) == graded[assignment].outcomes[student].score


def test_rerun_skips_graded_submissions_and_regrade_grades_one_again(course, graded):
    assignment = ASSIGNMENTS[0]
    before = steps.scores(course, assignment)
    feedback = feedback_path(course, "complete", assignment).stat().st_mtime_ns
    rerun = grade_class(course, assignment, workers=2, progress=False, feedback=False)
    assert rerun.by_status("graded") == [] and rerun.by_status("failed") == ["malformed"]
    assert set(rerun.by_status("skipped")) == set(before)
    again = grade_class(course, assignment, workers=2, progress=False, regrade=["complete"])
    assert again.by_status("graded") == ["complete"] and "blank" in again.by_status("skipped")
    after = steps.scores(course, assignment)
    assert {s: r.score for s, r in after.items()} == {s: r.score for s, r in before.items()}
    assert feedback_path(course, "complete", assignment).stat().st_mtime_ns > feedback


def test_dask_scheduler_gives_the_process_pools_scores(course, graded):
    """``grade --scheduler`` on a distributed.LocalCluster (2 worker processes, 1 thread each), through the
    command line: the same code path, the kit shipped to the workers as an archive, the same scores."""
    distributed = pytest.importorskip("distributed")
    assignment = ASSIGNMENTS[0]
    first_mistake = sorted(wrong_answers(ROOT, assignment))[0]
    students = ["complete", "blank", "tampered", _student(first_mistake)]
    before = {s: cell_scores(course, assignment, s) for s in students}
    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        command = [sys.executable, "-m", "compresslib.course", "grade", assignment, "--root", str(course),
                   "--scheduler", cluster.scheduler_address, *[f"--student={s}" for s in students],
                   *[f"--regrade={s}" for s in students]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    print(f"\n[timing] grade --scheduler (LocalCluster, 2 workers): {len(students)} submissions in "
          f"{time.perf_counter() - started:.1f} s")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((course / "build" / f"grading-report-{assignment}.json").read_text())
    assert report["executor"].startswith("dask (tcp://")
    assert {s: o["status"] for s, o in report["outcomes"].items()} == dict.fromkeys(students, "graded")
    assert {s: cell_scores(course, assignment, s) for s in students} == before


def test_fill_release_rejects_unknown_cells():
    release = read_notebook(release_path(ROOT, "01_soft_targets"))
    solution = read_notebook(solution_path(ROOT, "01_soft_targets"))
    with pytest.raises(ValueError, match="no solution cell"):
        fill_release(release, solution, {"no_such_cell": "pass"})
