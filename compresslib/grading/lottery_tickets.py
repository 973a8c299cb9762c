r"""Graded checks of notebook 03 (finding a lottery ticket).

Each ``check_*`` runs the student's function on the recorded cases of ``fixtures/03_lottery_tickets.json``
(written by ``python -m compresslib.runs tickets --fixtures-only``) and raises
:class:`~compresslib.grading.core.GradingError` naming the likely mistake when the result does not match.
The checks never call compresslib's implementation of the function they grade: they compare with the
stored values. Earlier functions that the graded one calls by name (``magnitude_mask`` inside
``prune_remaining``, ``prune_remaining`` and ``apply_mask`` inside ``imp_round``) are replaced by
reference versions while it runs (:func:`~compresslib.grading.core.graded_alone`), so one
mistake costs points once.

The notebook's conventions: weights and masks are ``{name: tensor}`` dicts, a mask holds 1 (kept) and
0 (pruned); ``magnitude_mask(weights, sparsity)`` and ``prune_remaining(weights, fraction, previous)``
rank all tensors together (global pruning) and prune an exact number of weights, ties broken by
position (a stable sort); ``apply_mask(model, mask)`` zeroes pruned weights in place;
``train_with_mask(model, mask, optimizer, batches)`` trains with cross-entropy, one step per
``(x, y)`` batch, keeping the mask applied; ``imp_round(model, theta0, mask, fraction, train)`` trains,
prunes ``fraction`` of the remaining weights and rewinds the survivors to :math:`\theta_0`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from compresslib.grading.core import GradingError, call_student, graded_alone, load_fixture

ASSIGNMENT = "03_lottery_tickets"


def _cases() -> dict:
    return load_fixture(ASSIGNMENT)["cases"]


def _tolerance() -> dict:
    return load_fixture(ASSIGNMENT)["tolerance"]


def _tensors(lists: Mapping) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value, dtype=torch.float32) for name, value in lists.items()}


# --- reference versions of the earlier functions (for graded_alone) ---------------------------------


def _to_library(mask: Mapping):
    """A notebook mask ``{name: 0/1 tensor}`` as compresslib's :class:`~compresslib.prune.Mask`."""
    from compresslib.prune import Mask

    return Mask({n: torch.as_tensor(m).detach().cpu() != 0 for n, m in mask.items()})


def _to_notebook(mask) -> dict[str, torch.Tensor]:
    """compresslib's Mask as the notebook's ``{name: float 0/1 tensor}``."""
    return {n: mask[n].float() for n in mask}


def _ref_magnitude_mask(weights, sparsity):
    from compresslib.prune import magnitude_mask

    return _to_notebook(magnitude_mask({n: w.detach() for n, w in weights.items()}, sparsity, scope="global"))


def _ref_prune_remaining(weights, fraction, previous):
    from compresslib.prune import prune_remaining

    return _to_notebook(prune_remaining({n: w.detach() for n, w in weights.items()}, fraction, _to_library(previous),
                                        scope="global"))


def _ref_apply_mask(model, mask):
    from compresslib.prune import apply_mask

    apply_mask(model, _to_library(mask))
    return model


REFERENCES = {
    "magnitude_mask": _ref_magnitude_mask,
    "prune_remaining": _ref_prune_remaining,
    "apply_mask": _ref_apply_mask,
}


def _references(*names: str) -> dict:
    return {name: REFERENCES[name] for name in names}


# --- comparing masks --------------------------------------------------------------------------------


def _as_mask(out, names, what: str) -> dict[str, torch.Tensor]:
    """The student's mask as ``{name: float 0/1 tensor}``, or a GradingError saying what came back."""
    if isinstance(out, torch.Tensor):
        raise GradingError(f"{what} should return a dict {{name: mask tensor}} (one entry per weight), got a single tensor")
    if not isinstance(out, Mapping):
        raise GradingError(f"{what} should return a dict {{name: mask tensor}}, got {type(out).__name__}")
    missing = [n for n in names if n not in out]
    if missing:
        raise GradingError(f"{what} returned a mask without entries for {missing}: give one mask per weight tensor")
    mask = {}
    for name in names:
        value = out[name]
        if not isinstance(value, torch.Tensor):
            raise GradingError(f"{what}: mask[{name!r}] should be a tensor, got {type(value).__name__}")
        value = value.detach().cpu()
        if value.dtype != torch.bool and not bool(((value == 0) | (value == 1)).all()):
            raise GradingError(f"{what}: mask[{name!r}] must hold only 0 (pruned) and 1 (kept)")
        mask[name] = value.float()
    return mask


def _flat(mask_or_state: Mapping, names) -> torch.Tensor:
    return torch.cat([torch.as_tensor(mask_or_state[n], dtype=torch.float64).flatten() for n in names])


def _same(a: torch.Tensor, b: torch.Tensor, *, exact: bool = False) -> bool:
    if a.shape != b.shape:
        return False
    if exact:
        return bool(torch.equal(a, b))
    tol = _tolerance()
    return bool(torch.allclose(a, b, atol=tol["atol"], rtol=tol["rtol"]))


def _match_wrong(actual: torch.Tensor, wrong: Mapping, key: str, names, *, exact: bool) -> str | None:
    """The message of the catalogued wrong answer whose recorded ``key`` equals ``actual``, if any."""
    for entry in wrong.values():
        if key in entry and _same(actual, _flat(entry[key], names) if isinstance(entry[key], Mapping)
                                  else torch.tensor(entry[key], dtype=torch.float64).flatten(), exact=exact):
            return entry["message"]
    return None


def _mask_sparsity(mask: Mapping, names) -> float:
    flat = _flat(mask, names)
    return 1.0 - float(flat.mean())


def _compare_mask(mask: dict, expected: Mapping, wrong: Mapping, names, what: str) -> None:
    actual = _flat(mask, names)
    target = _flat(expected, names)
    if actual.shape != target.shape:
        shapes = {n: tuple(mask[n].shape) for n in names}
        raise GradingError(f"{what}: the mask must have the weights' shapes, got {shapes}")
    if torch.equal(actual, target):
        return
    message = _match_wrong(actual, wrong, "mask", names, exact=True)
    if message:
        raise GradingError(f"{what}: {message}")
    got, want = _mask_sparsity(mask, names), _mask_sparsity(expected, names)
    if abs(got - want) > 1e-9:
        raise GradingError(
            f"{what}: the mask's sparsity is {got:.4f}, expected exactly {want:.4f}: prune k = round(sparsity * n) "
            "weights, no more, no fewer"
        )
    raise GradingError(
        f"{what}: the sparsity is right ({got:.4f}) but the wrong weights were pruned: prune the smallest |w|, "
        "ranked over all tensors together, ties broken by position (earliest first)"
    )


# --- the checks ---------------------------------------------------------------------------------------


def check_magnitude_mask(fn) -> None:
    """The student's ``magnitude_mask(weights, sparsity)``: exact global sparsity, |w| ranking, stable ties."""
    cases = _cases()
    single = [("magnitude_mask", cases["magnitude_mask"]), ("magnitude_ties", cases["magnitude_ties"])]
    for label, case in single[:1] + [("global_magnitude_mask", cases["global_magnitude_mask"])] + single[1:]:
        inputs = case["inputs"]
        if label == "global_magnitude_mask":
            weights = _tensors(inputs["weights"])
        else:
            weights = {"w": torch.tensor(inputs["weight"], dtype=torch.float32)}
        names = list(weights)
        expected = case["expected"]["mask"]
        expected = expected if isinstance(expected, Mapping) else {"w": expected}
        wrong = {k: ({**v, "mask": v["mask"] if isinstance(v["mask"], Mapping) else {"w": v["mask"]}})
                 for k, v in case["wrong"].items()}
        shapes = " and ".join(f"{tuple(w.shape)}" for w in weights.values())
        what = f"magnitude_mask(weights of shapes {shapes}, sparsity={inputs['sparsity']})"
        before = {n: w.clone() for n, w in weights.items()}
        out = call_student(fn, what, weights, inputs["sparsity"])
        if any(not torch.equal(before[n], weights[n]) for n in names):
            raise GradingError(f"{what} changed the weights it was given: compute a mask, leave the weights alone")
        _compare_mask(_as_mask(out, names, what), expected, wrong, names, what)


def check_prune_remaining(fn) -> None:
    """The student's ``prune_remaining(weights, fraction, previous)``: ``fraction`` of the remaining weights."""
    case = _cases()["prune_remaining"]
    inputs = case["inputs"]
    weights = {"w": torch.tensor(inputs["weight"], dtype=torch.float32)}
    previous = {"w": torch.tensor(inputs["previous_mask"], dtype=torch.float32)}
    previous_copy = {n: m.clone() for n, m in previous.items()}
    what = f"prune_remaining(weights, fraction={inputs['fraction']}, previous) with {int(previous['w'].sum())} of 12 weights remaining"
    with graded_alone(fn, **_references("magnitude_mask")):
        out = call_student(fn, what, weights, inputs["fraction"], previous)
    if not torch.equal(previous["w"], previous_copy["w"]):
        raise GradingError(f"{what} modified the previous mask in place: return a new mask")
    mask = _as_mask(out, ["w"], what)
    if bool(((mask["w"] == 1) & (previous["w"] == 0)).any()):
        raise GradingError(f"{what}: a weight pruned by the previous mask is kept again: masks only shrink, "
                           "so a pruned weight stays pruned")
    wrong = {k: {**v, "mask": {"w": v["mask"]}} for k, v in case["wrong"].items()}
    _compare_mask(mask, {"w": case["expected"]["mask"]}, wrong, ["w"], what)
    # a second, global case: two tensors and a previous mask, checked against the rule itself
    _check_prune_remaining_global(fn)


def _check_prune_remaining_global(fn) -> None:
    case = _cases()["global_magnitude_mask"]
    weights = _tensors(case["inputs"]["weights"])
    names = list(weights)
    first = {n: torch.tensor(m) for n, m in case["expected"]["mask"].items()}  # 6 of 10 pruned
    trained = {n: weights[n] * first[n] for n in names}
    what = "prune_remaining(two weight tensors, fraction=0.5, previous) with 4 of 10 weights remaining"
    with graded_alone(fn, **_references("magnitude_mask")):
        out = call_student(fn, what, trained, 0.5, {n: m.clone() for n, m in first.items()})
    mask = _as_mask(out, names, what)
    kept = int(_flat(mask, names).sum())
    if kept == 4:
        raise GradingError(f"{what}: the sparsity did not grow (still 4 kept): prune the fraction of the *remaining* "
                           "weights (the already-pruned zeros must not count)")
    if kept != 2:
        raise GradingError(f"{what}: kept {kept} weights, expected 2 (4 remaining, prune round(0.5 * 4) = 2 of them, "
                           "ranked over both tensors together)")
    survivors = sorted(((float(trained[n].abs().flatten()[i]), n, i) for n in names
                        for i in range(trained[n].numel()) if first[n].flatten()[i] == 1), reverse=True)[:2]
    for _, n, i in survivors:
        if mask[n].flatten()[i] != 1:
            raise GradingError(f"{what}: kept the wrong weights: of the remaining ones keep the largest |w| "
                               "over both tensors together")


def _grader_train(hyper: Mapping, x: torch.Tensor, y: torch.Tensor, calls: list):
    """The ``train(model, mask)`` the grader hands to ``imp_round``: full-batch AdamW for ``hyper['steps']``
    steps, the mask applied before training and after every step (the fixture's recipe)."""

    def train(model, mask):
        calls.append({n: torch.as_tensor(m).detach().clone().float() for n, m in mask.items()})
        params = dict(model.named_parameters())
        masks = {n: torch.as_tensor(m).detach().float() for n, m in mask.items()}
        with torch.no_grad():
            for n, m in masks.items():
                params[n].mul_(m)
        opt = torch.optim.AdamW(model.parameters(), lr=hyper["lr"], weight_decay=hyper["weight_decay"],
                                betas=tuple(hyper["betas"]), eps=hyper["eps"])
        for _ in range(hyper["steps"]):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            with torch.no_grad():
                for n, m in masks.items():
                    params[n].mul_(m)
        return model

    return train


def _tiny_model(state_lists: Mapping) -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    model.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state_lists.items()})
    return model


def check_train_with_mask(fn) -> None:
    """The student's ``train_with_mask(model, mask, optimizer, batches)``: five full-batch AdamW steps under
    a 50% mask must land on the recorded weights, with every pruned weight exactly zero."""
    case = _cases()["train_with_mask"]
    inputs = case["inputs"]
    hyper = inputs["hyper"]
    model = _tiny_model(inputs["theta0"])
    mask = _tensors(inputs["mask"])
    names = list(mask)
    x, y = torch.tensor(inputs["x"]), torch.tensor(inputs["y"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=hyper["lr"], weight_decay=hyper["weight_decay"],
                                  betas=tuple(hyper["betas"]), eps=hyper["eps"])
    what = f"train_with_mask (AdamW, weight decay {hyper['weight_decay']}, {hyper['steps']} steps, 50% mask)"
    call_student(fn, what, model, {n: m.clone() for n, m in mask.items()}, optimizer, [(x, y)] * hyper["steps"])

    state = {k: v.detach() for k, v in model.state_dict().items()}
    keys = list(state)
    actual = _flat(state, keys)
    if _same(actual, _flat(case["expected"]["state"], keys)):
        return
    regrown = int(sum(((state[n] != 0) & (mask[n] == 0)).sum() for n in names))
    if _same(actual, _flat(inputs["theta0"], keys)):
        raise GradingError(f"{what}: the weights did not change: take an optimizer step for every batch")
    for entry in case["wrong"].values():
        if _same(actual, _flat(entry["state"], keys)):
            raise GradingError(f"{what}: {entry['message']} ({entry['regrown']} pruned weights ended non-zero)")
    if regrown:
        raise GradingError(
            f"{what}: {regrown} pruned weights ended non-zero: gradients, momentum and weight decay move pruned "
            "weights off zero, so re-apply the mask after every optimizer step"
        )
    raise GradingError(
        f"{what}: the pruned weights stay zero but the trained weights differ from the expected ones: apply the "
        "mask before the first step too, and take exactly one step per batch of cross_entropy(model(x), y) "
        "(optimizer.zero_grad(), loss.backward(), optimizer.step())"
    )


def check_imp_round(fn) -> None:
    """The student's ``imp_round(model, theta0, mask, fraction, train)`` for two rounds on the tiny MLP:
    the mask after each round, and the rewound weights m ⊙ θ0 (biases back to θ0 too)."""
    case = _cases()["imp_round"]
    inputs, expected, wrong = case["inputs"], case["expected"], case["wrong"]
    hyper, fraction = inputs["hyper"], inputs["fraction"]
    names = list(hyper["prunable"])
    x, y = torch.tensor(inputs["x"]), torch.tensor(inputs["y"])
    theta0 = _tensors(inputs["theta0"])
    keys = list(theta0)
    references = _references("magnitude_mask", "prune_remaining", "apply_mask")

    rounds = [
        (1, inputs["theta0"], {n: torch.ones_like(theta0[n]) for n in names}, "mask_round1", "rewound_round1"),
        (2, expected["rewound_round1"], _tensors(expected["mask_round1"]), "mask_round2", None),
    ]
    for r, start, mask_in, mask_key, rewound_key in rounds:
        model = _tiny_model(start)
        calls: list = []
        train = _grader_train(hyper, x, y, calls)
        what = f"imp_round (round {r}: fraction={fraction} of the remaining weights, from sparsity " \
               f"{_mask_sparsity(mask_in, names):.2f})"
        given_theta0 = {k: v.clone() for k, v in theta0.items()}
        with graded_alone(fn, **references):
            out = call_student(fn, what, model, given_theta0, {n: m.clone() for n, m in mask_in.items()}, fraction, train)
        if not calls:
            raise GradingError(f"{what} never called train(model, mask): train first, then prune the trained weights")
        if any(not torch.equal(given_theta0[k], theta0[k]) for k in keys):
            raise GradingError(f"{what} changed theta0 in place: θ0 is the rewind point and must stay as it was "
                               "(load it into the model, e.g. model.load_state_dict(theta0))")
        mask = _as_mask(out, names, what)
        round_wrong = {k: v for k, v in wrong.items() if mask_key in v}
        actual = _flat(mask, names)
        if not torch.equal(actual, _flat(expected[mask_key], names)):
            message = _match_wrong(actual, round_wrong, mask_key, names, exact=True)
            if message:
                raise GradingError(f"{what}: {message}")
            if torch.equal(actual, _flat(mask_in, names)):
                raise GradingError(f"{what}: the returned mask is the one it was given: prune `fraction` of the "
                                   "remaining weights of the trained model and return the new mask")
            raise GradingError(
                f"{what}: the new mask (sparsity {_mask_sparsity(mask, names):.4f}) differs from the expected one "
                f"(sparsity {expected['sparsity_round' + str(r)]:.4f}): prune the smallest |w| of the *trained* "
                "weights (after train), globally over the prunable weights"
            )
        state = {k: v.detach() for k, v in model.state_dict().items()}
        expected_state = ({k: torch.tensor(v) for k, v in expected[rewound_key].items()} if rewound_key else
                          {k: theta0[k] * mask[k] if k in mask else theta0[k] for k in keys})
        if _same(_flat(state, keys), _flat(expected_state, keys)):
            continue
        for entry in wrong.values():
            if "rewound_round1" in entry and _same(_flat(state, keys), _flat(entry["rewound_round1"], keys)):
                raise GradingError(f"{what}: {entry['message']}")
        nonzero = int(sum(((state[n] != 0) & (mask[n] == 0)).sum() for n in names))
        if nonzero:
            raise GradingError(f"{what}: after rewinding, {nonzero} pruned weights are non-zero: rewinding resets "
                               "only the survivors, m ⊙ θ0 — apply the new mask after loading θ0")
        if _same(_flat(state, names), _flat(expected_state, names)):
            raise GradingError(f"{what}: the prunable weights are rewound but the other parameters (the biases) are "
                               "not back at θ0: rewind the whole model to θ0, then apply the mask")
        raise GradingError(f"{what}: the model's weights after the round are not m ⊙ θ0: reset the survivors "
                           "to the initial weights θ0 (not the trained ones) and keep pruned weights at 0")
