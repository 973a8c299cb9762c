r"""Judges of notebook 03 (finding a lottery ticket): what the hidden tests accept.

Each judge sees one hidden case: its recorded inputs, expected outputs and catalogued wrong outputs
(``fixtures/03_lottery_tickets.json``, recorded by ``python -m compresslib.grading.record
03_lottery_tickets``), and what the student's functions did on it in the sandbox
(:mod:`compresslib.capture.lottery_tickets`). It accepts, or names the likely mistake, describing the
student's own output and never the expected one.

The notebook's conventions: weights and masks are ``{name: tensor}`` dicts, a mask holds 1.0 (kept)
and 0.0 (pruned) in a float tensor of its weight's shape; ``magnitude_mask`` and ``prune_remaining``
rank all tensors together and prune an exact number of weights, ties broken by position;
``train_with_mask`` takes one step per batch with the mask applied before training and after every
step; ``imp_round`` trains, prunes ``fraction`` of the remaining weights of the trained model and
leaves the model at :math:`m \odot \theta_0`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compresslib.capture.plain import describe, is_tensor
from compresslib.grading.judging import Mistake, as_array, close, judge, require_ok
from compresslib.grading.oracle import mapping, oracle
from compresslib.grading.record import lottery_tickets as rules

ASSIGNMENT = "03_lottery_tickets"
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

MAGNITUDE_MESSAGES = {
    "signed_pruning": "the most negative weights were pruned: rank by magnitude |w|, not by signed value",
    "threshold_keeps_ties": "every weight tied with the k-th smallest |w| was kept (|w| >= t), so fewer than k "
                            "were pruned: prune exactly k = round(sparsity * n), breaking ties by position "
                            "(a stable sort)",
    "threshold_prunes_all_ties": "every weight tied at the threshold was pruned (keeping only |w| > t), so more than "
                                 "k were pruned: prune exactly k = round(sparsity * n), breaking ties by position "
                                 "(a stable sort)",
    "per_layer_ranking": "each tensor was pruned to the sparsity on its own: rank all the tensors together "
                         "(one global ranking, as in the BERT-ticket paper)",
    "mask_inverted": "the mask is inverted (1 at the pruned weights; or the largest |w| were pruned): a mask holds 1 "
                     "where the weight is kept and 0 where it is pruned, and the smallest |w| are pruned",
    "ties_latest_first": "ties were broken from the last position: among equal |w|, prune the earliest positions "
                         "first, in the weights' dict order then by flat index (an ascending stable sort)",
}

PRUNE_MESSAGES = {
    "fraction_of_all_weights": "the fraction was taken of all the weights, so the already-pruned zeros were picked "
                               "again and the sparsity did not grow: prune a fraction of the *remaining* weights",
    "fraction_of_total_added": "round(fraction * n) more weights were pruned, n counting all the weights: prune "
                               "round(fraction * n_remaining) more, a fraction of the *remaining* ones",
    "ignores_previous": "weights the previous mask pruned are kept again: they were ranked by their own |w|, which "
                        "is not 0 here. Keep every pruned weight pruned (rank |w * previous|)",
    "counts_only_new": "only round(fraction * n_remaining) weights are pruned in all, so some pruned weights came "
                       "back: the new mask prunes the previous ones plus round(fraction * n_remaining) more",
    "per_layer_remaining": "each tensor was pruned by the fraction on its own: rank the remaining weights of all "
                           "the tensors together",
}

TRAIN_MESSAGES = {
    "mask_applied_once": "pruned weights became non-zero during training: the mask was applied once before "
                         "training, so the gradients, momentum and weight decay moved them again. Re-apply it after "
                         "every optimizer step",
    "mask_not_applied_first": "the first step ran with the pruned weights still in place: apply the mask before "
                              "the first step too, so that training starts from m * theta",
    "mask_before_step": "the mask was applied before optimizer.step(), which then moved the pruned weights off zero "
                        "again: re-apply the mask after every optimizer step",
    "grads_masked_only": "the pruned gradients were zeroed, but the optimizer's momentum from earlier steps still "
                         "moved the pruned weights: re-apply the mask to the weights after every optimizer step",
    "no_zero_grad": "the gradients piled up from batch to batch: call optimizer.zero_grad() before every "
                    "loss.backward()",
    "one_step_for_all_batches": "one optimizer step for all the batches together: take one step per (x, y) batch",
}

IMP_MESSAGES = {
    "no_training": "the new mask was computed from the weights before training: call train(model, mask) first, "
                   "then prune the *trained* weights",
    "fraction_of_all": "the fraction was taken of all the prunable weights, so the pruned zeros were picked again: "
                       "prune `fraction` of the remaining weights (your prune_remaining)",
    "returns_old_mask": "returned the mask it was given: return the new mask",
    "rewind_to_final_weights": "the survivors kept their trained values: rewind them to their initial values theta0 "
                               "(the ticket is m * theta0); keeping the trained weights is standard pruning",
    "rewind_drops_mask": "after rewinding, the pruned weights are non-zero again (theta0 everywhere): rewinding "
                         "resets only the survivors, so apply the new mask after loading theta0",
    "biases_not_rewound": "the parameters outside the mask (biases, the classifier) kept their trained values: load "
                          "all of theta0 (model.load_state_dict(theta0)), then apply the new mask",
}

IN_PLACE_HINT = ("change the parameters in place under torch.no_grad() (autograd forbids in-place changes of "
                 "tensors that require grad)")
HINTS = {"leaf Variable": IN_PLACE_HINT, "requires grad": IN_PLACE_HINT}


# --- reading the student's output -------------------------------------------------------------------


def arrays(spec: Mapping) -> dict[str, np.ndarray]:
    """A recorded ``{"mapping": {name: {"tensor": ...}}}`` input as NumPy arrays."""
    return {name: np.asarray(value["tensor"], dtype=np.float64) for name, value in spec["mapping"].items()}


def recorded(lists: Mapping) -> dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.float64) for name, value in lists.items()}


def flat(tensors: Mapping[str, np.ndarray], names) -> np.ndarray:
    return np.concatenate([np.asarray(tensors[n], dtype=np.float64).ravel() for n in names])


def as_masks(plain, shapes: Mapping[str, tuple], what: str) -> dict[str, np.ndarray]:
    """The student's mask as ``{name: 0/1 array}``, or a Mistake saying what came back instead."""
    if is_tensor(plain):
        raise Mistake(f"{what} returned a single tensor: return a dict {{name: mask}}, one mask per weight tensor")
    if not (isinstance(plain, Mapping) and isinstance(plain.get("mapping"), Mapping)):
        raise Mistake(f"{what} should return a dict {{name: mask tensor}}, got {describe(plain)}")
    got = plain["mapping"]
    if set(got) != set(shapes):
        raise Mistake(f"{what} returned masks for {sorted(got)[:6]}: give one mask per weight tensor, "
                      "under the weight's name")
    masks = {}
    for name, shape in shapes.items():
        value = as_array(got[name], f"{what}: mask[{name!r}]")
        if value.shape != tuple(shape):
            raise Mistake(f"{what}: mask[{name!r}] has shape {value.shape} but its weight has shape {tuple(shape)}: "
                          "give each mask its weight's shape (.view(w.shape))")
        dtype = got[name]["tensor"]["dtype"]
        if dtype not in FLOAT_DTYPES:
            raise Mistake(f"{what}: mask[{name!r}] is a {dtype} tensor: return float masks (1.0 kept, 0.0 pruned), "
                          "e.g. keep.float()")
        if not np.isin(value, (0.0, 1.0)).all():
            raise Mistake(f"{what}: mask[{name!r}] holds values other than 0 and 1")
        masks[name] = value
    return masks


def named_mistake(actual: np.ndarray, wrong: Mapping, messages: Mapping[str, str], names, key=None) -> str | None:
    """The message of the first catalogued wrong answer whose recorded output equals ``actual``."""
    for mistake, message in messages.items():
        value = wrong.get(mistake)
        if value is not None and key is not None:
            value = value.get(key)
        if value is not None and close(actual, flat(recorded(value), names), rtol=1e-4, atol=1e-5):
            return message
    return None


def pruned_count(masks: Mapping[str, np.ndarray]) -> int:
    return int(sum((m == 0).sum() for m in masks.values()))


# --- magnitude_mask, prune_remaining -------------------------------------------------------------------


@judge(ASSIGNMENT, "test_magnitude_mask")
def magnitude_mask(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    weights = arrays(inputs["weights"])
    names, n, sparsity = list(weights), sum(w.size for w in weights.values()), inputs["sparsity"]
    shapes = " and ".join(str(w.shape) for w in weights.values())
    what = f"magnitude_mask(weights of shapes {shapes}, sparsity={sparsity})"
    require_ok(observed, what)
    masks = as_masks(observed["value"], {k: w.shape for k, w in weights.items()}, what)
    if observed.get("weights_changed"):
        raise Mistake(f"{what} modified the weights it was given ({', '.join(observed['weights_changed'][:3])}): "
                      "compute the mask from |w| and leave the weights as they are")
    actual = flat(masks, names)
    if np.array_equal(actual, flat(recorded(case["expected"]["mask"]), names)):
        return
    known = named_mistake(actual, case["wrong"], MAGNITUDE_MESSAGES, names)
    if known:
        raise Mistake(f"{what}: {known}")
    pruned = pruned_count(masks)
    if pruned != int(round(sparsity * n)):
        raise Mistake(f"{what} pruned {pruned} of the {n} weights: prune exactly k = round(sparsity * n) of them")
    raise Mistake(f"{what} pruned the right number of weights, but not the ones with the smallest |w| over all "
                  "the tensors together (ties: earliest position first, in dict order then flat index)")


@judge(ASSIGNMENT, "test_prune_remaining")
def prune_remaining(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    weights, previous = arrays(inputs["weights"]), arrays(inputs["previous"])
    names, fraction = list(weights), inputs["fraction"]
    alive = flat(previous, names) == 1
    what = (f"prune_remaining(weights of shapes {' and '.join(str(w.shape) for w in weights.values())}, "
            f"fraction={fraction}, previous) with {int(alive.sum())} of {alive.size} weights remaining")
    require_ok(observed, what)
    masks = as_masks(observed["value"], {k: w.shape for k, w in weights.items()}, what)
    if observed.get("previous_changed"):
        raise Mistake(f"{what} modified the previous mask in place ({', '.join(observed['previous_changed'][:3])}): "
                      "return a new mask and leave `previous` as it was")
    if observed.get("weights_changed"):
        raise Mistake(f"{what} modified the weights it was given ({', '.join(observed['weights_changed'][:3])}): "
                      "leave them as they are (multiply into new tensors, w * previous)")
    actual = flat(masks, names)
    if np.array_equal(actual, flat(recorded(case["expected"]["mask"]), names)):
        return
    known = named_mistake(actual, case["wrong"], PRUNE_MESSAGES, names)
    if known:
        raise Mistake(f"{what}: {known}")
    revived = int(((actual == 1) & ~alive).sum())
    if revived:
        raise Mistake(f"{what}: {revived} weights the previous mask pruned are kept again: masks only shrink, "
                      "a pruned weight stays pruned")
    newly = int(((actual == 0) & alive).sum())
    if newly != int(round(fraction * alive.sum())):
        raise Mistake(f"{what} pruned {newly} more of the {int(alive.sum())} remaining weights: prune "
                      "round(fraction * n_remaining) more")
    raise Mistake(f"{what} pruned the right number of weights, but not the remaining ones with the smallest |w| "
                  "over all the tensors together (ties: earliest position first)")


# --- apply_mask, train_with_mask ------------------------------------------------------------------------


def _state(plain, what: str) -> dict[str, np.ndarray]:
    if not (isinstance(plain, Mapping) and isinstance(plain.get("mapping"), Mapping)):
        raise Mistake(f"{what}: the grader could not read the model's weights")
    return {name: as_array(value, f"{what}: {name}") for name, value in plain["mapping"].items()}


def _nonzero_pruned(state: Mapping[str, np.ndarray], mask: Mapping[str, np.ndarray]) -> int:
    return int(sum(((state[n] != 0) & (m == 0)).sum() for n, m in mask.items()))


def _check_apply_mask(case: Mapping, observed: Mapping, mask: Mapping[str, np.ndarray]) -> None:
    what = "apply_mask(model, mask)"
    require_ok(observed, what, HINTS)
    if observed.get("mask_changed"):
        raise Mistake(f"{what} modified the mask it was given ({', '.join(observed['mask_changed'][:3])}): "
                      "leave the mask as it is")
    if observed.get("parameters_replaced"):
        raise Mistake(f"{what} replaced the parameters {observed['parameters_replaced'][:3]} by new ones, which the "
                      "optimizer does not hold: multiply the existing parameters in place (p.mul_(m))")
    before, state = arrays(case["inputs"]["state"]), _state(observed.get("state"), what)
    names = list(before)
    if close(flat(state, names), flat(recorded(case["expected"]["apply_mask"]), names), rtol=0, atol=0):
        return
    if close(flat(state, names), flat(before, names), rtol=0, atol=0):
        raise Mistake(f"{what} left the model's weights unchanged: multiply its parameters in place (p.mul_(m)); "
                      "`p = p * m` only rebinds a name")
    nonzero = _nonzero_pruned(state, mask)
    if nonzero:
        raise Mistake(f"after {what}, {nonzero} pruned weights are non-zero: w <- m * w for every masked parameter")
    changed = [n for n in names if n not in mask and not np.array_equal(state[n], before[n])]
    if changed:
        raise Mistake(f"{what} changed {changed[:3]}, which the mask does not name: leave the other parameters alone")
    raise Mistake(f"{what} changed weights the mask keeps: only the pruned ones (mask 0) become 0")


def _describe_training(inputs: Mapping) -> str:
    spec = inputs["optimizer"]
    settings = f"lr={spec['lr']}, weight_decay={spec['weight_decay']}"
    if spec["name"] == "SGD":
        settings += f", momentum={spec['momentum']}"
    warm = ", already holding momentum from earlier steps" if spec.get("state") else ""
    return f"train_with_mask({spec['name']}({settings}){warm}, {len(inputs['batches'])} batches)"


@judge(ASSIGNMENT, "test_train_with_mask")
def train_with_mask(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    mask = arrays(inputs["mask"])
    require_ok(observed, "apply_mask and train_with_mask")
    _check_apply_mask(case, observed.get("apply_mask") or {}, mask)

    trained = observed.get("train") or {}
    what, n_batches = _describe_training(inputs), len(inputs["batches"])
    require_ok(trained, what, HINTS)
    if trained.get("mask_changed"):
        raise Mistake(f"{what} modified the mask it was given ({', '.join(trained['mask_changed'][:3])}): "
                      "leave the mask as it is")
    before, state = arrays(inputs["state"]), _state(trained.get("state"), what)
    names = list(before)
    actual = flat(state, names)
    forwards = trained.get("forwards") or []
    right = close(actual, flat(recorded(case["expected"]["state"]), names), rtol=1e-4, atol=1e-5)
    if not right:
        known = named_mistake(actual, case["wrong"], TRAIN_MESSAGES, names)
        if known:
            raise Mistake(f"{what}: {known}")
    steps = trained.get("steps", 0)
    if steps != n_batches:
        raise Mistake(f"{what} took {steps} steps of the optimizer it was given for {n_batches} batches: one step "
                      "of that optimizer per (x, y) batch")
    if len(forwards) != n_batches:
        raise Mistake(f"{what} ran the model {len(forwards)} times for {n_batches} batches: one forward pass per batch")
    if any(not training for training, _ in forwards):
        raise Mistake(f"{what} ran the model in eval mode: call model.train() before training")
    for step, (_, nonzero) in enumerate(forwards):
        if nonzero and step == 0:
            raise Mistake(f"{what}: the first forward pass ran with {nonzero} pruned weights non-zero: apply the mask "
                          "before the first step")
        if nonzero:
            raise Mistake(f"{what}: the forward pass of batch {step + 1} ran with {nonzero} pruned weights non-zero: "
                          "re-apply the mask after every optimizer step")
    nonzero = _nonzero_pruned(state, mask)
    if nonzero:
        raise Mistake(f"{what}: after training, {nonzero} pruned weights are non-zero: re-apply the mask after every "
                      "optimizer step, the last one included")
    if right:
        return
    if close(actual, flat(recorded(case["expected"]["apply_mask"]), names), rtol=0, atol=0):
        raise Mistake(f"{what}: no weight changed: zero the gradients before loss.backward() (not between backward "
                      "and step), then optimizer.step()")
    unmasked = [n for n in names if n not in mask]
    if unmasked and all(np.array_equal(state[n], before[n]) for n in unmasked):
        raise Mistake(f"{what}: the parameters outside the mask ({unmasked[:3]}) did not change: step the optimizer "
                      "it was given, which holds every parameter")
    raise Mistake(f"{what}: the pruned weights stay 0, but the trained weights are not those of one step of "
                  "F.cross_entropy(model(x), y) per batch with the optimizer it was given (zero_grad, backward, "
                  "step, then re-apply the mask)")


# --- imp_round ------------------------------------------------------------------------------------------


def _same_values(plain, mask: Mapping[str, np.ndarray]) -> bool:
    """Does the plain ``{name: tensor}`` hold the values of ``mask`` (any dtype: a bool copy is the same mask)?"""
    got = plain.get("mapping") if isinstance(plain, Mapping) else None
    if not isinstance(got, Mapping) or set(got) != set(mask):
        return False
    try:
        return all(np.array_equal(as_array(got[n], "the mask").astype(np.float64), m) for n, m in mask.items())
    except Mistake:
        return False


@judge(ASSIGNMENT, "test_imp_round")
def imp_round(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    given, theta0, trained = arrays(inputs["mask"]), arrays(inputs["theta0"]), arrays(inputs["trained"])
    prunable, names = list(given), list(theta0)
    sparsity = 1 - flat(given, prunable).mean()
    what = f"imp_round(fraction={inputs['fraction']}, from a mask of sparsity {sparsity:.2f})"
    require_ok(observed, what)

    calls = observed.get("train_calls") or []
    if not calls:
        raise Mistake(f"{what} never called train(model, mask): train first, then prune the trained weights")
    if len(calls) > 1:
        raise Mistake(f"{what} called train {len(calls)} times: train once per round, before pruning")
    call = calls[0]
    if not call.get("same_model"):
        raise Mistake(f"{what} called train on another model: train the model it was given, in place")
    if not _same_values(call.get("mask"), given):
        raise Mistake(f"{what} called train with another mask than the one it was given: train the current ticket "
                      "under `mask`")
    if not call.get("at_start"):
        raise Mistake(f"{what} changed the model before calling train: train the ticket as it was given")
    if observed.get("theta0_changed"):
        raise Mistake(f"{what} modified theta0 ({', '.join(observed['theta0_changed'][:3])}): theta0 is the rewind "
                      "point of every round; load it into the model (model.load_state_dict(theta0)) and apply the "
                      "mask to the model, not to theta0")

    masks = as_masks(observed.get("value"), {n: m.shape for n, m in given.items()}, what)
    actual = flat(masks, prunable)
    if not np.array_equal(actual, flat(recorded(case["expected"]["mask"]), prunable)):
        known = named_mistake(actual, case["wrong"], IMP_MESSAGES, prunable, key="mask")
        if known:
            raise Mistake(f"{what}: {known}")
        alive = flat(given, prunable) == 1
        if ((actual == 1) & ~alive).any():
            raise Mistake(f"{what}: the new mask keeps weights the old mask pruned: masks only shrink")
        raise Mistake(f"{what}: the new mask (sparsity {1 - actual.mean():.3f}) does not prune `fraction` of the "
                      "remaining weights with the smallest |w| of the *trained* model")

    state = _state(observed.get("state"), what)
    expected = recorded(case["expected"]["state"])
    if close(flat(state, names), flat(expected, names), rtol=1e-6, atol=1e-7) and not _nonzero_pruned(state, masks):
        return
    known = named_mistake(flat(state, names), case["wrong"], IMP_MESSAGES, names, key="state")
    if known:
        raise Mistake(f"{what}: {known}")
    if close(flat(state, names), flat(trained, names), rtol=0, atol=0):
        raise Mistake(f"{what}: the model still holds its trained weights: rewind the model it was given, in place "
                      "(model.load_state_dict(theta0)); rewinding a copy leaves the caller's model as it was")
    nonzero = _nonzero_pruned(state, masks)
    if nonzero:
        raise Mistake(f"{what}: after the round, {nonzero} weights the new mask prunes are non-zero: the ticket is "
                      "m * theta0, so apply the new mask after rewinding")
    survivors = int(sum(((masks[n] == 1) & ~np.isclose(state[n], theta0[n], rtol=1e-6, atol=1e-7)).sum()
                        for n in prunable))
    if survivors:
        raise Mistake(f"{what}: {survivors} surviving weights are not at their theta0 values: rewind the survivors "
                      "to theta0")
    others = [n for n in names if n not in given and not np.allclose(state[n], theta0[n], rtol=1e-6, atol=1e-7)]
    raise Mistake(f"{what}: {', '.join(others[:4]) or 'some parameters'} are not back at theta0: every parameter "
                  "goes back to theta0, those outside the mask too")


# --- the oracle: correct results of the earlier functions, for the stand-ins of later tests ----------


def _weights(value, what: str) -> dict:
    if not isinstance(value, dict) or not value or not all(isinstance(v, np.ndarray) for v in value.values()):
        raise ValueError(f"{what} must be a non-empty dict of tensors")
    return value


def _amount(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


@oracle(ASSIGNMENT, "magnitude_mask")
def magnitude_mask_oracle(args) -> dict:
    weights = _weights(args["weights"], "weights")
    return {"result": mapping(rules.magnitude_mask(weights, _amount(args["sparsity"], "sparsity")))}


@oracle(ASSIGNMENT, "prune_remaining")
def prune_remaining_oracle(args) -> dict:
    weights, previous = _weights(args["weights"], "weights"), _weights(args["previous"], "previous")
    if set(weights) != set(previous) or any(weights[n].shape != previous[n].shape for n in weights):
        raise ValueError("the previous mask must have one tensor of the same shape per weight")
    return {"result": mapping(rules.prune_remaining(weights, _amount(args["fraction"], "fraction"), previous))}


@oracle(ASSIGNMENT, "apply_mask")
def apply_mask_oracle(args) -> dict:
    state, mask = _weights(args["model"], "the model's state"), _weights(args["mask"], "mask")
    missing = sorted(set(mask) - set(state))
    if missing or any(state[n].shape != mask[n].shape for n in mask):
        raise KeyError(f"the mask does not fit the model's weights {missing}")
    return {"updates": {"model": mapping({name: state[name] * mask[name] for name in mask})},
            "result_argument": "model"}
