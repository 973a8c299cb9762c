"""Judges of notebook 01 (soft targets and the distillation loss): what the hidden tests accept.

Each judge sees one hidden case: its recorded inputs, expected outputs and catalogued wrong outputs
(``fixtures/01_soft_targets.json``), and what the student's function did on it in the sandbox
(:mod:`compresslib.capture.soft_targets`). It accepts, or names the likely mistake, describing the
student's own output and never the expected one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compresslib.grading import closed_forms as cf
from compresslib.grading.judging import Mistake, as_array, as_scalar, close, judge, name_the_mistake, require_ok, short
from compresslib.grading.oracle import oracle, require_reply_size, tensor

ASSIGNMENT = "01_soft_targets"

SOFTMAX_MESSAGES = {
    "no_temperature": "this is the ordinary softmax: divide the logits by the temperature, exp(z_k / T)",
    "t_twice": "the logits were divided by T twice (z / T^2): divide once",
    "times_t": "the logits were multiplied by T: the softened softmax divides, exp(z_k / T)",
    "wrong_dim": "the probabilities sum to 1 along the wrong dimension: normalise along `dim`",
}

LOSS_MESSAGES = {
    "dropped_t2": "off by exactly a factor T^2: did you drop the T^2 factor?",
    "times_t": "off by a factor T: the loss is multiplied by T^2, not T",
    "t_twice": "the temperature was applied twice (logits / T^2 inside the softmax)",
    "reversed": "teacher and student are swapped: L_D = -sum_k q_k log p_k with q the teacher (target) "
                "and p the student",
    "kl_reversed": "this is KL(p || q), the KL divergence in the reversed direction; "
                   "L_D is the cross-entropy -sum_k q_k log p_k with the teacher's q as the target",
    "kl_instead_of_ce": "this is the KL divergence KL(q || p); it differs from the lecture's cross-entropy "
                        "L_D by the teacher's entropy (same gradient, different value): return -sum_k q_k log p_k",
    "sum_not_mean": "off by a factor of the batch size: average over the examples instead of summing",
    "teacher_no_temperature": "the teacher's softmax has no temperature: soften both distributions, q = softmax(v / T)",
    "student_no_temperature": "the student's softmax has no temperature: soften both distributions, p = softmax(z / T)",
}

COMBINED_MESSAGES = {
    "hard_at_t": "the hard loss was computed at temperature T: the ground-truth cross-entropy uses T = 1",
    "alpha_swapped": "alpha and 1 - alpha are swapped: L_C = alpha * L + (1 - alpha) * L_D, alpha weighs the hard loss",
    "soft_without_t2": "the soft part lacks the T^2 factor: use your distillation_loss (which includes it)",
    "unweighted_sum": "the two losses were added without the weights alpha and 1 - alpha",
    "hard_summed": "the hard loss is summed over the examples: average it (F.cross_entropy's default)",
}

NO_GRAPH = ("no gradient reaches the logits: compute with torch operations on the input tensor "
            "(no .detach(), .item(), .numpy() round trips or torch.no_grad() inside)")

LECTURE_BUG = ("loss.backward() failed because the loss has no graph: the student's forward pass must not run "
               "under torch.no_grad() (only the teacher's should) — this is the lecture's bug")


def check_untouched(observed: Mapping, what: str) -> None:
    changed = observed.get("inputs_changed") or []
    if changed:
        raise Mistake(f"{what} modified its input {changed[0]!r} in place: compute on new tensors "
                      "(z / T, not z /= T), the caller still needs its logits")


def check_gradient(observed: Mapping, expected, what: str, rtol=1e-4, atol=1e-6) -> None:
    gradient = observed.get("gradient", {})
    status = gradient.get("status")
    if status in ("no_graph", "no_gradient"):
        raise Mistake(f"{what}: {NO_GRAPH}")
    if status != "ok":
        require_ok(gradient, f"{what} (called on logits that require grad)")
        raise Mistake(f"{what}: could not differentiate the result")
    actual = as_array(gradient["value"], f"the gradient of {what}")
    if not close(actual, expected, rtol=rtol, atol=atol):
        raise Mistake(f"{what}: the value is right but its gradient with respect to the logits is not "
                      f"(got {short(actual)}): is part of the computation detached from the graph?")


@judge(ASSIGNMENT, "test_softmax_with_temperature")
def softmax_with_temperature(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    shape = np.asarray(inputs["logits"]["tensor"]).shape
    what = f"softmax_with_temperature(logits of shape {shape}, temperature={inputs['temperature']}, dim={inputs['dim']})"
    require_ok(observed, what)
    p = as_array(observed["value"], what)
    if p.shape != shape:
        raise Mistake(f"{what} returned shape {p.shape}: the probabilities have the shape of the logits")
    if not np.isfinite(p).all():
        raise Mistake(f"{what} gave NaN or inf for logits as large as 1000: exp() overflowed. Subtract the maximum "
                      "logit before exponentiating (softmax is unchanged by a shift), or use torch.softmax")
    if not close(p, case["expected"]["value"], rtol=1e-4, atol=1e-6):
        known = name_the_mistake(p, case["wrong"], SOFTMAX_MESSAGES, rtol=1e-4, atol=1e-6)
        if known:
            raise Mistake(f"{what}: {known}")
        sums = p.sum(axis=inputs["dim"])
        if not np.allclose(sums, 1.0, atol=1e-4):
            raise Mistake(f"{what}: the output does not sum to 1 along dim={inputs['dim']} (sums {short(sums)})")
        raise Mistake(f"{what} returned {short(p)}, which is not softmax(logits / T) along `dim`")
    check_untouched(observed, what)
    check_gradient(observed, case["expected"]["gradient"], what)


def _check_loss(case, observed, what, messages) -> None:
    require_ok(observed, what)
    value = as_scalar(observed["value"], what)
    if not np.isfinite(value):
        raise Mistake(f"{what} is {value} for logits of +-600: log(softmax(z)) underflows to log(0). "
                      "Use F.log_softmax for log p (it never forms the tiny probabilities)")
    if not close(value, case["expected"]["value"], rtol=1e-4, atol=1e-6):
        known = name_the_mistake(value, case["wrong"], messages, rtol=1e-4, atol=1e-6)
        raise Mistake(f"{what}: {known}" if known else f"{what} returned {value:.6g}, which is not the loss of the lecture")
    check_untouched(observed, what)
    check_gradient(observed, case["expected"]["gradient"], what)


@judge(ASSIGNMENT, "test_distillation_loss")
def distillation_loss(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    n, k = np.asarray(inputs["student_logits"]["tensor"]).shape
    what = f"distillation_loss at T={inputs['temperature']} on a batch of {n} x {k} logits"
    _check_loss(case, observed, what, LOSS_MESSAGES)


@judge(ASSIGNMENT, "test_combined_loss")
def combined_loss(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    what = f"combined_loss with alpha={inputs['alpha']}, T={inputs['temperature']}"
    _check_loss(case, observed, what, COMBINED_MESSAGES)


def _state(observed_state: Mapping, what: str) -> dict:
    return {name: as_array(value, f"{what}: the student's {name}") for name, value in observed_state.items()}


def _same_state(state: Mapping, expected: Mapping) -> bool:
    return set(state) == set(expected) and all(close(state[k], expected[k], rtol=1e-4, atol=1e-5) for k in expected)


@judge(ASSIGNMENT, "test_kd_step")
def kd_step(case: Mapping, observed: Mapping) -> None:
    inputs, expected = case["inputs"], case["expected"]
    steps = observed.get("steps") or []
    before = {k: np.asarray(v["tensor"]) for k, v in inputs["student_state"].items()}
    for i in range(inputs["calls"]):
        what = "kd_step" if i == 0 else "kd_step, called a second time with the same optimizer,"
        if i >= len(steps):
            raise Mistake(f"{what} did not return")
        step = steps[i]
        require_ok(step, what, {"does not require grad": LECTURE_BUG, "grad_fn": LECTURE_BUG})
        calls = step.get("teacher_calls") or []
        if not calls:
            raise Mistake(f"{what} never called the teacher: the soft targets come from teacher(**inputs)")
        if any(training for training, _ in calls):
            raise Mistake(f"{what} ran the teacher in train mode (dropout on): call teacher.eval() first")
        if any(grad_enabled for _, grad_enabled in calls):
            raise Mistake(f"{what} ran the teacher with gradients enabled: compute its logits under torch.no_grad()")
        if step.get("teacher_has_gradients"):
            raise Mistake(f"{what} left gradients on the teacher's parameters: the teacher must get no gradient")
        if step.get("teacher_changed"):
            raise Mistake(f"{what} changed the teacher's weights: only the student is optimised")
        if not step.get("student_training"):
            raise Mistake(f"{what} left the student in eval mode: call student.train() before its forward pass")
        state = _state(step.get("student_state") or {}, what)
        want = {k: np.asarray(v) for k, v in expected["states"][i].items()}
        if not _same_state(state, want):
            if _same_state(state, before):
                raise Mistake(f"{what} did not change the student's weights: is its forward pass under "
                              "torch.no_grad(), or is optimizer.step() missing?")
            if i == 1 and _same_state(state, {k: np.asarray(v) for k, v in case["wrong"]["no_zero_grad"]["states"][1].items()}):
                raise Mistake(f"{what} added this step's gradients to the last step's: zero the gradients "
                              "(optimizer.zero_grad()) before loss.backward()")
            raise Mistake(f"{what}: after the SGD step the student's weights are not those of one step on "
                          "alpha * L + (1 - alpha) * L_D of the student's logits against the teacher's: check that the "
                          "gradients are zeroed, the loss is your combined_loss, and the step is taken once")
        loss = as_scalar(step.get("value"), f"{what}'s returned loss")
        if not close(loss, expected["losses"][i], rtol=1e-4, atol=1e-5):
            raise Mistake(f"{what} returned {loss:.6g}: return the combined loss of this batch (before the step), "
                          "as a float (loss.item())")
        before = state


# --- the oracle: correct results of the earlier functions, for the stand-ins of later tests ----------


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return float(temperature)


@oracle(ASSIGNMENT, "softmax_with_temperature")
def softmax_oracle(args) -> dict:
    z, T, dim = np.asarray(args["logits"], dtype=np.float64), _check_temperature(args["temperature"]), int(args["dim"])
    require_reply_size(z.size**2, "the softmax Jacobian")  # dense: (number of logits)^2
    return {"result": tensor(cf.softmax(z / T, axis=dim)), "jacobian_wrt": "logits",
            "jacobian": cf.softmax_jacobian(z, T, axis=dim).tolist()}


def _logit_pair(args) -> tuple[np.ndarray, np.ndarray]:
    z, v = np.asarray(args["student_logits"], dtype=np.float64), np.asarray(args["teacher_logits"], dtype=np.float64)
    if z.ndim != 2 or z.shape != v.shape:
        raise ValueError(f"student and teacher logits must both have shape (N, K), got {z.shape} and {v.shape}")
    return z, v


@oracle(ASSIGNMENT, "distillation_loss")
def distillation_oracle(args) -> dict:
    (z, v), T = _logit_pair(args), _check_temperature(args["temperature"])
    return {"result": tensor(cf.distillation_loss(z, v, T)), "jacobian_wrt": "student_logits",
            "jacobian": cf.distillation_gradient(z, v, T).reshape(1, -1).tolist()}


@oracle(ASSIGNMENT, "combined_loss")
def combined_oracle(args) -> dict:
    (z, v), T, alpha = _logit_pair(args), _check_temperature(args["temperature"]), args["alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    labels = np.asarray(args["labels"]).astype(np.int64)
    if labels.shape != (len(z),) or labels.min() < 0 or labels.max() >= z.shape[1]:
        raise ValueError(f"labels must be {len(z)} class indices below {z.shape[1]}")
    return {"result": tensor(cf.combined_loss(z, v, labels, alpha, T)), "jacobian_wrt": "student_logits",
            "jacobian": cf.combined_gradient(z, v, labels, alpha, T).reshape(1, -1).tolist()}
