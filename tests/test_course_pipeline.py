"""The graded notebooks through real nbgrader: the solution gets full marks, the blank release zero,
each catalogued wrong answer loses the points of the test that targets it with a message naming the
mistake, tampered tests are restored, and the release in the repository is what nbgrader makes."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from compresslib.course import nbgrader_steps as steps
from compresslib.course.examples import example_submissions, wrong_answers, wrong_submission
from compresslib.course.notebooks import fill_release, grade_id, read_notebook, release_path, solution_path
from compresslib.course.pipeline import grade_all, score_table

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/wrong_answers.py"))
CASES = [(a, name) for a in ASSIGNMENTS for name in wrong_answers(ROOT, a)]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A fresh course directory: the config and solutions of this repository, released by nbgrader."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    for assignment in ASSIGNMENTS:
        steps.generate_assignment(root, assignment)
    return root


def _write(root: Path, student: str, assignment: str, nb) -> None:
    folder = steps.submission_dir(root, student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{assignment}.ipynb").write_text(nb if isinstance(nb, str) else nbformat.writes(nb))


def _student(name: str) -> str:
    return "wrong-" + name.replace("_", "-")


@pytest.fixture(scope="module")
def graded(course):
    """Autograde, in one nbgrader run per assignment: the complete and blank examples, the tampered one,
    and one submission per catalogued wrong answer. Notebooks read COMPRESSLIB_PROFILE=tiny so that
    their (ungraded) training demos stay short."""
    os.environ["COMPRESSLIB_PROFILE"] = "tiny"
    results = {}
    for assignment in ASSIGNMENTS:
        examples = example_submissions(course, assignment)
        for name in ("complete", "blank", "tampered"):
            if name in examples:
                _write(course, name, assignment, examples[name])
        for name in wrong_answers(course, assignment):
            _write(course, _student(name), assignment, wrong_submission(course, assignment, name))
        steps.nbgrader(course, "autograde", assignment, "--force")
        results[assignment] = steps.scores(course, assignment)
    return results


def _test_cells(root: Path, assignment: str) -> dict[str, float]:
    solution = read_notebook(solution_path(root, assignment))
    return {grade_id(c): c.metadata.nbgrader["points"] for c in solution.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def _feedback(root: Path, student: str, assignment: str, test: str) -> str:
    nb = read_notebook(steps.autograded_dir(root, student, assignment) / f"{assignment}.ipynb")
    cell = next(c for c in nb.cells if grade_id(c) == test)
    return "\n".join(o.get("evalue", "") + "".join(o.get("traceback", [])) + o.get("text", "") for o in cell.outputs)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_in_repository_is_what_nbgrader_generates(course, assignment):
    generated = release_path(course, assignment).read_text()
    committed = release_path(ROOT, assignment).read_text()
    assert generated == committed, (
        f"notebooks/{assignment} differs from `nbgrader generate_assignment` of solutions/{assignment}: run `make release`"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(assignment):
    text = release_path(ROOT, assignment).read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text and "grading.check_" not in text


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
def test_solution_gets_full_marks(course, graded, assignment):
    result = graded[assignment]["complete"]
    assert result.score == result.max_score == sum(_test_cells(course, assignment).values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_gets_zero_on_every_cell(course, graded, assignment):
    result = graded[assignment]["blank"]
    assert set(result.cells) == set(_test_cells(course, assignment))
    assert all(cell.score == 0 for cell in result.cells.values()), score_table(course, assignment)


@pytest.mark.parametrize(("assignment", "name"), CASES)
def test_wrong_answer_loses_the_points_of_its_test(course, graded, assignment, name):
    entry = wrong_answers(course, assignment)[name]
    result = graded[assignment][_student(name)]
    target = result.cells[entry["test"]]
    assert target.max_score > 0 and target.score == 0, f"{name}: {entry['test']} kept {target.score} points"
    message = _feedback(course, _student(name), assignment, entry["test"])
    assert re.search(entry["message"], message), f"{name}: feedback does not name the mistake:\n{message[-800:]}"
    # Graded alone: the other cells keep their points.
    others = {k: v.score for k, v in result.cells.items() if k != entry["test"] and v.score < v.max_score}
    assert not others, f"{name} also cost points in {others}"


def test_tampered_submission_is_graded_with_the_original_tests(course, graded):
    assignment = "01_soft_targets"
    result = graded[assignment]["tampered"]
    catalog = wrong_answers(course, assignment)
    edited = catalog["t2_factor_dropped"]["test"]
    assert result.cells[edited].score == 0, "the edited test cell was not replaced by the original"
    deleted = [c for c in _test_cells(course, assignment) if c not in {edited, "test_combined_loss", "test_kd_step"}]
    for test in deleted:
        assert test in result.cells and result.cells[test].score == 0, "the deleted test cell was not restored"
    assert result.cells["test_combined_loss"].score == result.cells["test_combined_loss"].max_score
    assert "drop the T^2 factor" in _feedback(course, "tampered", assignment, edited)


def test_rerun_skips_graded_submissions_and_reports_malformed_ones(course, graded):
    assignment = "01_soft_targets"
    before = steps.scores(course, assignment)
    _write(course, "malformed", assignment, example_submissions(course, assignment)["malformed"])
    report = grade_all(course, assignment, ["complete", "blank", "malformed"], feedback=False)
    assert report.skipped == ["complete", "blank"] and report.graded == []
    assert "malformed" in report.failed and "not a valid notebook" in report.failed["malformed"]
    after = steps.scores(course, assignment)
    assert {s: r.score for s, r in after.items()} == {s: r.score for s, r in before.items()}


def test_feedback_and_export(course, graded):
    assignment = "01_soft_targets"
    folder = steps.generate_feedback(course, assignment, "complete")
    assert (folder / f"{assignment}.html").exists()
    grades = steps.export_grades(course).read_text()
    assert "complete" in grades and "blank" in grades


def test_fill_release_rejects_unknown_cells():
    release = read_notebook(release_path(ROOT, "01_soft_targets"))
    solution = read_notebook(solution_path(ROOT, "01_soft_targets"))
    with pytest.raises(ValueError, match="no solution cell"):
        fill_release(release, solution, {"no_such_cell": "pass"})
