"""What the adversarial corpus (tests/adversarial/) found, each fix checked in seconds without a sandbox:
cell metadata restored from the gradebook, the oracle offered only in order and bounded, malformed reports
scored as failures, and submissions that are links or carry extra notebooks."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.api import Gradebook
from nbgrader.utils import compute_checksum
from traitlets.config import Config

from compresslib.capture import run_harness
from compresslib.capture.stand_ins import ORACLE_PROMPT, set_transport
from compresslib.course.grade import MAX_SUBMISSION_BYTES, submitted_notebooks
from compresslib.course.nbgrader_steps import copy_submissions
from compresslib.course.notebooks import NotebookError
from compresslib.grading.fixtures import hidden_inputs
from compresslib.grading.judging import score_report
from compresslib.grading.nbgrader_plugins import SANITIZE_PREPROCESSORS
from compresslib.grading.oracle import MAX_REQUEST_NUMBERS, StandInOracle, answer, scope
from graded import harness_report, solution_namespace

A01 = "01_soft_targets"

# --- cell metadata restored from the gradebook --------------------------------------------------------


def _cell(source: str, grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float = 0):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
                                 "solution": solution, "task": False, **({"points": points} if grade else {})}
    cell.metadata["nbgrader"]["checksum"] = compute_checksum(cell)
    return cell


@pytest.fixture
def released(tmp_path, monkeypatch):
    """A gradebook holding one notebook: an answer cell and two test cells (2 and 3 points), and the release."""
    import sys

    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    cells = [_cell("def f():\n    raise NotImplementedError()", "answer", grade=False, solution=True, locked=False),
             _cell("check(f)", "test_first", grade=True, solution=False, locked=True, points=2),
             _cell("check(f, 2)", "test_second", grade=True, solution=False, locked=True, points=3)]
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as gradebook:
        gradebook.add_assignment("a")
        gradebook.add_notebook("nb", "a")
        for cell in cells:
            meta = cell.metadata.nbgrader
            gradebook.add_source_cell(meta.grade_id, "nb", "a", cell_type="code", locked=meta.locked,
                                      source=cell.source, checksum=meta.checksum)
            if meta.grade:
                gradebook.add_grade_cell(meta.grade_id, "nb", "a", max_score=meta.points, cell_type="code")
            if meta.solution:
                gradebook.add_solution_cell(meta.grade_id, "nb", "a")
    return url, new_notebook(cells=[new_markdown_cell("# title"), *cells])


def _sanitize(url: str, nb):
    config = Config()
    config.OverwriteCells.add_missing_cells = True
    resources = {"nbgrader": {"student": "s", "assignment": "a", "notebook": "nb", "db_url": url}}
    for preprocessor in SANITIZE_PREPROCESSORS:
        nb, resources = preprocessor(config=config).preprocess(nb, resources)
    return nb


def _graded(nb) -> list[tuple[str, str, float]]:
    """(grade id, last line of the source, points) of each graded cell (a restored missing cell starts with
    nbgrader's note)."""
    graded = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    return [(c["metadata"]["nbgrader"]["grade_id"], c["source"].splitlines()[-1], c["metadata"]["nbgrader"]["points"])
            for c in graded]


def test_edited_flags_points_and_sources_of_test_cells_are_restored(released):
    """A test cell made an unlocked solution cell worth 100 points with new code, and a test cell flagged as a
    solution: nbgrader alone rejects the notebook ("Inconsistent checksums"); restored, it is graded as released."""
    url, release = released
    nb = copy.deepcopy(release)
    nb.cells[2].metadata.nbgrader.update(grade=False, solution=True, locked=False, points=100)
    nb.cells[2].source = "print('no tests')"
    nb.cells[3].metadata.nbgrader["solution"] = True
    assert _graded(_sanitize(url, nb)) == [("test_first", "check(f)", 2.0), ("test_second", "check(f, 2)", 3.0)]


def test_unknown_malformed_and_duplicated_grade_ids_leave_one_cell_per_test(released):
    """A renamed test cell, garbage nbgrader metadata, and a test cell copied twice: the renamed one becomes an
    ordinary cell and the original is put back, the garbage is dropped, the last copy holds the test."""
    url, release = released
    nb = copy.deepcopy(release)
    nb.cells[3].metadata.nbgrader["grade_id"] = "test_mine"
    nb.cells[0].metadata["nbgrader"] = "garbage"
    first_copy, second_copy = copy.deepcopy(nb.cells[2]), copy.deepcopy(nb.cells[2])
    second_copy.source = "steal()"
    nb.cells.insert(1, first_copy)
    nb.cells.append(second_copy)
    nb.cells.append(new_code_cell("x = 1", metadata={"nbgrader": {"grade": True, "points": "many"}}))
    sanitized = _sanitize(url, nb)
    assert _graded(sanitized) == [("test_first", "check(f)", 2.0), ("test_second", "check(f, 2)", 3.0)]
    # title, first copy, answer, copied original, renamed test, last copy, test_second put back, the id-less cell
    assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in sanitized.cells] == [
        None, None, "answer", None, None, "test_first", "test_second", None]


# --- the stand-ins' oracle ------------------------------------------------------------------------------


def _oracle() -> StandInOracle:
    inputs = hidden_inputs(A01)
    return StandInOracle(A01, {t: scope([c.get("stand_ins", {}) for c in s["cases"]]) for t, s in inputs.items()})


def test_the_oracle_is_offered_only_after_every_earlier_test_cell():
    """A dependent test cell moved above an earlier test gets no oracle (it could collect the earlier
    function's answers on that function's own hidden inputs); in order, it does; a test without stand-ins never."""
    oracle = _oracle()
    earlier = {"test_softmax_with_temperature", "test_distillation_loss"}
    assert oracle.handler("test_combined_loss", earlier) is not None
    assert oracle.handler("test_combined_loss", {"test_softmax_with_temperature"}) is None
    assert oracle.handler("test_kd_step", earlier) is None
    assert oracle.handler("test_softmax_with_temperature", set()) is None
    assert oracle.handler(None, earlier | {"test_combined_loss"}) is None


def test_the_fixture_lists_the_tests_in_the_notebooks_order():
    """The oracle takes the test order from the hidden inputs: it must be the order of the test cells."""
    from course_kit import ROOT, graded_assignments
    from compresslib.course.notebooks import grade_id, read_notebook, solution_path

    for assignment in graded_assignments():
        cells = [grade_id(c) for c in read_notebook(solution_path(ROOT, assignment)).cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
        assert list(hidden_inputs(assignment)) == cells, assignment


def test_the_oracle_refuses_requests_that_would_exhaust_the_grader():
    """A dense softmax Jacobian of 15,000 logits (25 GB), a request of too many numbers, requests nested too
    deep to parse or decode: each is refused in well under a second, none raises."""
    started = time.monotonic()
    big = {"function": "softmax_with_temperature", "args": {"logits": {"tensor": [[0.5] * 15_000]},
                                                            "temperature": 1.0, "dim": -1}}
    assert "unavailable" in answer(A01, {"softmax_with_temperature"}, big)
    many = {"function": "distillation_loss", "args": {"student_logits": {"tensor": [[0.1] * 10] * (MAX_REQUEST_NUMBERS // 10 + 1)},
                                                      "teacher_logits": {"tensor": [[0.1] * 10]}, "temperature": 1.0}}
    assert "unavailable" in answer(A01, {"distillation_loss"}, many)
    deep = {"tensor": 1.0}
    for _ in range(2_000):
        deep = {"mapping": {"x": deep}}
    reply = answer(A01, {"softmax_with_temperature"}, {"function": "softmax_with_temperature",
                                                         "args": {"logits": deep, "temperature": 1.0, "dim": -1}})
    assert set(reply) <= {"unavailable", "raised"}
    handler = _oracle().handler("test_distillation_loss", {"test_softmax_with_temperature"})
    assert "unavailable" in json.loads(handler(ORACLE_PROMPT + "[" * 100_000 + "]" * 100_000))
    assert time.monotonic() - started < 5


def test_the_oracle_still_answers_the_calls_a_correct_answer_makes():
    """The bounds leave room: the stand-ins of the solution's dependent tests still get their answers."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    namespace = solution_namespace(A01, {"torch": torch, "nn": nn, "F": F})
    asked = []
    for test in ("test_distillation_loss", "test_combined_loss", "test_kd_step"):
        cases = hidden_inputs(A01)[test]["cases"]
        allowed = scope([c.get("stand_ins", {}) for c in cases])
        set_transport(lambda request: asked.append(answer(A01, allowed, request)) or asked[-1])
        try:
            report = json.loads(json.dumps(run_harness(A01, test, cases, namespace)))
        finally:
            set_transport(None)
        assert score_report(A01, test, report).passed, test
    assert asked and not any("unavailable" in reply for reply in asked)


# --- the scorer -----------------------------------------------------------------------------------------


def _mutations(value, path=()):
    """Every way of replacing one dict entry or list item of a report by a value of another type."""
    if isinstance(value, dict):
        for key, item in value.items():
            for odd in (None, 7, "x", [1, 2], {"k": []}, 1e308, -1):
                yield path + (key,), odd
            yield from _mutations(item, path + (key,))
    elif isinstance(value, list) and value and isinstance(value[0], dict | list):
        for i, item in enumerate(value[:2]):
            yield from _mutations(item, path + (i,))


def _replace(report, path, odd):
    report = copy.deepcopy(report)
    target = report
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = odd
    return report


@pytest.mark.parametrize("test", ["test_softmax_with_temperature", "test_kd_step"])
def test_a_malformed_report_fails_its_test_and_never_stops_the_scorer(test):
    """The right report with any one entry replaced by a value of another type: a verdict, never an
    exception (which would fail the whole notebook in nbgrader instead of this one cell)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    namespace = solution_namespace(A01, {"torch": torch, "nn": nn, "F": F})
    report = harness_report(A01, test, namespace)
    assert score_report(A01, test, report).passed
    count = 0
    for path, odd in _mutations(report):
        verdict = score_report(A01, test, _replace(report, path, odd))
        count += 1
        assert isinstance(verdict.message, str)
    assert count > 50


# --- submissions that are not plain notebooks -------------------------------------------------------------


def _submission(root: Path, student: str = "s") -> Path:
    folder = root / "submitted" / student / "a"
    folder.mkdir(parents=True)
    return folder


def test_a_linked_notebook_or_folder_is_refused(tmp_path):
    """A link in place of the notebook (to the solution, to another student's) would be graded as the
    student's own: refused, whatever it points to."""
    secret = tmp_path / "solutions" / "a" / "nb.ipynb"
    secret.parent.mkdir(parents=True)
    secret.write_text("{}")
    (_submission(tmp_path, "linked") / "nb.ipynb").symlink_to(secret)
    with pytest.raises(NotebookError, match="symbolic link"):
        submitted_notebooks(tmp_path, "linked", "a", ["nb"])
    folder = _submission(tmp_path, "deep")
    (folder / "nb.ipynb").write_text("{}")
    (folder / "data").mkdir()
    (folder / "data" / "x").symlink_to("/etc/passwd")
    with pytest.raises(NotebookError, match="symbolic link"):
        submitted_notebooks(tmp_path, "deep", "a", ["nb"])
    (tmp_path / "submitted" / "alias").symlink_to(tmp_path / "submitted" / "deep")
    with pytest.raises(NotebookError, match="symbolic link"):
        submitted_notebooks(tmp_path, "alias", "a", ["nb"])


def test_extra_notebooks_are_ignored_and_sizes_checked(tmp_path):
    folder = _submission(tmp_path)
    (folder / "nb.ipynb").write_text("{}")
    (folder / "scratch.ipynb").write_text("{}")
    assert submitted_notebooks(tmp_path, "s", "a", ["nb"]) == [folder / "nb.ipynb"]
    with pytest.raises(NotebookError, match="no notebook of a"):
        submitted_notebooks(tmp_path, "s", "a", ["other"])
    with open(folder / "nb.ipynb", "w") as handle:
        handle.truncate(MAX_SUBMISSION_BYTES + 1)
    with pytest.raises(NotebookError, match="limit"):
        submitted_notebooks(tmp_path, "s", "a", ["nb"])


def test_collecting_submissions_copies_links_as_links(tmp_path):
    """Collecting never reads through a link (it could point at the instructor's files); folders are copied."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the answer key")
    source = tmp_path / "incoming" / "s" / "a"
    source.mkdir(parents=True)
    (source / "nb.ipynb").symlink_to(secret)
    (source / "notes").mkdir()
    (source / "notes" / "n.txt").write_text("notes")
    copy_submissions(tmp_path / "incoming", tmp_path / "course")
    target = tmp_path / "course" / "submitted" / "s" / "a"
    assert (target / "nb.ipynb").is_symlink() and os.readlink(target / "nb.ipynb") == str(secret)
    assert (target / "notes" / "n.txt").read_text() == "notes"
    with pytest.raises(NotebookError, match="symbolic link"):
        submitted_notebooks(tmp_path / "course", "s", "a", ["nb"])
