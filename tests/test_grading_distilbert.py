"""Notebook 02's graded checks in-process (seconds; the nbgrader pipeline test does the same through
nbgrader): the reference answers pass, every catalogued wrong answer fails its check with its message,
a blank cell propagates NotImplementedError, and the fixture is what its recorder produces."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from graded import ROOT, assert_blank_cells_score_zero, assert_catalog_entry_caught, solution_namespace

from compresslib import combined_loss
from compresslib.course.examples import wrong_answers
from compresslib.course.notebooks import from_source, grade_id, source_path
from compresslib.grading import GradingError, load_fixture
from compresslib.grading import distilbert_student as checks

ASSIGNMENT = "02_distilbert_student"
CATALOG = wrong_answers(ROOT, ASSIGNMENT)
CHECKS = {
    "test_every_other_layers": ("every_other_layers", checks.check_every_other_layers),
    "test_make_student": ("make_student", checks.check_make_student),
    "test_teacher_logits": ("teacher_logits", checks.check_teacher_logits),
    "test_distill_step": ("distill_step", checks.check_distill_step),
}
IMPORTS = {"torch": torch, "nn": nn, "F": F, "copy": copy, "combined_loss": combined_loss}


def test_notebook_solution_passes_every_check():
    namespace = solution_namespace(ASSIGNMENT, IMPORTS)
    for name, check in CHECKS.values():
        check(namespace[name])


def test_every_graded_cell_has_a_check_and_the_points_add_up_to_10():
    cells = from_source(source_path(ROOT, ASSIGNMENT)).cells
    graded = {grade_id(c): c.metadata.nbgrader["points"] for c in cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert set(graded) == set(CHECKS)
    assert sum(graded.values()) == 10


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_wrong_answer_fails_its_check_with_its_message(name):
    entry = CATALOG[name]
    assert entry["cell"] == CHECKS[entry["test"]][0]
    assert_catalog_entry_caught(ASSIGNMENT, IMPORTS, CHECKS, entry)


def test_catalog_covers_the_issues_mistakes():
    messages = " ".join(e["message"] for e in CATALOG.values())
    for mistake in ("first k layers", "shares tensors", "embeddings", "train mode", "gradients enabled"):
        assert mistake in messages.replace("\\", ""), mistake


def test_not_implemented_propagates_so_a_blank_cell_scores_zero():
    assert_blank_cells_score_zero(CHECKS)


def test_other_plausible_mistakes_are_named():
    namespace = solution_namespace(ASSIGNMENT, IMPORTS)
    make_student = namespace["make_student"]

    def no_head(teacher, layers):
        student = make_student(teacher, layers)
        torch.nn.init.normal_(student.classifier.weight)
        return student

    with pytest.raises(GradingError, match="classifier was not copied"):
        checks.check_make_student(no_head)

    def output_object(teacher, batch):
        teacher.eval()
        with torch.no_grad():
            return teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    with pytest.raises(GradingError, match="output.logits"):
        checks.check_teacher_logits(output_object)

    def student_in_eval_mode(student, batch, optimizer, *, temperature, alpha):
        student.eval()
        z = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = combined_loss(z, batch["teacher_logits"], batch["labels"], alpha, temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    with pytest.raises(GradingError, match="eval mode"):
        checks.check_distill_step(student_in_eval_mode)


def test_fixture_has_provenance_and_matches_its_recorder():
    from compresslib.runs.distill_fixtures import COMMAND, make_fixtures

    stored = load_fixture(ASSIGNMENT)
    assert stored["provenance"]["command"] == COMMAND
    assert {"versions", "device"} <= set(stored["provenance"])
    fresh = make_fixtures()
    assert fresh["every_other_layers"] == stored["every_other_layers"]
    assert fresh["setting"]["teacher_state_dict"].keys() == stored["setting"]["teacher_state_dict"].keys()
    for key in ("teacher_logits", "student_logits"):
        torch.testing.assert_close(torch.tensor(fresh["init"][key]), torch.tensor(stored["init"][key]), atol=1e-5, rtol=1e-5)
    for key in ("loss", "hard", "soft"):
        assert fresh["kd_step"][key] == pytest.approx(stored["kd_step"][key], rel=1e-5)
    torch.testing.assert_close(torch.tensor(fresh["kd_step"]["student_logits_after_step"]),
                               torch.tensor(stored["kd_step"]["student_logits_after_step"]), atol=1e-5, rtol=1e-5)


def test_wrong_answers_in_the_fixture_are_distinguishable_from_the_right_one():
    fixture = load_fixture(ASSIGNMENT)
    for case in fixture["every_other_layers"]["cases"]:
        assert all(wrong != case["expected"] for wrong in case["wrong"].values()), case
    init, step = fixture["init"], fixture["kd_step"]
    expected = torch.tensor(init["student_logits"])
    assert not torch.allclose(torch.tensor(init["wrong_answers"]["first_k_layers"]["student_logits"]), expected, atol=1e-3)
    assert not torch.allclose(torch.tensor(init["wrong_answers"]["shared_not_copied"]["teacher_logits_after_student_step"]),
                              torch.tensor(init["teacher_logits"]), atol=1e-3)
    assert not torch.allclose(torch.tensor(step["wrong_answers"]["teacher_train_mode"]["teacher_logits"]),
                              torch.tensor(step["teacher_logits"]), atol=1e-3)
    assert abs(step["wrong_answers"]["no_t2"]["loss"] - step["loss"]) > 1e-2
    assert step["wrong_answers"]["teacher_grads_enabled"]["teacher_grad_norm"] > 0


def test_the_graded_student_starts_from_the_recorded_one():
    """The check's own renaming of the teacher's tensors gives the recorded student (no call into compresslib.distill)."""
    fixture = load_fixture(ASSIGNMENT)
    teacher = checks.build_teacher()
    torch.testing.assert_close(checks._logits(teacher), torch.tensor(fixture["init"]["teacher_logits"], dtype=torch.float64),
                               atol=1e-5, rtol=1e-5)
    student = checks.reference_student(teacher, fixture["setting"]["student_layers"])
    torch.testing.assert_close(checks._logits(student), torch.tensor(fixture["init"]["student_logits"], dtype=torch.float64),
                               atol=1e-5, rtol=1e-5)
