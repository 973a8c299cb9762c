"""Notebook 04's hidden tests in-process (seconds; the pipeline tests do the same through nbgrader and
the sandbox): the solution gets every test, a blank notebook none, each catalogued wrong answer loses
exactly its own test with its message, the fixture is what its recorder produces, grading never needs
compresslib's reference answers, and correct answers written differently keep full marks."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from graded import ROOT, assert_blank_scores_zero, assert_catalog_entry_caught, assert_full_marks, grade, solution_namespace

import compresslib.ledger as ledger
import compresslib.lowrank.factorize as factorize
import compresslib.quantize.uniform as uniform
import compresslib.svd as svd
from compresslib.course.examples import wrong_answers
from compresslib.grading.fixtures import load_fixture
from compresslib.grading.record import precision_rank_sharing as rules
from compresslib.grading.record import record
from compresslib.lowrank import LowRankLinear

ASSIGNMENT = "04_precision_rank_sharing"
IMPORTS = {"torch": torch, "nn": nn, "math": math, "LowRankLinear": LowRankLinear}
CATALOG = wrong_answers(ROOT, ASSIGNMENT)


def test_notebook_solution_passes_every_hidden_test():
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS))


def test_library_reference_answers_pass_their_hidden_tests():
    """compresslib's reference answers (locked in the student kit while 04 is open) meet the same judges."""
    namespace = {"quantize_per_channel": uniform.quantize_per_channel,
                 "dequantize_per_channel": uniform.dequantize_per_channel,
                 "low_rank_factors": svd.low_rank_factors, "factorize_linear": factorize.factorize_linear,
                 "low_rank_parameter_count": factorize.low_rank_parameter_count,
                 "stored_bytes": lambda numel, bits, scales=0: ledger.tensor_bytes(numel, bits) + 4 * scales}
    for test in load_fixture(ASSIGNMENT)["tests"]:
        verdict = grade(ASSIGNMENT, test, dict(namespace))
        assert verdict.passed, (test, verdict.message)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_wrong_answer_loses_exactly_its_test_with_its_message(name):
    assert_catalog_entry_caught(ASSIGNMENT, IMPORTS, CATALOG[name])


def test_blank_notebook_scores_zero_on_every_test():
    assert_blank_scores_zero(ASSIGNMENT, IMPORTS)


def test_catalog_has_at_least_five_mistakes_per_graded_function():
    per_test = {test: sum(entry["test"] == test for entry in CATALOG.values()) for test in load_fixture(ASSIGNMENT)["tests"]}
    assert min(per_test.values()) >= 5, per_test


def test_fixture_has_provenance_and_matches_its_recorder():
    stored = load_fixture(ASSIGNMENT)
    assert stored["provenance"]["command"] == f"python -m compresslib.grading.record {ASSIGNMENT}"
    assert stored["tests"] == record(ASSIGNMENT)["tests"]


def _features(value):
    """A recorded output as one flat list of floats (dicts by sorted key)."""
    if isinstance(value, dict):
        return [x for key in sorted(value) for x in _features(value[key])]
    if isinstance(value, list):
        return [x for item in value for x in _features(item)]
    if isinstance(value, str):
        return []
    return [float(value)]


def test_every_recorded_mistake_differs_from_the_right_answer_somewhere():
    """A mistake that gives the right output on every case cannot be caught; each needs one case where it differs
    (compared on the fields it records)."""
    distinguished = {}
    for test, spec in load_fixture(ASSIGNMENT)["tests"].items():
        for case in spec["cases"]:
            for key, wrong in case["wrong"].items():
                expected = {field: case["expected"][field] for field in wrong}
                a, b = _features(wrong), _features(expected)
                differs = len(a) != len(b) or not np.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True)
                distinguished[(test, key)] = distinguished.get((test, key), False) or differs
    assert all(distinguished.values()), [k for k, v in distinguished.items() if not v]


def test_each_count_mistake_is_named_on_the_first_case_it_fails():
    """The judges name a mistake from the first case where the count is wrong, by the first message whose
    recorded count matches: no other mistake may give the same number there."""
    for test in ("test_low_rank_parameter_count", "test_stored_bytes"):
        cases = load_fixture(ASSIGNMENT)["tests"][test]["cases"]
        for mistake in cases[0]["wrong"]:
            first = next(c for c in cases if c["wrong"][mistake]["value"] != c["expected"]["value"])
            value = first["wrong"][mistake]["value"]
            same = [other for other, wrong in first["wrong"].items() if other != mistake and wrong["value"] == value]
            assert not same, (test, mistake, same)


def test_quantisation_inputs_stay_away_from_rounding_ties():
    """Any correct rounding rule (half to even, half away from zero) gives the recorded codes."""
    cases = load_fixture(ASSIGNMENT)["tests"]["test_quantize_per_channel"]["cases"]
    for case in cases:
        w = np.asarray(case["inputs"]["weight"]["tensor"], dtype=np.float32)
        assert rules.tie_margin(w, case["inputs"]["bits"]) > 1e-3
    assert {case["inputs"]["bits"] for case in cases} == set(range(2, 9)), "every k from 2 to 8"


def test_the_closed_forms_agree_with_the_library():
    """The recorder's NumPy formulas and compresslib's torch reference answers compute the same thing."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 7)).astype(np.float32)
    w[2] = 0
    for bits in range(2, 9):
        codes, scales = uniform.quantize_per_channel(torch.from_numpy(w), bits)
        expected_codes, expected_scales = rules.quantize_per_channel(w, bits)
        assert np.array_equal(codes.numpy(), expected_codes) and np.allclose(scales.numpy(), expected_scales, rtol=1e-6)
    a, b = svd.low_rank_factors(torch.from_numpy(w).double(), 3)
    assert np.allclose((a @ b).numpy(), rules.best_rank_r(w, 3), atol=1e-10)
    assert factorize.low_rank_parameter_count(7, 5, 3) == rules.low_rank_parameter_count(7, 5, 3, True)
    assert ledger.tensor_bytes(35, 5) + 4 * 7 == rules.stored_bytes(35, 5, 7)


def test_grading_never_calls_the_library_reference_answers(monkeypatch):
    """The student kit locks compresslib's quantisation, SVD factors, factorisation and byte counts while
    notebook 04 is open: grading the solution must work with every one of them broken."""
    def locked(*args, **kwargs):
        raise AssertionError("a reference answer was called")

    for module, name in ((uniform, "quantize"), (uniform, "dequantize"), (uniform, "quantize_per_channel"),
                         (uniform, "dequantize_per_channel"), (uniform, "fake_quantize"), (svd, "low_rank_factors"),
                         (factorize, "low_rank_factors"), (factorize, "factorize_linear"),
                         (factorize, "low_rank_parameter_count"), (ledger, "tensor_bytes"), (ledger, "model_bytes")):
        monkeypatch.setattr(module, name, locked)
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS))


def test_the_stand_in_hands_factorize_linear_the_oracles_factors():
    """A factorize_linear that calls a broken low_rank_factors keeps its marks: the stand-in answers the call."""
    broken = "def low_rank_factors(weight, rank):\n    return weight, weight\n"
    verdict = grade(ASSIGNMENT, "test_factorize_linear", solution_namespace(ASSIGNMENT, IMPORTS,
                                                                            {"low_rank_factors": broken}))
    assert verdict.passed, verdict.message


# Correct answers written differently from the solution: the hidden tests must not depend on how.
ALTERNATIVES = {
    "quantize_half_away_from_zero": ("quantize_per_channel", '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    m = weight.abs().max(dim=1).values.clamp(min=1e-12)
    scales = m / qmax
    ratio = weight / scales.unsqueeze(1)
    codes = torch.sign(ratio) * torch.floor(ratio.abs() + 0.5)
    return codes.clamp(-qmax, qmax).to(torch.int8), scales
'''),
    "quantize_numpy_int64": ("quantize_per_channel", '''import numpy as np


def quantize_per_channel(weight, bits):
    w = weight.detach().cpu().numpy().astype(np.float64)
    qmax = 2 ** (bits - 1) - 1
    s = np.abs(w).max(axis=1) / qmax
    s[s == 0] = 1.0
    q = np.clip(np.round(w / s[:, None]), -qmax, qmax)
    return torch.from_numpy(q.astype(np.int64)), torch.from_numpy(s)
'''),
    "dequantize_einsum_float64": ("dequantize_per_channel", '''def dequantize_per_channel(codes, scales):
    return torch.einsum("ij,i->ij", codes.double(), scales.double())
'''),
    "factors_torch_svd_lowrank_signs_flipped": ("low_rank_factors", '''def low_rank_factors(weight, rank):
    U, S, V = torch.svd(weight.double())
    root = torch.diag(S[:rank].sqrt())
    a, b = -(U[:, :rank] @ root), -(root @ V[:, :rank].T)
    return a.to(weight.dtype), b.to(weight.dtype)
'''),
    "factorize_sequential": ("factorize_linear", '''def factorize_linear(linear, rank):
    a, b = low_rank_factors(linear.weight, rank)
    first = nn.Linear(linear.in_features, rank, bias=False)
    second = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
    first.weight = nn.Parameter(b.detach().clone())
    second.weight = nn.Parameter(a.detach().clone())
    if linear.bias is not None:
        second.bias = nn.Parameter(linear.bias.detach().clone())
    return nn.Sequential(first, second)
'''),
    "count_numpy_int": ("low_rank_parameter_count", '''import numpy as np


def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return np.int64(rank) * (in_features + out_features) + out_features * int(bias)
'''),
    "bytes_integer_ceil": ("stored_bytes", '''def stored_bytes(numel, bits, scales=0):
    return -(-numel * bits // 8) + 4 * scales
'''),
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_correct_answers_written_differently_keep_full_marks(name):
    cell, code = ALTERNATIVES[name]
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS, {cell: code}))
