"""Notebook 03's grading fixture: recorded by its command, its expected values agree with two other
implementations (compresslib.prune's reference for the masks, torch's optimizers for training), its
cases cover what the hidden tests must catch, and every catalogued mistake shows in some case."""

import numpy as np
import pytest
import torch

from compresslib.capture.lottery_tickets import make_optimizer, probe_model
from compresslib.capture.plain import from_input
from compresslib.grading.fixtures import load_fixture
from compresslib.grading.record import record
from compresslib.prune import Mask, magnitude_mask, prune_remaining

ASSIGNMENT = "03_lottery_tickets"


@pytest.fixture(scope="module")
def tests():
    return load_fixture(ASSIGNMENT)["tests"]


def cases(tests, test):
    return tests[test]["cases"]


def as_bool(lists: dict) -> dict:
    return {name: torch.tensor(value) != 0 for name, value in lists.items()}


def test_fixture_has_provenance_and_matches_its_recorder(tests):
    stored = load_fixture(ASSIGNMENT)
    assert stored["provenance"]["command"] == f"python -m compresslib.grading.record {ASSIGNMENT}"
    assert tests == record(ASSIGNMENT)["tests"]


def test_expected_masks_agree_with_the_library_reference(tests):
    """Two implementations of the notebook's rule (the recorder's NumPy, compresslib.prune's torch) agree."""
    for case in cases(tests, "test_magnitude_mask"):
        weights = from_input(case["inputs"]["weights"])
        library = magnitude_mask(weights, case["inputs"]["sparsity"], scope="global")
        assert all(torch.equal(library[n], mask) for n, mask in as_bool(case["expected"]["mask"]).items())
    for case in cases(tests, "test_prune_remaining"):
        inputs = case["inputs"]
        previous = Mask({n: m != 0 for n, m in from_input(inputs["previous"]).items()})
        library = prune_remaining(from_input(inputs["weights"]), inputs["fraction"], previous, scope="global")
        assert all(torch.equal(library[n], mask) for n, mask in as_bool(case["expected"]["mask"]).items())
    for case in cases(tests, "test_imp_round"):
        inputs = case["inputs"]
        mask = Mask({n: m != 0 for n, m in from_input(inputs["mask"]).items()})
        trained = {n: t for n, t in from_input(inputs["trained"]).items() if n in mask}
        library = prune_remaining(trained, inputs["fraction"], mask, scope="global")
        assert all(torch.equal(library[n], m) for n, m in as_bool(case["expected"]["mask"]).items())


def torch_training(inputs: dict) -> dict:
    """The right answer run with torch itself, in float64: the closed-form gradients and optimizer
    updates of the recorder must land on the same weights."""
    model = probe_model(inputs).double()
    optimizer = make_optimizer(inputs["optimizer"], model)
    for state in optimizer.state.values():
        for key, value in state.items():
            if key != "step":
                state[key] = value.double()
    mask = {n: m.double() for n, m in from_input(inputs["mask"]).items()}
    params = dict(model.named_parameters())

    def apply():
        with torch.no_grad():
            for n, m in mask.items():
                params[n].mul_(m)

    apply()
    for batch in inputs["batches"]:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(from_input(batch["x"]).double()), from_input(batch["y"])).backward()
        optimizer.step()
        apply()
    return {n: p.detach().numpy() for n, p in model.state_dict().items()}


def test_training_in_closed_form_agrees_with_torch(tests):
    for case in cases(tests, "test_train_with_mask"):
        trained = torch_training(case["inputs"])
        for name, value in case["expected"]["state"].items():
            np.testing.assert_allclose(trained[name], np.asarray(value), rtol=1e-9, atol=1e-12, err_msg=name)


def test_the_cases_cover_what_the_hidden_tests_must_catch(tests):
    magnitude = [c["inputs"] for c in cases(tests, "test_magnitude_mask")]
    assert 0.0 in [c["sparsity"] for c in magnitude]
    assert any(len(c["weights"]["mapping"]) >= 3 for c in magnitude)  # several tensors of different shapes
    assert any(v["dtype"] == "float64" for c in magnitude for v in c["weights"]["mapping"].values())
    remaining = [c["inputs"] for c in cases(tests, "test_prune_remaining")]
    # pruned weights that are not zero: "previously pruned stay pruned" must not rely on zeros
    assert any(np.any((np.asarray(w["tensor"]) != 0) & (np.asarray(c["previous"]["mapping"][n]["tensor"]) == 0))
               for c in remaining for n, w in c["weights"]["mapping"].items())
    assert {0.0, 0.3} <= {c["fraction"] for c in remaining}
    optimizers = [c["inputs"]["optimizer"] for c in cases(tests, "test_train_with_mask")]
    assert {"AdamW", "SGD"} <= {o["name"] for o in optimizers} and any("state" in o for o in optimizers)
    assert all(len(c["inputs"]["batches"]) > 1 for c in cases(tests, "test_train_with_mask"))
    imp = [c["inputs"] for c in cases(tests, "test_imp_round")]
    assert any(np.mean([np.mean(m["tensor"]) for m in c["mask"]["mapping"].values()]) < 1 for c in imp)
    assert all(set(c["theta0"]["mapping"]) - set(c["mask"]["mapping"]) >= {"4.weight", "4.bias"} for c in imp)


def test_ties_straddle_the_cut_in_the_recorded_case(tests):
    """0.1 four times in the second case, k = round(0.25 * 8) = 2: exactly the two earliest are pruned."""
    case = cases(tests, "test_magnitude_mask")[1]
    assert case["expected"]["mask"]["w"] == [[1, 0, 0, 1], [1, 1, 1, 1]]
    assert case["wrong"]["threshold_prunes_all_ties"]["w"] == [[1, 0, 0, 1], [0, 1, 1, 0]]


def _flat(value):
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flat(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _flat(v)]
    return [float(value)]


def test_every_catalogued_mistake_is_distinguishable_from_the_right_answer(tests):
    """A case where a mistake gives the right output cannot catch it; each mistake needs one where it differs."""
    distinguished = {}
    for test, spec in tests.items():
        for case in spec["cases"]:
            for key, value in case["wrong"].items():
                part = next(iter(value)) if set(value) <= {"mask", "state"} else None
                wrong = value[part] if part else value
                right = case["expected"][part or ("mask" if "mask" in case["expected"] else "state")]
                differs = not np.allclose(_flat(wrong), _flat(right), rtol=1e-4, atol=1e-6)
                distinguished[(test, key)] = distinguished.get((test, key), False) or differs
    assert all(distinguished.values()), [k for k, v in distinguished.items() if not v]
