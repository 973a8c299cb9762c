"""Graded checks of notebook 01 (soft targets and the distillation loss).

Each ``check_*`` calls the student's function on the recorded cases of ``fixtures/01_soft_targets.json``
and raises :class:`~compresslib.grading.core.GradingError` naming the likely mistake when the output
does not match.
"""

from __future__ import annotations

import torch
from torch import nn

from compresslib.grading.core import GradingError, as_tensor, call_student, diagnose, graded_alone, load_fixture, to_number

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
}


def _references(*names: str) -> dict:
    """The reference versions (compresslib's) of earlier functions, by the names the notebook uses."""
    from compresslib import distill

    return {name: getattr(distill, name) for name in names}


def _cases(name: str) -> list[dict]:
    return load_fixture(ASSIGNMENT)[name]["cases"]


def check_softmax_with_temperature(fn) -> None:
    """The student's ``softmax_with_temperature(logits, temperature, dim=-1)`` against the fixtures."""
    for case in _cases("softmax_with_temperature"):
        logits = as_tensor(case["logits"], torch.float32)
        what = f"softmax_with_temperature(logits, temperature={case['temperature']}, dim={case['dim']})"
        out = call_student(fn, what, logits, case["temperature"], dim=case["dim"])
        if not isinstance(out, torch.Tensor):
            raise GradingError(f"{what} should return a tensor, got {type(out).__name__}")
        if not case["wrong"] and not torch.isfinite(out).all():
            raise GradingError(
                f"{what} gave NaN/inf for logits as large as 1000: exp() overflowed. Subtract the maximum logit "
                "before exponentiating (softmax is unchanged by a shift), or use torch.softmax"
            )
        diagnose(out.detach(), case["expected"], case["wrong"], what=what, rtol=1e-4, atol=1e-5, messages=SOFTMAX_MESSAGES)


def check_distillation_loss(fn) -> None:
    """The student's ``distillation_loss(student_logits, teacher_logits, temperature)`` against the fixtures."""
    for case in _cases("distillation_loss"):
        z = as_tensor(case["student_logits"], torch.float32)
        v = as_tensor(case["teacher_logits"], torch.float32)
        T = case["temperature"]
        what = f"distillation_loss at T={T} on a batch of {len(z)}"
        with graded_alone(fn, **_references("softmax_with_temperature")):
            value = to_number(call_student(fn, what, z, v, T), what)
        diagnose(value, case["expected"], case["wrong"], what=what, rtol=1e-4, messages=LOSS_MESSAGES)


def check_combined_loss(fn) -> None:
    """The student's ``combined_loss(student_logits, teacher_logits, labels, alpha, temperature)``."""
    for case in _cases("combined_loss"):
        z = as_tensor(case["student_logits"], torch.float32)
        v = as_tensor(case["teacher_logits"], torch.float32)
        labels = torch.tensor(case["labels"])
        what = f"combined_loss with alpha={case['alpha']}, T={case['temperature']}"
        with graded_alone(fn, **_references("softmax_with_temperature", "distillation_loss")):
            value = to_number(call_student(fn, what, z, v, labels, case["alpha"], case["temperature"]), what)
        diagnose(value, case["expected"], case["wrong"], what=what, rtol=1e-4, messages=COMBINED_MESSAGES)


# --- kd_step: tiny models that record how they were called ------------------------------------------


class ProbeTeacher(nn.Module):
    """A small teacher with dropout that records, at each forward, its mode and whether autograd was on."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(6, 16)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(16, 4)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, features):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.out(self.dropout(torch.relu(self.hidden(features))))


class ProbeStudent(nn.Module):
    """A linear student."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(6, 4)

    def forward(self, features):
        return self.out(features)


def state_to_lists(model: nn.Module) -> dict:
    return {k: v.tolist() for k, v in model.state_dict().items() if k != "calls"}


def _load_state(model: nn.Module, lists: dict) -> nn.Module:
    model.load_state_dict({k: torch.tensor(v) for k, v in lists.items()})
    return model


def check_kd_step(fn) -> None:
    """The student's ``kd_step(teacher, student, batch, optimizer, *, temperature, alpha)``: one SGD step
    from recorded weights must land on the recorded student weights, with the teacher in eval mode
    under ``no_grad`` and untouched."""
    case = load_fixture(ASSIGNMENT)["kd_step"]
    teacher = _load_state(ProbeTeacher(), case["initial"]["teacher"])
    student = _load_state(ProbeStudent(), case["initial"]["student"])
    teacher.train()  # a correct kd_step puts it in eval mode itself
    batch = {"features": torch.tensor(case["batch"]["features"]), "labels": torch.tensor(case["batch"]["labels"])}
    optimizer = torch.optim.SGD(student.parameters(), lr=case["lr"])
    references = _references("softmax_with_temperature", "distillation_loss", "combined_loss")
    try:
        with graded_alone(fn, **references):
            result = fn(teacher, student, batch, optimizer, temperature=case["temperature"], alpha=case["alpha"])
    except NotImplementedError:
        raise
    except RuntimeError as error:
        if "does not require grad" in str(error) or "grad_fn" in str(error):
            raise GradingError(
                "kd_step: loss.backward() failed because the loss has no graph: the student's forward pass must not "
                "run under torch.no_grad() (only the teacher's should) — this is the lecture's bug"
            ) from error
        raise GradingError(f"kd_step raised RuntimeError: {error}") from error

    if not teacher.calls:
        raise GradingError("kd_step never called the teacher: the soft targets come from teacher(**inputs)")
    training, grad_enabled = teacher.calls[-1]
    if training:
        raise GradingError("kd_step ran the teacher in train mode (dropout on): call teacher.eval() first")
    if grad_enabled:
        raise GradingError("kd_step ran the teacher with gradients enabled: compute its logits under torch.no_grad()")
    if any(p.grad is not None for p in teacher.parameters()):
        raise GradingError("kd_step left gradients on the teacher's parameters: the teacher must get no gradient")
    if not student.training:
        raise GradingError("kd_step left the student in eval mode: call student.train() before its forward pass")

    initial = {k: torch.tensor(v) for k, v in case["initial"]["student"].items()}
    now = student.state_dict()
    if all(torch.equal(now[k].cpu(), initial[k]) for k in initial):
        raise GradingError(
            "kd_step did not change the student's weights: is its forward pass under torch.no_grad(), "
            "or is optimizer.step() missing?"
        )
    expected = {k: torch.tensor(v) for k, v in case["expected_student"].items()}
    for name, value in expected.items():
        if not torch.allclose(now[name].detach().cpu().double(), value.double(), rtol=1e-4, atol=1e-5):
            raise GradingError(
                f"kd_step: after one SGD step the student's {name} differs from the expected one. The update "
                "must follow the combined loss alpha * L + (1 - alpha) * L_D of the student's logits against the "
                "teacher's: check that the gradients are zeroed (optimizer.zero_grad()) and the step taken once"
            )
    loss = result.get("loss") if isinstance(result, dict) else result
    value = to_number(loss, "kd_step's returned loss")
    if abs(value - case["expected_loss"]) > 1e-4 * max(1.0, abs(case["expected_loss"])):
        raise GradingError(
            f"kd_step returned loss {value:.6g}, expected {case['expected_loss']:.6g}: "
            "return the combined loss of this batch (before the step)"
        )
