"""Grading fixtures for notebook 03 (finding a lottery ticket): ``python -m compresslib.runs tickets --fixtures-only``.

Recorded from a tiny deterministic setting on the CPU, in seconds: hand-written small tensors with ties
and negative values, and a two-layer MLP trained for a few full-batch AdamW steps. Every case holds its
inputs, the reference (``expected``) and the values of the catalogued wrong answers (``wrong``), each
with the message a grader can show. Tensors are nested lists (float32 values, masks as 0/1).

Cases:

- ``magnitude_mask``: prune ``sparsity`` of one tensor by ``|w|``, keep ``|w| > t`` (t = k-th smallest
  magnitude). Wrong: signed value instead of magnitude; ``>=`` instead of ``>`` (the ties at t survive).
- ``magnitude_ties``: ties that straddle the cut (four weights tied at t, two of them to prune): exactly
  ``k`` are pruned, the earliest positions first (a stable sort). Wrong: ``|w| > t`` prunes every tie;
  ``>=`` prunes none of them.
- ``global_magnitude_mask``: the same over two tensors ranked together.
- ``prune_remaining``: a second round, ``fraction`` of the *remaining* weights. Wrong: ``fraction`` of all
  weights (already-pruned zeros count, so the sparsity does not grow).
- ``train_with_mask``: AdamW with weight decay, the mask applied before training and after every step.
  Wrong: mask applied once before training (gradients and momentum regrow pruned weights); no mask.
- ``imp_round``: one IMP round from θ0: train (full mask), prune ``fraction`` of remaining by global
  magnitude, rewind survivors to θ0 (pruned weights stay 0; biases back to θ0). Then a second round
  (train under the mask, prune ``fraction`` of the remaining). Wrong: rewound weights without the mask
  (pruned weights reset to non-zero θ0 values), rewound to the final instead of the initial weights,
  signed pruning, and (round 2) ``fraction`` of all weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from compresslib.prune import Mask, MaskEnforcer, magnitude_mask, prune_remaining

FIXTURE_NAME = "03_lottery_tickets.json"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "grading" / "fixtures"
TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}


def _lists(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().tolist()
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    return x


def _threshold_mask(w: torch.Tensor, sparsity: float, *, signed=False, keep_ties=False) -> torch.Tensor:
    """The plain threshold recipe a student writes (and its two classic mistakes)."""
    score = w if signed else w.abs()
    k = int(round(sparsity * w.numel()))
    t = torch.sort(score.flatten()).values[k - 1]
    return ((score >= t) if keep_ties else (score > t)).float()


def magnitude_case() -> dict:
    w = torch.tensor([[0.5, -0.1, 0.2, -0.2], [0.3, -0.9, 0.1, 0.05], [-0.4, 0.2, 0.7, -0.3]])
    sparsity = 0.5
    expected = magnitude_mask({"w": w}, sparsity, scope="layer")["w"].float()
    assert torch.equal(expected, _threshold_mask(w, sparsity)), "library and threshold recipe disagree"
    signed = _threshold_mask(w, sparsity, signed=True)
    ties = _threshold_mask(w, sparsity, keep_ties=True)
    return {
        "description": "mask = 1 where |w| > t, t the k-th smallest |w|, k = round(sparsity * numel); 0.2 is tied three times at t",
        "inputs": {"weight": _lists(w), "sparsity": sparsity},
        "expected": {"mask": _lists(expected), "sparsity": float(1 - expected.mean())},
        "wrong": {
            "signed": {"mask": _lists(signed), "sparsity": float(1 - signed.mean()),
                       "message": "You pruned the most negative weights: rank by magnitude |w|, not by signed value."},
            "keep_ties_ge": {"mask": _lists(ties), "sparsity": float(1 - ties.mean()),
                             "message": "Weights equal to the threshold survived: keep |w| > t, not |w| >= t "
                                        f"(your sparsity is {float(1 - ties.mean()):.2f}, not {sparsity})."},
        },
    }


def ties_case() -> dict:
    w = torch.tensor([[0.3, -0.1, 0.1, 0.2], [-0.1, 0.4, 0.5, 0.1]])
    sparsity = 0.25
    expected = magnitude_mask({"w": w}, sparsity, scope="layer")["w"].float()
    all_ties = _threshold_mask(w, sparsity)
    no_ties = _threshold_mask(w, sparsity, keep_ties=True)
    return {
        "description": "exact sparsity with ties across the cut: k = round(0.25 * 8) = 2 but |w| = 0.1 four times; "
                       "prune exactly 2, the earliest positions (flat index order) first",
        "inputs": {"weight": _lists(w), "sparsity": sparsity},
        "expected": {"mask": _lists(expected), "sparsity": float(1 - expected.mean())},
        "wrong": {
            "prune_all_ties": {"mask": _lists(all_ties), "sparsity": float(1 - all_ties.mean()),
                               "message": "Every weight tied at the threshold was pruned, so the sparsity is "
                                          f"{float(1 - all_ties.mean()):.2f} instead of {sparsity}: prune exactly "
                                          "k = round(sparsity * n) weights, breaking ties by position (a stable sort)."},
            "keep_ties_ge": {"mask": _lists(no_ties), "sparsity": float(1 - no_ties.mean()),
                             "message": "Weights equal to the threshold survived: keep |w| > t, not |w| >= t "
                                        f"(your sparsity is {float(1 - no_ties.mean()):.2f}, not {sparsity})."},
        },
    }


def global_case() -> dict:
    a = torch.tensor([[0.05, -0.6], [0.03, -0.02]])
    b = torch.tensor([[0.4, -0.1, 0.01], [-0.8, 0.2, -0.07]])
    sparsity = 0.6
    expected = magnitude_mask({"a": a, "b": b}, sparsity, scope="global")
    per_layer = magnitude_mask({"a": a, "b": b}, sparsity, scope="layer")
    return {
        "description": "global magnitude pruning: one threshold over both tensors (k = round(0.6 * 10) = 6)",
        "inputs": {"weights": {"a": _lists(a), "b": _lists(b)}, "sparsity": sparsity},
        "expected": {"mask": {k: _lists(expected[k].float()) for k in expected},
                     "layer_sparsity": expected.layer_sparsity(), "sparsity": expected.sparsity},
        "wrong": {
            "per_layer": {"mask": {k: _lists(per_layer[k].float()) for k in per_layer},
                          "message": "Each tensor was pruned to the sparsity on its own: a global mask ranks all tensors together."},
        },
    }


def remaining_case() -> dict:
    previous = torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 1]])
    trained = torch.tensor([[0.35, 0, 0, 0], [-0.25, -0.45, 0, 0], [0.4, 0, 0.7, 0.15]])
    fraction = 0.5
    expected = prune_remaining({"w": trained}, fraction, Mask({"w": previous}), scope="layer")["w"].float()
    of_all = _threshold_mask(trained, fraction)
    return {
        "description": "second round: prune fraction of the weights the previous mask kept (6 kept -> prune 3 -> 9 of 12 pruned)",
        "inputs": {"weight": _lists(trained), "previous_mask": _lists(previous), "fraction": fraction},
        "expected": {"mask": _lists(expected), "sparsity": float(1 - expected.mean())},
        "wrong": {
            "fraction_of_all": {"mask": _lists(of_all), "sparsity": float(1 - of_all.mean()),
                                "message": "Your sparsity did not grow: prune the fraction of the *remaining* weights "
                                           "(the already-pruned zeros must not count)."},
        },
    }


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))


def tiny_data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


HYPER = {"optimizer": "AdamW", "lr": 0.05, "weight_decay": 0.1, "betas": [0.9, 0.999], "eps": 1e-8, "steps": 5,
         "loss": "cross_entropy(model(x), y), full batch", "prunable": ["0.weight", "2.weight"]}


def _train(model, x, y, *, mask=None, mode="kept"):
    """``mode``: 'kept' (applied before and after every step), 'once' (before training only), 'none'."""
    opt = torch.optim.AdamW(model.parameters(), lr=HYPER["lr"], weight_decay=HYPER["weight_decay"],
                            betas=tuple(HYPER["betas"]), eps=HYPER["eps"])
    enforcer = None
    if mask is not None and mode == "kept":
        enforcer = MaskEnforcer(model, mask)
    elif mask is not None and mode == "once":
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in mask:
                    p.mul_(mask[n].float())
    for _ in range(HYPER["steps"]):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if enforcer is not None:
            enforcer(model)
    if enforcer is not None:
        enforcer.remove()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _regrown(state, mask) -> int:
    return int(sum(((state[n] != 0) & ~mask[n]).sum() for n in mask))


def train_case() -> dict:
    x, y = tiny_data()
    model = tiny_model()
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    mask = magnitude_mask({n: theta0[n] for n in HYPER["prunable"]}, 0.5, scope="layer")
    kept = _train(model, x, y, mask=mask, mode="kept")
    model.load_state_dict(theta0)
    once = _train(model, x, y, mask=mask, mode="once")
    model.load_state_dict(theta0)
    none = _train(model, x, y, mask=None, mode="none")
    assert _regrown(kept, mask) == 0
    return {
        "description": "train the tiny MLP under a 50% per-layer magnitude mask of its initial weights; pruned weights must end exactly 0",
        "inputs": {"theta0": _lists(theta0), "mask": {n: _lists(mask[n].float()) for n in mask}, "x": _lists(x),
                   "y": _lists(y), "hyper": HYPER},
        "expected": {"state": _lists(kept), "regrown": 0},
        "wrong": {
            "mask_applied_once": {"state": _lists(once), "regrown": _regrown(once, mask),
                                  "message": "Pruned weights became non-zero during training: the mask was applied once "
                                             "before training, so gradients/momentum and the optimizer regrew them. "
                                             "Re-apply it after every optimizer step."},
            "no_mask": {"state": _lists(none), "regrown": _regrown(none, mask),
                        "message": "The mask was not applied at all."},
        },
    }


def imp_case() -> dict:
    x, y = tiny_data()
    fraction = 0.5
    names = HYPER["prunable"]
    model = tiny_model()
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    full = Mask.ones_like(model, names)
    trained0 = _train(model, x, y, mask=full, mode="kept")
    m1 = prune_remaining({n: trained0[n] for n in names}, fraction, full, scope="global")
    rewound = {k: (v * m1[k].float() if k in m1 else v.clone()) for k, v in theta0.items()}
    # the catalogued mistakes at round 1
    to_final = {k: (v * m1[k].float() if k in m1 else v.clone()) for k, v in trained0.items()}
    flat = torch.cat([trained0[n].flatten() for n in names])
    k = int(round(fraction * flat.numel()))
    t_signed = torch.sort(flat).values[k - 1]
    signed = {n: (trained0[n] > t_signed).float() for n in names}
    # round 2: train from the rewound ticket under m1, prune fraction of the remaining
    model.load_state_dict(rewound)
    trained1 = _train(model, x, y, mask=m1, mode="kept")
    m2 = prune_remaining({n: trained1[n] for n in names}, fraction, m1, scope="global")
    m2.check_shrinks(m1)
    t_all = torch.sort(torch.cat([trained1[n].abs().flatten() for n in names])).values[k - 1]
    of_all = {n: (trained1[n].abs() > t_all).float() for n in names}
    of_all_sparsity = 1 - float(sum(v.sum() for v in of_all.values())) / flat.numel()
    return {
        "description": "one IMP round with rewinding to θ0 on the tiny MLP: train (HYPER), prune fraction of the remaining "
                       "prunable weights by global magnitude, reset the survivors to θ0 with pruned weights 0; then round 2",
        "inputs": {"theta0": _lists(theta0), "x": _lists(x), "y": _lists(y), "hyper": HYPER, "fraction": fraction,
                   "scope": "global"},
        "expected": {
            "trained_round0": _lists(trained0),
            "mask_round1": {n: _lists(m1[n].float()) for n in m1}, "sparsity_round1": m1.sparsity,
            "rewound_round1": _lists(rewound),
            "trained_round1": _lists(trained1),
            "mask_round2": {n: _lists(m2[n].float()) for n in m2}, "sparsity_round2": m2.sparsity,
        },
        "wrong": {
            "rewind_drops_mask": {"rewound_round1": _lists(theta0),
                                  "message": "After rewinding the pruned weights are non-zero again (θ0 everywhere): "
                                             "rewinding resets only the survivors; multiply θ0 by the mask."},
            "rewind_to_final": {"rewound_round1": _lists(to_final),
                                "message": "You kept the trained weights (θ_T): rewinding resets the survivors to the initial θ0."},
            "signed": {"mask_round1": {n: _lists(v) for n, v in signed.items()},
                       "message": "You pruned the most negative weights: rank by |w|."},
            "fraction_of_all": {"mask_round2": {n: _lists(v) for n, v in of_all.items()}, "sparsity_round2": of_all_sparsity,
                                "message": "Round 2 did not increase the sparsity: prune the fraction of the remaining weights, not of all."},
        },
    }


def build_fixtures() -> dict:
    import compresslib

    torch.use_deterministic_algorithms(True)
    try:
        cases = {
            "magnitude_mask": magnitude_case(),
            "magnitude_ties": ties_case(),
            "global_magnitude_mask": global_case(),
            "prune_remaining": remaining_case(),
            "train_with_mask": train_case(),
            "imp_round": imp_case(),
        }
    finally:
        torch.use_deterministic_algorithms(False)
    return {
        "notebook": "03_lottery_tickets",
        "tolerance": TOLERANCE,
        "provenance": {
            "command": "python -m compresslib.runs tickets --fixtures-only",
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "compresslib": compresslib.__version__},
            "device": "cpu",
        },
        "cases": cases,
    }


def write_fixtures(directory=None) -> Path:
    from compresslib.runs.common import write_json

    path = Path(directory or DEFAULT_DIR) / FIXTURE_NAME
    write_json(path, build_fixtures())
    return path
