"""Record the fixture of notebook 03 (finding a lottery ticket): hidden inputs, expected outputs,
catalogued wrong outputs.

Expected values follow the notebook's rules, written here in NumPy float64 and independent of
``compresslib.prune`` (whose tests check it against the same rules):

* a magnitude mask prunes exactly ``k = round(sparsity * n)`` weights, the smallest ``|w|`` over all
  tensors together, ties broken by position (dict order, then flat index): a stable argsort;
* ``prune_remaining`` keeps every pruned weight pruned and prunes ``round(fraction * n_remaining)``
  more, the smallest ``|w|`` among the remaining ones, by the same rule;
* ``train_with_mask``: one optimizer step per batch on the mean cross-entropy, the mask applied
  before training and after every step; the MLP's gradients in closed form (``dL/dz = (softmax(z) -
  onehot(y)) / N``, back through the ReLUs) and torch's AdamW and SGD updates, written out;
* ``imp_round``: the new mask from the *trained* weights, the model left at ``m * theta0`` (every
  parameter outside the mask at ``theta0``).

Inputs are float32 values (random draws rounded to float32, hand-written small tensors with ties);
masks are float32 0/1 tensors. Each catalogued wrong answer's output is computed by the same rules
with that one mistake.
"""

from __future__ import annotations

import numpy as np

from compresslib.grading.closed_forms import softmax

ASSIGNMENT = "03_lottery_tickets"
NOTE = ("NumPy float64 versions of the notebook's rules (stable argsort over |w|, ties by position; "
        "closed-form MLP gradients with torch's AdamW/SGD updates written out)")

MAGNITUDE_SIGNATURE = ["weights", "sparsity"]
PRUNE_SIGNATURE = ["weights", "fraction", "previous"]
APPLY_SIGNATURE = ["model", "mask"]
# The earlier functions a dependent test's stand-ins may ask the grader's oracle for (its scope).
PRUNE_STAND_INS = {"magnitude_mask": {"signature": MAGNITUDE_SIGNATURE}}
APPLY_STAND_IN = {"apply_mask": {"signature": APPLY_SIGNATURE}}
IMP_STAND_INS = {**PRUNE_STAND_INS, "prune_remaining": {"signature": PRUNE_SIGNATURE}, **APPLY_STAND_IN}


# --- wire formats -----------------------------------------------------------------------------------


def f32(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)


def tensor(array, dtype: str = "float32") -> dict:
    return {"tensor": np.asarray(array).astype(dtype).tolist(), "dtype": dtype}


def mapping(arrays: dict, dtype: str = "float32") -> dict:
    return {"mapping": {name: tensor(a, dtype) for name, a in arrays.items()}}


def lists(arrays: dict) -> dict:
    return {name: np.asarray(a, dtype=np.float64).tolist() for name, a in arrays.items()}


# --- the notebook's rules ---------------------------------------------------------------------------


def count(amount: float, n: int) -> int:
    """How many of ``n`` weights ``amount`` asks for: ``round(amount * n)`` (Python's round, as the notebook)."""
    return int(round(amount * n))


def cat(arrays: dict) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays.values()])


def split(flat: np.ndarray, like: dict) -> dict:
    out, offset = {}, 0
    for name, a in like.items():
        size = np.asarray(a).size
        out[name] = flat[offset:offset + size].reshape(np.asarray(a).shape)
        offset += size
    return out


def prune_lowest(scores: np.ndarray, k: int) -> np.ndarray:
    """A 0/1 keep-vector pruning the ``k`` lowest ``scores``, ties broken by position (stable sort)."""
    keep = np.ones(scores.size)
    keep[np.argsort(scores, kind="stable")[:k]] = 0.0
    return keep


def magnitude_mask(weights: dict, sparsity: float) -> dict:
    scores = np.abs(cat(weights))
    return split(prune_lowest(scores, count(sparsity, scores.size)), weights)


def prune_remaining(weights: dict, fraction: float, previous: dict) -> dict:
    scores, alive = np.abs(cat(weights)), cat(previous) == 1
    remaining = np.flatnonzero(alive)
    keep = alive.astype(np.float64)
    keep[remaining[np.argsort(scores[remaining], kind="stable")[:count(fraction, remaining.size)]]] = 0.0
    return split(keep, weights)


def masked(weights: dict, mask: dict) -> dict:
    return {name: np.asarray(w, dtype=np.float64) * mask[name] for name, w in weights.items()}


def threshold_mask(weights: dict, sparsity: float, *, keep_ties: bool) -> dict:
    """The threshold recipe: t = the k-th smallest |w| (index k - 1 of the sorted magnitudes)."""
    scores = np.abs(cat(weights))
    t = np.sort(scores)[count(sparsity, scores.size) - 1]
    return split(((scores >= t) if keep_ties else (scores > t)).astype(np.float64), weights)


# --- magnitude_mask -----------------------------------------------------------------------------------


def _magnitude_case(weights: dict, sparsity: float, dtype: str = "float32") -> dict:
    scores = np.abs(cat(weights))
    n, k = scores.size, count(sparsity, scores.size)
    expected = magnitude_mask(weights, sparsity)
    latest = np.ones(n)
    latest[np.argsort(-scores, kind="stable")[n - k:]] = 0.0
    wrong = {
        "signed_pruning": split(prune_lowest(cat(weights), k), weights),
        "threshold_keeps_ties": threshold_mask(weights, sparsity, keep_ties=True),
        "threshold_prunes_all_ties": threshold_mask(weights, sparsity, keep_ties=False),
        "per_layer_ranking": {name: magnitude_mask({name: w}, sparsity)[name] for name, w in weights.items()},
        "mask_inverted": {name: 1.0 - m for name, m in expected.items()},
        "ties_latest_first": split(latest, weights),
    }
    return {"inputs": {"weights": mapping(weights, dtype), "sparsity": sparsity},
            "expected": {"mask": lists(expected)}, "wrong": {key: lists(m) for key, m in wrong.items()}}


def _magnitude_cases(rng) -> list[dict]:
    one = {"w": f32([[0.5, -0.1, 0.2, -0.2], [0.3, -0.9, 0.1, 0.05], [-0.4, 0.2, 0.7, -0.3]])}
    straddling = {"w": f32([[0.3, -0.1, 0.1, 0.2], [-0.1, 0.4, 0.5, 0.1]])}  # 0.1 four times, k = 2
    two = {"a": f32([[0.05, -0.6], [0.03, -0.02]]), "b": f32([[0.4, -0.1, 0.01], [-0.8, 0.2, -0.07]])}
    # three shapes, not in alphabetical order, 0.25 tied across all three at the cut; 0.37 * 29 = 10.73
    three = {"query": f32([[[0.25, -0.6, 0.1], [0.9, -0.25, 0.3]], [[0.05, 0.7, -0.25], [0.4, 0.2, -0.8]]]),
             "key": f32([[0.25, 0.5, -0.15], [0.6, -0.25, 0.35], [-0.02, 0.45, 0.25], [0.75, -0.3, 0.65]]),
             "bias": f32([0.25, -0.05, 0.55, -0.25, 0.85])}
    zero = {"a": f32(rng.normal(size=(3, 3))), "b": f32(rng.normal(size=(4,)))}
    wide = {"x": np.round(rng.normal(size=(2, 2)), 1), "y": np.round(rng.normal(size=(3, 2)), 1)}  # float64; 0.33 * 10 = 3.3
    large = {"layer.0": f32(rng.normal(size=(16, 16))), "layer.1": f32(rng.normal(size=(32,)) * 0.1)}
    return [
        _magnitude_case(one, 0.5),
        _magnitude_case(straddling, 0.25),
        _magnitude_case(two, 0.6),
        _magnitude_case(three, 0.37),
        _magnitude_case(zero, 0.0),
        _magnitude_case(wide, 0.33, "float64"),
        _magnitude_case(large, 0.8),
    ]


# --- prune_remaining ----------------------------------------------------------------------------------


def _prune_case(weights: dict, fraction: float, previous: dict) -> dict:
    n = cat(weights).size
    alive = cat(previous) == 1
    assert (cat(weights)[alive] != 0).all(), "a remaining weight at exactly 0 would tie with the pruned ones"
    n_pruned, n_remaining = int((~alive).sum()), int(alive.sum())
    zeroed = masked(weights, previous)
    k = n_pruned + count(fraction, n_remaining)
    expected = prune_remaining(weights, fraction, previous)

    def by_magnitude_of_zeroed(total: int) -> dict:
        return split(prune_lowest(np.abs(cat(zeroed)), min(total, n)), weights)

    wrong = {
        "fraction_of_all_weights": magnitude_mask(weights, fraction),
        "fraction_of_total_added": by_magnitude_of_zeroed(n_pruned + count(fraction, n)),
        "ignores_previous": magnitude_mask(weights, k / n),
        "counts_only_new": by_magnitude_of_zeroed(count(fraction, n_remaining)),
        "per_layer_remaining": {name: prune_remaining({name: w}, fraction, {name: previous[name]})[name]
                                for name, w in weights.items()},
    }
    return {"inputs": {"weights": mapping(weights), "fraction": fraction, "previous": mapping(previous),
                       "stand_ins": PRUNE_STAND_INS},
            "expected": {"mask": lists(expected)}, "wrong": {key: lists(m) for key, m in wrong.items()}}


def _prune_cases(rng) -> list[dict]:
    # a second round after training: the pruned weights are 0, 6 of 12 remain, prune 3 more
    one_previous = {"w": f32([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 1]])}
    one = {"w": f32([[0.35, 0, 0, 0], [-0.25, -0.45, 0, 0], [0.4, 0, 0.7, 0.15]])}
    # weights that were never zeroed (the pruned ones are large, not 0), two tensors pruned unevenly
    two_previous = {"a": f32([[0, 1, 0], [0, 1, 1]]), "b": f32([[1, 1, 0, 1], [1, 1, 1, 0]])}
    two = {"a": f32([[0.7, 0.9, -0.5], [0.45, -0.6, 0.5]]), "b": f32([[0.2, -0.15, 0.9, 0.3], [-0.1, 0.8, 0.05, -0.35]])}
    # ties among the remaining ones straddle the cut: 9 remain, round(0.3 * 9) = 3 more, 0.2 five times
    tied_previous = {"u": f32([[1, 1, 0, 1], [1, 0, 1, 1]]), "v": f32([1, 1, 0, 1, 0])}
    tied = {"u": f32([[0.2, -0.7, 0.0, 0.2], [0.1, 0.0, -0.2, 0.5]]), "v": f32([0.2, 0.9, 0.0, -0.2, 0.0])}
    # nothing more to prune
    still_previous = {"w": f32([[1, 0, 1], [1, 1, 0]])}
    still = {"w": f32([[0.3, 0.0, -0.2], [0.5, 0.1, 0.0]])}
    # the first round: nothing pruned yet, three tensors
    first_previous = {"p": np.ones((2, 3), np.float32), "q": np.ones((4,), np.float32), "r": np.ones((2, 2), np.float32)}
    first = {"p": f32(rng.normal(size=(2, 3))), "q": f32(rng.normal(size=(4,))), "r": f32(rng.normal(size=(2, 2)))}
    # a larger second round after masked training (pruned weights 0), 40% pruned before
    large_previous = {"l1": f32(rng.random(size=(8, 8)) > 0.4), "l2": f32(rng.random(size=(24,)) > 0.4)}
    large = {n: f32(rng.normal(size=m.shape)) * m for n, m in large_previous.items()}
    return [
        _prune_case(one, 0.5, one_previous),
        _prune_case(two, 0.5, two_previous),
        _prune_case(tied, 0.3, tied_previous),
        _prune_case(still, 0.0, still_previous),
        _prune_case(first, 0.4, first_previous),
        _prune_case(large, 0.2, large_previous),
    ]


# --- apply_mask, train_with_mask ----------------------------------------------------------------------


def linear_names(sizes: list[int]) -> list[str]:
    return [f"{2 * i}" for i in range(len(sizes) - 1)]


def init_state(rng, sizes: list[int]) -> dict:
    """nn.Linear's default initialisation ranges, drawn with NumPy and rounded to float32."""
    state = {}
    for layer, (n_in, n_out) in zip(linear_names(sizes), zip(sizes, sizes[1:])):
        bound = 1 / np.sqrt(n_in)
        state[f"{layer}.weight"] = f32(rng.uniform(-bound, bound, size=(n_out, n_in)))
        state[f"{layer}.bias"] = f32(rng.uniform(-bound, bound, size=(n_out,)))
    return state


def mlp_gradients(params: dict, sizes: list[int], x: np.ndarray, y: np.ndarray) -> dict:
    """Gradients of the mean cross-entropy of the ReLU MLP ``Linear -> ReLU -> ... -> Linear``:
    ``dL/dz = (softmax(z) - onehot(y)) / N`` at the logits, ``dL/dW = G^T h``, ``dL/db = sum_n G_n``,
    ``G <- (G W) * [z > 0]`` back through each ReLU."""
    layers = linear_names(sizes)
    h, inputs, pre = x.astype(np.float64), [], []
    for i, layer in enumerate(layers):
        inputs.append(h)
        z = h @ params[f"{layer}.weight"].T + params[f"{layer}.bias"]
        if i < len(layers) - 1:
            pre.append(z)
            h = np.maximum(z, 0.0)
    onehot = np.zeros_like(z)
    onehot[np.arange(len(y)), y] = 1.0
    g = (softmax(z) - onehot) / len(y)
    grads = {}
    for i in reversed(range(len(layers))):
        layer = layers[i]
        grads[f"{layer}.weight"] = g.T @ inputs[i]
        grads[f"{layer}.bias"] = g.sum(0)
        if i:
            g = (g @ params[f"{layer}.weight"]) * (pre[i - 1] > 0)
    return grads


class AdamW:
    """torch.optim.AdamW's update (amsgrad off): p <- p (1 - lr wd); m, v moving averages of g, g^2;
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    def __init__(self, spec: dict, names: list[str], shapes: dict):
        self.lr, self.wd, (self.b1, self.b2), self.eps = spec["lr"], spec["weight_decay"], spec["betas"], spec["eps"]
        warm = spec.get("state", {})
        self.state = {n: {"step": float(warm[n]["step"]) if n in warm else 0.0,
                          "m": np.array(warm[n]["exp_avg"]["tensor"], dtype=np.float64) if n in warm else np.zeros(shapes[n]),
                          "v": np.array(warm[n]["exp_avg_sq"]["tensor"], dtype=np.float64) if n in warm else np.zeros(shapes[n])}
                      for n in names}

    def step(self, params: dict, grads: dict) -> None:
        for name, g in grads.items():
            s = self.state[name]
            s["step"] += 1
            params[name] = params[name] * (1 - self.lr * self.wd)
            s["m"] = self.b1 * s["m"] + (1 - self.b1) * g
            s["v"] = self.b2 * s["v"] + (1 - self.b2) * g * g
            denom = np.sqrt(s["v"]) / np.sqrt(1 - self.b2 ** s["step"]) + self.eps
            params[name] = params[name] - self.lr / (1 - self.b1 ** s["step"]) * s["m"] / denom


class SGD:
    """torch.optim.SGD's update (no dampening, no Nesterov): d = g + wd p; b <- mu b + d (b = d at
    the first step); p <- p - lr b."""

    def __init__(self, spec: dict, names: list[str], shapes: dict):
        self.lr, self.mu, self.wd = spec["lr"], spec["momentum"], spec["weight_decay"]
        warm = spec.get("state", {})
        self.buffers = {n: np.array(warm[n]["momentum_buffer"]["tensor"], dtype=np.float64) for n in warm}

    def step(self, params: dict, grads: dict) -> None:
        for name, g in grads.items():
            d = g + self.wd * params[name]
            self.buffers[name] = self.mu * self.buffers[name] + d if name in self.buffers else d
            params[name] = params[name] - self.lr * self.buffers[name]


def train(case: dict, *, first: bool = True, after_step: bool = True, before_step: bool = False,
          grads_masked: bool = False, zero_grad: bool = True, one_step: bool = False) -> dict:
    """The trained state of ``case`` (its inputs as NumPy), the mask applied before training (``first``)
    and after every step (``after_step``); the switches are the catalogued mistakes: the mask applied
    between backward and step (``before_step``), the pruned gradients zeroed instead (``grads_masked``),
    gradients never zeroed (``not zero_grad``), one step on the sum of all batches' losses (``one_step``)."""
    sizes, mask = case["sizes"], case["mask"]
    params = {k: np.asarray(v, dtype=np.float64) for k, v in case["state"].items()}
    names = list(params)
    optimizer = {"AdamW": AdamW, "SGD": SGD}[case["optimizer"]["name"]](
        case["optimizer"], names, {n: p.shape for n, p in params.items()})

    def apply() -> None:
        for name, m in mask.items():
            params[name] = params[name] * m

    if first:
        apply()
    batches = case["batches"]
    if one_step:
        batches = [None]
    total = {n: np.zeros_like(p) for n, p in params.items()}
    for batch in batches:
        pairs = case["batches"] if batch is None else [batch]
        grads = {n: np.zeros_like(p) for n, p in params.items()}
        for x, y in pairs:
            for n, g in mlp_gradients(params, sizes, x, y).items():
                grads[n] += g
        total = {n: (total[n] if not zero_grad else 0) + grads[n] for n in names}
        step_grads = {n: total[n] * mask[n] if grads_masked and n in mask else total[n] for n in names}
        if before_step:
            apply()
        optimizer.step(params, step_grads)
        if after_step:
            apply()
    return params


def _train_case(rng, sizes: list[int], mask_sparsity: dict, optimizer: dict, n_batches: int, warm: bool) -> dict:
    state = init_state(rng, sizes)
    mask = {name: f32(rng.random(size=state[name].shape) >= s) for name, s in mask_sparsity.items()}
    batches = [(f32(rng.normal(size=(8, sizes[0]))), rng.integers(0, sizes[-1], size=8)) for _ in range(n_batches)]
    spec = dict(optimizer)
    if warm:  # the optimizer took earlier steps: momentum on every weight, the pruned ones included
        names = list(state)
        if spec["name"] == "AdamW":
            spec["state"] = {n: {"step": 3, "exp_avg": tensor(f32(rng.normal(size=state[n].shape) * 0.05)),
                                 "exp_avg_sq": tensor(f32(rng.random(size=state[n].shape) * 0.01 + 1e-4))} for n in names}
        else:
            spec["state"] = {n: {"momentum_buffer": tensor(f32(rng.normal(size=state[n].shape) * 0.1))} for n in names}
    case = {"sizes": sizes, "state": state, "mask": mask, "optimizer": spec, "batches": batches}
    applied = {n: (np.asarray(v, np.float64) * mask[n] if n in mask else np.asarray(v, np.float64)) for n, v in state.items()}
    wrong = {
        "mask_applied_once": train(case, after_step=False),
        "mask_not_applied_first": train(case, first=False),
        "mask_before_step": train(case, after_step=False, before_step=True),
        "grads_masked_only": train(case, after_step=False, grads_masked=True),
        "no_zero_grad": train(case, zero_grad=False),
        "one_step_for_all_batches": train(case, one_step=True),
    }
    return {
        "inputs": {"sizes": sizes, "state": mapping(state), "mask": mapping(mask), "optimizer": spec,
                   "batches": [{"x": tensor(x), "y": tensor(y, "int64")} for x, y in batches]},
        "expected": {"apply_mask": lists(applied), "state": lists(train(case))},
        "wrong": {key: lists(s) for key, s in wrong.items()},
    }


def _train_cases(rng) -> list[dict]:
    adamw = {"name": "AdamW", "lr": 0.05, "weight_decay": 0.1, "betas": [0.9, 0.999], "eps": 1e-8}
    sgd = {"name": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}
    return [
        _train_case(rng, [4, 6, 3], {"0.weight": 0.5, "2.weight": 0.5}, adamw, 4, warm=False),
        _train_case(rng, [5, 7, 4], {"0.weight": 0.7, "2.weight": 0.3}, adamw, 3, warm=True),
        _train_case(rng, [3, 6, 5, 2], {"0.weight": 0.5, "4.weight": 0.6}, sgd, 3, warm=True),
    ]


# --- imp_round ----------------------------------------------------------------------------------------

IMP_SIZES = [4, 5, 4, 3]
PRUNABLE = ["0.weight", "2.weight"]  # the classifier 4.* is not pruned, as in the notebook's sweep


def _imp_case(rng, theta0: dict, mask: dict, fraction: float) -> dict:
    start = {n: (t * mask[n] if n in mask else t) for n, t in theta0.items()}
    trained = {n: f32(start[n] + f32(rng.normal(size=t.shape) * 0.4)) for n, t in theta0.items()}
    trained = {n: (f32(t * mask[n]) if n in mask else t) for n, t in trained.items()}  # training kept the mask
    prunable = {n: trained[n] for n in PRUNABLE}
    new = prune_remaining(prunable, fraction, mask)
    rewound = {name: (f32(t * new[name]) if name in new else t) for name, t in theta0.items()}
    return {
        "inputs": {"sizes": IMP_SIZES, "theta0": mapping(theta0), "start": mapping(start), "mask": mapping(mask),
                   "fraction": fraction, "trained": mapping(trained), "stand_ins": IMP_STAND_INS},
        "expected": {"mask": lists(new), "state": lists(rewound)},
        "wrong": {
            "no_training": {"mask": lists(prune_remaining({n: start[n] for n in PRUNABLE}, fraction, mask))},
            "fraction_of_all": {"mask": lists(magnitude_mask(prunable, fraction))},
            "returns_old_mask": {"mask": lists(mask)},
            "rewind_to_final_weights": {"state": lists({name: (t * new[name] if name in new else t)
                                                        for name, t in trained.items()})},
            "rewind_drops_mask": {"state": lists(theta0)},
            "biases_not_rewound": {"state": lists({name: (rewound[name] if name in new else trained[name])
                                                   for name in theta0})},
        },
    }


def _imp_cases(rng) -> list[dict]:
    theta0 = init_state(rng, IMP_SIZES)
    ones = {n: np.ones(theta0[n].shape, np.float32) for n in PRUNABLE}
    first = _imp_case(rng, theta0, ones, 0.5)
    second_mask = {n: f32(m) for n, m in first["expected"]["mask"].items()}
    second = _imp_case(rng, theta0, second_mask, 0.3)
    third_mask = {n: f32(m) for n, m in second["expected"]["mask"].items()}
    return [first, second, _imp_case(rng, theta0, third_mask, 0.5)]


def record() -> dict:
    rng = np.random.default_rng(3)
    return {
        "note": NOTE,
        "tests": {
            "test_magnitude_mask": {"cases": _magnitude_cases(rng)},
            "test_prune_remaining": {"cases": _prune_cases(rng)},
            "test_train_with_mask": {"cases": _train_cases(rng)},
            "test_imp_round": {"cases": _imp_cases(rng)},
        },
    }
