"""The notebook-03 fixtures are reproducible and tell the right answer from the catalogued wrong ones."""

import json

import pytest
import torch

from compresslib.runs.tickets_fixtures import DEFAULT_DIR, FIXTURE_NAME, build_fixtures


@pytest.fixture(scope="module")
def stored():
    return json.loads((DEFAULT_DIR / FIXTURE_NAME).read_text())


@pytest.fixture(scope="module")
def fresh():
    return json.loads(json.dumps(build_fixtures()))


def test_stored_fixtures_match_a_fresh_recording(stored, fresh):
    tol = stored["tolerance"]
    for name, case in fresh["cases"].items():
        compare(case, stored["cases"][name], tol, name)


def compare(a, b, tol, where):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            compare(a[k], b[k], tol, f"{where}.{k}")
    elif isinstance(a, list) and a and not isinstance(a[0], str):
        assert torch.allclose(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64),
                              atol=tol["atol"], rtol=tol["rtol"]), where
    else:
        assert a == b, where


def differs(a, b):
    if isinstance(a, dict):
        return any(differs(a[k], b[k]) for k in a)
    return not torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5)


def test_every_wrong_answer_differs_from_the_expected(stored):
    for name, case in stored["cases"].items():
        for wrong_name, wrong in case["wrong"].items():
            keys = [k for k in wrong if k != "message"]
            assert keys, (name, wrong_name)
            assert any(differs(case["expected"][k], wrong[k]) for k in keys if k in case["expected"]), (name, wrong_name)
            assert wrong["message"]


def test_key_values(stored):
    c = stored["cases"]
    assert c["magnitude_mask"]["expected"]["sparsity"] == 0.5
    assert c["magnitude_mask"]["wrong"]["keep_ties_ge"]["sparsity"] == 0.25
    assert c["prune_remaining"]["expected"]["sparsity"] == 0.75
    assert c["prune_remaining"]["wrong"]["fraction_of_all"]["sparsity"] == 0.5
    assert c["train_with_mask"]["expected"]["regrown"] == 0 < c["train_with_mask"]["wrong"]["mask_applied_once"]["regrown"]
    assert c["imp_round"]["expected"]["sparsity_round2"] == pytest.approx(0.75, abs=0.02)
    assert stored["provenance"]["command"] == "python -m compresslib.runs tickets --fixtures-only"
