"""The notebook-03 graded checks in-process (seconds; the nbgrader pipeline test does the same through
nbgrader): the solution passes, every catalogued wrong answer fails with its message, other plausible
mistakes are named too, a blank cell propagates NotImplementedError, and the fixtures carry provenance."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from graded import (ROOT, assert_blank_cells_score_zero, assert_catalog_entry_caught, assert_check_fails,
                    solution_cell, solution_namespace as _solution_namespace)

from compresslib.course.examples import wrong_answers
from compresslib.grading import GradingError, load_fixture
from compresslib.grading import lottery_tickets as checks

ASSIGNMENT = "03_lottery_tickets"
CATALOG = wrong_answers(ROOT, ASSIGNMENT)
CHECKS = {
    "test_magnitude_mask": ("magnitude_mask", checks.check_magnitude_mask),
    "test_prune_remaining": ("prune_remaining", checks.check_prune_remaining),
    "test_train_with_mask": ("train_with_mask", checks.check_train_with_mask),
    "test_imp_round": ("imp_round", checks.check_imp_round),
}


IMPORTS = {"torch": torch, "nn": nn, "F": F}


def solution_namespace(overrides=None) -> dict:
    return _solution_namespace(ASSIGNMENT, IMPORTS, overrides)


def test_solution_passes_every_check():
    namespace = solution_namespace()
    for name, check in CHECKS.values():
        check(namespace[name])


def test_catalog_covers_every_mistake_of_the_issue():
    covered = {entry["test"] for entry in CATALOG.values()}
    assert covered == set(CHECKS)
    assert {"signed_pruning", "threshold_keeps_ties", "fraction_of_all_weights", "mask_applied_once",
            "rewind_drops_mask", "rewind_to_final_weights"} <= set(CATALOG)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_wrong_answer_fails_its_check_with_its_message(name):
    assert_catalog_entry_caught(ASSIGNMENT, IMPORTS, CHECKS, CATALOG[name])


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_wrong_answer_keeps_the_other_checks(name):
    """Graded alone: one mistake costs the points of one test only."""
    entry = CATALOG[name]
    namespace = solution_namespace({entry["cell"]: entry["code"]})
    for test, (function_name, check) in CHECKS.items():
        if test != entry["test"]:
            check(namespace[function_name])


def _replace(code: str, old: str, new: str) -> str:
    assert old in code
    return code.replace(old, new)


def _cell(grade: str) -> str:
    return solution_cell(ASSIGNMENT, grade)


@pytest.mark.parametrize(("cell", "old", "new", "message"), [
    ("magnitude_mask", "torch.sort(scores, stable=True).indices[:k]",
     "torch.sort(scores, stable=True, descending=True).indices[scores.numel() - k:]", "position"),
    ("imp_round", "    train(model, mask)\n", "", "never called train"),
    ("imp_round", "    model.load_state_dict(theta0)\n",
     "    with torch.no_grad():\n        for n, p in model.named_parameters():\n"
     "            p.copy_(theta0[n]) if n in mask else None\n", "biases"),
    ("imp_round", "    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)\n",
     "    new_mask = magnitude_mask({name: params[name].detach() for name in mask}, fraction)\n",
     "did not increase the sparsity"),
    ("train_with_mask", "    apply_mask(model, mask)\n    model.train()\n", "    model.train()\n", "before the first step"),
])
def test_other_plausible_mistakes_are_named(cell, old, new, message):
    code = _replace(_cell(cell), old, new)
    namespace = solution_namespace({cell: code})
    function_name, check = CHECKS["test_" + cell]
    assert_check_fails(check, namespace[function_name], message)


PER_LAYER = """def magnitude_mask(weights, sparsity):
    masks = {}
    for name, w in weights.items():
        k = int(round(sparsity * w.numel()))
        keep = torch.ones(w.numel())
        keep[torch.sort(w.detach().abs().flatten(), stable=True).indices[:k]] = 0.0
        masks[name] = keep.view(w.shape)
    return masks
"""


def test_per_layer_instead_of_global_is_named():
    namespace = solution_namespace({"magnitude_mask": PER_LAYER})
    with pytest.raises(GradingError, match="ranks all tensors together"):
        checks.check_magnitude_mask(namespace["magnitude_mask"])


def test_not_implemented_propagates_so_a_blank_cell_scores_zero():
    assert_blank_cells_score_zero(CHECKS)


def test_checks_do_not_call_compresslib_for_the_graded_function(monkeypatch):
    """The reference versions swapped in are only the *earlier* functions: grading magnitude_mask with
    compresslib's magnitude pruning broken still passes the student's own implementation."""
    import compresslib.prune as prune

    monkeypatch.setattr(prune, "magnitude_mask", lambda *a, **k: (_ for _ in ()).throw(AssertionError("called")))
    monkeypatch.setattr(prune, "prune_remaining", lambda *a, **k: (_ for _ in ()).throw(AssertionError("called")))
    namespace = solution_namespace()
    checks.check_magnitude_mask(namespace["magnitude_mask"])
    checks.check_train_with_mask(namespace["train_with_mask"])


def test_fixture_has_provenance_and_the_ties_case():
    stored = load_fixture(ASSIGNMENT)
    assert stored["provenance"]["command"] == "python -m compresslib.runs tickets --fixtures-only"
    ties = stored["cases"]["magnitude_ties"]
    assert ties["expected"]["sparsity"] == 0.25
    assert ties["wrong"]["prune_all_ties"]["sparsity"] == 0.5 and ties["wrong"]["keep_ties_ge"]["sparsity"] == 0.0
