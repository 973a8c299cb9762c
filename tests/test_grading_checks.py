"""The graded checks in-process (seconds; the nbgrader pipeline test does the same through nbgrader):
the reference passes, every catalogued wrong answer fails with its message, and the fixtures are what
their recorder produces."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from graded import ROOT, assert_blank_cells_score_zero, assert_catalog_entry_caught, solution_namespace

import compresslib
from compresslib.course.examples import wrong_answers
from compresslib.grading import GradingError, load_fixture
from compresslib.grading import record
from compresslib.grading import soft_targets as checks

ASSIGNMENT = "01_soft_targets"
IMPORTS = {"torch": torch, "nn": nn, "F": F}
CATALOG = wrong_answers(ROOT, ASSIGNMENT)
CHECKS = {
    "test_softmax_with_temperature": ("softmax_with_temperature", checks.check_softmax_with_temperature),
    "test_distillation_loss": ("distillation_loss", checks.check_distillation_loss),
    "test_combined_loss": ("combined_loss", checks.check_combined_loss),
    "test_kd_step": ("kd_step", checks.check_kd_step),
}


def test_reference_implementation_passes_every_check():
    for _, (name, check) in CHECKS.items():
        check(getattr(compresslib, name))


def test_notebook_solution_passes_every_check():
    namespace = solution_namespace(ASSIGNMENT, IMPORTS)
    for name, check in CHECKS.values():
        check(namespace[name])


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_wrong_answer_fails_its_check_with_its_message(name):
    assert_catalog_entry_caught(ASSIGNMENT, IMPORTS, CHECKS, CATALOG[name])


def test_graded_alone_restores_the_students_functions():
    namespace = {"distillation_loss": "student's"}
    exec("def combined_loss(z, v, y, a, t):\n    return distillation_loss", namespace)
    with checks.graded_alone(namespace["combined_loss"], distillation_loss="reference"):
        assert namespace["combined_loss"](0, 0, 0, 0, 0) == "reference"
    assert namespace["distillation_loss"] == "student's"


def test_not_implemented_propagates_so_a_blank_cell_scores_zero():
    assert_blank_cells_score_zero(CHECKS)


def test_fixture_has_provenance_and_matches_its_recorder():
    stored = load_fixture("01_soft_targets")
    assert stored["provenance"]["command"] == "python -m compresslib.grading.record 01_soft_targets"
    fresh = record.record_soft_targets()
    for name in ("softmax_with_temperature", "distillation_loss", "combined_loss"):
        for a, b in zip(stored[name]["cases"], fresh[name]["cases"]):
            torch.testing.assert_close(torch.tensor(a["expected"]), torch.tensor(b["expected"]))
            for key in a["wrong"]:
                torch.testing.assert_close(torch.tensor(a["wrong"][key]), torch.tensor(b["wrong"][key]))
    for key, value in stored["kd_step"]["expected_student"].items():
        torch.testing.assert_close(torch.tensor(value), torch.tensor(fresh["kd_step"]["expected_student"][key]))


def test_wrong_answers_in_the_fixture_are_distinguishable_from_the_right_one():
    """A fixture where a mistake gives the right value could not catch that mistake."""
    for name in ("softmax_with_temperature", "distillation_loss", "combined_loss"):
        for case in load_fixture("01_soft_targets")[name]["cases"]:
            expected = torch.tensor(case["expected"])
            for key, value in case["wrong"].items():
                assert not torch.allclose(torch.tensor(value), expected, rtol=1e-3), f"{name}: {key}"


def test_a_tensor_instead_of_a_scalar_is_explained():
    with pytest.raises(GradingError, match="average over the examples"):
        checks.check_distillation_loss(lambda z, v, t: -(F.softmax(v / t, -1) * F.log_softmax(z / t, -1)).sum(-1))
