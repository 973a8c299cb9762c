"""Notebook 01's hidden tests in-process (seconds; the pipeline tests do the same through nbgrader and
the sandbox): the solution gets every test, a blank notebook none, each catalogued wrong answer loses
exactly its own test with its message, and the fixture is what its recorder produces."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from graded import (
    ROOT,
    assert_blank_scores_zero,
    assert_catalog_entry_caught,
    assert_full_marks,
    grade,
    solution_namespace,
)

import compresslib
from compresslib.course.examples import wrong_answers
from compresslib.grading.fixtures import load_fixture
from compresslib.grading.record import record

ASSIGNMENT = "01_soft_targets"
IMPORTS = {"torch": torch, "nn": nn, "F": F}
CATALOG = wrong_answers(ROOT, ASSIGNMENT)


def test_notebook_solution_passes_every_hidden_test():
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS))


def test_library_reference_passes_the_loss_tests():
    namespace = {name: getattr(compresslib, name) for name in
                 ("softmax_with_temperature", "distillation_loss", "combined_loss")}
    for test in ("test_softmax_with_temperature", "test_distillation_loss", "test_combined_loss"):
        assert grade(ASSIGNMENT, test, namespace).passed


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_wrong_answer_loses_exactly_its_test_with_its_message(name):
    assert_catalog_entry_caught(ASSIGNMENT, IMPORTS, CATALOG[name])


def test_blank_notebook_scores_zero_on_every_test():
    assert_blank_scores_zero(ASSIGNMENT, IMPORTS)


def test_fixture_has_provenance_and_matches_its_recorder():
    stored = load_fixture(ASSIGNMENT)
    assert stored["provenance"]["command"] == f"python -m compresslib.grading.record {ASSIGNMENT}"
    assert stored["tests"] == record(ASSIGNMENT)["tests"]


def test_every_catalogued_mistake_is_distinguishable_from_the_right_answer():
    """A case where a mistake gives the right value cannot catch that mistake; each mistake needs one
    case where it differs."""
    distinguished = {}
    for test, spec in load_fixture(ASSIGNMENT)["tests"].items():
        for case in spec["cases"]:
            for key, value in case["wrong"].items():
                expected = case["expected"].get("value", case["expected"].get("states"))
                differs = not torch.allclose(torch.tensor(_flat(value)), torch.tensor(_flat(expected)), rtol=1e-3)
                distinguished[(test, key)] = distinguished.get((test, key), False) or differs
    assert all(distinguished.values()), [k for k, v in distinguished.items() if not v]


def _flat(value):
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flat(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _flat(v)]
    return [float(value)]
