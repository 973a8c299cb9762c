"""Record the fixture of notebook 01 (soft targets): hidden inputs, expected outputs, catalogued wrong outputs.

Expected values are the lecture's closed forms in NumPy float64 (:mod:`compresslib.grading.closed_forms`),
independent of compresslib's torch implementation, which the library tests check against the same
formulas. ``kd_step``'s expected weights follow two SGD steps computed in closed form for the linear
probe student (``dL/dW = G^T x``, ``dL/db = sum_n G_n`` with ``G = dL_C/dz``).
"""

from __future__ import annotations

import numpy as np
import torch

from compresslib.capture.plain import input_of
from compresslib.capture.soft_targets import ProbeStudent, ProbeTeacher
from compresslib.grading import closed_forms as cf

ASSIGNMENT = "01_soft_targets"
NOTE = "NumPy float64 closed forms of the lecture (compresslib.grading.closed_forms); kd_step: two SGD steps in closed form"

SOFTMAX_SIGNATURE = ["logits", "temperature", ["dim", -1]]
LOSS_SIGNATURE = ["student_logits", "teacher_logits", "temperature"]
COMBINED_SIGNATURE = ["student_logits", "teacher_logits", "labels", "alpha", "temperature"]


def tensor(array, dtype="float32") -> dict:
    return {"tensor": np.asarray(array).tolist(), "dtype": dtype}


# The earlier functions a dependent test's stand-ins may ask the grader's oracle for (its scope).
SOFTMAX_STAND_IN = {"softmax_with_temperature": {"signature": SOFTMAX_SIGNATURE}}
LOSS_STAND_INS = {**SOFTMAX_STAND_IN, "distillation_loss": {"signature": LOSS_SIGNATURE}}
STEP_STAND_INS = {**LOSS_STAND_INS, "combined_loss": {"signature": COMBINED_SIGNATURE}}


def _softmax_cases(rng) -> list[dict]:
    z = rng.normal(size=(3, 5)) * 3
    settings = [
        (z, 2.0, -1, "float32"), (z, 0.5, -1, "float32"), (z, 4.0, 0, "float32"),
        (np.array([[1000.0, 990.0, 0.0], [-1000.0, 0.0, 5.0]]), 1.0, -1, "float32"),  # overflows a naive exp
        (rng.normal(size=(2, 3, 4)) * 2, 3.0, 1, "float64"),  # a 3-D tensor, the middle dimension
        (rng.normal(size=(1, 6)) * 5, 20.0, -1, "float32"),  # one example, a large temperature
        (np.array([[0.3]]), 0.7, -1, "float32"),  # one class
    ]
    cases = []
    for logits, T, dim, dtype in settings:
        weights = rng.normal(size=logits.shape)
        other = 0 if dim in (-1, logits.ndim - 1) else -1
        wrong = {
            "no_temperature": cf.softmax(logits, axis=dim),
            "t_twice": cf.softmax(logits / T**2, axis=dim),
            "times_t": cf.softmax(logits * T, axis=dim),
        }
        if logits.shape[other] > 1:
            wrong["wrong_dim"] = cf.softmax(logits / T, axis=other)
        cases.append({
            "inputs": {"logits": tensor(logits, dtype), "temperature": T, "dim": dim, "weights": tensor(weights, dtype)},
            "expected": {"value": cf.softmax(logits / T, axis=dim).tolist(),
                         "gradient": cf.softmax_vjp(logits, T, weights, axis=dim).tolist()},
            "wrong": {k: v.tolist() for k, v in wrong.items()},
        })
    return cases


def _distillation_cases(rng) -> list[dict]:
    settings = [(4, 5, 2.0, 2.0), (3, 6, 4.0, 2.0), (1, 3, 1.0, 2.0), (7, 4, 10.0, 3.0), (2, 3, 0.5, 1.0)]
    cases = []
    for n, k, T, scale in settings:
        z, v = rng.normal(size=(n, k)) * scale, rng.normal(size=(n, k)) * scale
        cases.append(_distillation_case(z, v, T))
    # logits of +-600 at T = 1: log(softmax(z)) underflows to log(0); F.log_softmax does not
    z = np.array([[600.0, 0.0, -600.0], [-600.0, 600.0, 0.0]])
    v = np.array([[0.0, 600.0, -600.0], [600.0, -600.0, 0.0]])
    cases.append(_distillation_case(z, v, 1.0))
    return cases


def _distillation_case(z, v, T) -> dict:
    n = len(z)
    p, q = cf.softmax(z / T), cf.softmax(v / T)
    log_p, log_q = cf.log_softmax(z / T), cf.log_softmax(v / T)
    ce = cf.cross_entropy(q, log_p)
    return {
        "inputs": {"student_logits": tensor(z), "teacher_logits": tensor(v), "temperature": T,
                   "stand_ins": SOFTMAX_STAND_IN},
        "expected": {"value": T**2 * ce, "gradient": cf.distillation_gradient(z, v, T).tolist()},
        "wrong": {
            "dropped_t2": ce,
            "times_t": T * ce,
            "t_twice": T**2 * cf.cross_entropy(cf.softmax(v / T**2), cf.log_softmax(z / T**2)),
            "reversed": T**2 * cf.cross_entropy(p, log_q),
            "kl_reversed": T**2 * float((p * (log_p - log_q)).sum(-1).mean()),
            "kl_instead_of_ce": T**2 * float((q * (log_q - log_p)).sum(-1).mean()),
            "sum_not_mean": n * T**2 * ce,
            "teacher_no_temperature": T**2 * cf.cross_entropy(cf.softmax(v), log_p),
            "student_no_temperature": T**2 * cf.cross_entropy(q, cf.log_softmax(z)),
        },
    }


def _combined_cases(rng) -> list[dict]:
    settings = [(5, 4, 2.0, 0.3, 2.0), (4, 3, 4.0, 0.8, 2.0), (5, 3, 2.0, 0.0, 2.0), (3, 5, 3.0, 1.0, 2.0),
                (6, 2, 1.5, 0.5, 150.0)]
    cases = []
    for n, k, T, alpha, scale in settings:
        z, v = rng.normal(size=(n, k)) * scale, rng.normal(size=(n, k)) * scale
        labels = rng.integers(0, k, size=n)
        hard, soft = cf.hard_loss(z, labels), cf.distillation_loss(z, v, T)
        cases.append({
            "inputs": {"student_logits": tensor(z), "teacher_logits": tensor(v), "labels": tensor(labels, "int64"),
                       "alpha": alpha, "temperature": T, "stand_ins": LOSS_STAND_INS},
            "expected": {"value": alpha * hard + (1 - alpha) * soft,
                         "gradient": cf.combined_gradient(z, v, labels, alpha, T).tolist()},
            "wrong": {
                "hard_at_t": alpha * cf.hard_loss(z / T, labels) + (1 - alpha) * soft,
                "alpha_swapped": (1 - alpha) * hard + alpha * soft,
                "soft_without_t2": alpha * hard + (1 - alpha) * soft / T**2,
                "unweighted_sum": hard + soft,
                "hard_summed": alpha * n * hard + (1 - alpha) * soft,
            },
        })
    return cases


def _state_lists(model) -> dict:
    return {k: input_of(v) for k, v in model.state_dict().items()}


def _kd_step_case() -> dict:
    torch.manual_seed(7)
    teacher, student = ProbeTeacher(), ProbeStudent()
    features, labels = torch.randn(8, 6), torch.randint(0, 4, (8,))
    T, alpha, lr, calls = 2.0, 0.5, 0.5, 2
    with torch.no_grad():
        v = teacher.eval()(features).double().numpy()
    x, y = features.double().numpy(), labels.numpy()
    weight, bias = student.out.weight.detach().double().numpy(), student.out.bias.detach().double().numpy()
    states, losses, gradients = [], [], []
    for _ in range(calls):
        z = x @ weight.T + bias
        losses.append(cf.combined_loss(z, v, y, alpha, T))
        g = cf.combined_gradient(z, v, y, alpha, T)
        gradients.append((g.T @ x, g.sum(0)))
        weight, bias = weight - lr * gradients[-1][0], bias - lr * gradients[-1][1]
        states.append({"out.weight": weight.tolist(), "out.bias": bias.tolist()})
    # Without optimizer.zero_grad(), the second step uses the sum of both steps' gradients.
    w1, b1 = np.array(states[0]["out.weight"]), np.array(states[0]["out.bias"])
    accumulated = {"out.weight": (w1 - lr * (gradients[0][0] + gradients[1][0])).tolist(),
                   "out.bias": (b1 - lr * (gradients[0][1] + gradients[1][1])).tolist()}
    return {
        "inputs": {"teacher_state": _state_lists(teacher), "student_state": _state_lists(student),
                   "features": input_of(features), "labels": input_of(labels), "lr": lr, "temperature": T,
                   "alpha": alpha, "calls": calls, "stand_ins": STEP_STAND_INS},
        "expected": {"states": states, "losses": losses},
        "wrong": {"no_zero_grad": {"states": [states[0], accumulated]}},
    }


def record() -> dict:
    rng = np.random.default_rng(2023)
    return {
        "note": NOTE,
        "tests": {
            "test_softmax_with_temperature": {"cases": _softmax_cases(rng)},
            "test_distillation_loss": {"cases": _distillation_cases(rng)},
            "test_combined_loss": {"cases": _combined_cases(rng)},
            "test_kd_step": {"cases": [_kd_step_case()]},
        },
    }
