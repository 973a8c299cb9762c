"""Harnesses of notebook 01 (soft targets): how the hidden tests call the student's functions and what
they observe. The trusted side (``compresslib.grading``) decides what is right.

Each function is called on fresh copies of the hidden inputs, once for its value (are the inputs left
unchanged?) and once with gradients on (does autograd reach the logits?). ``kd_step`` is called twice
in a row on tiny models, recording the modes and gradients it leaves behind.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from compresslib.capture import harness, observe, student_function
from compresslib.capture.plain import from_input, to_plain
from compresslib.capture.stand_ins import stand_ins

ASSIGNMENT = "01_soft_targets"


def gradient_of(function, x: torch.Tensor, args=(), kwargs=None, weights: torch.Tensor | None = None) -> dict:
    """The gradient of ``sum(weights * function(x, *args, **kwargs))`` with respect to ``x``, as observed."""
    x = x.detach().clone().requires_grad_()
    try:
        out = function(x, *args, **(kwargs or {}))
        if not isinstance(out, torch.Tensor):
            return {"status": "not_a_tensor"}
        if not out.requires_grad:
            return {"status": "no_graph"}
        objective = (out * weights).sum() if weights is not None else out.sum()
        objective.backward()
    except NotImplementedError as error:
        return {"status": "not_implemented", "error": str(error)[:500]}
    except Exception as error:
        return {"status": "raised", "error": f"{type(error).__name__}: {error}"[:1000]}
    if x.grad is None:
        return {"status": "no_gradient"}
    return {"status": "ok", "value": to_plain(x.grad)}


def value_and_gradient(function, inputs: Mapping, names: list[str], wrt: str, kwargs=None) -> dict:
    """Call ``function`` on the inputs ``names`` (positionally) for its value, checking that no input
    is modified, then again for its gradient with respect to ``wrt``."""
    args = [from_input(inputs[n]) for n in names]
    copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    observed = observe(function, *copies, **(kwargs or {}))
    observed["inputs_changed"] = [n for n, a, c in zip(names, args, copies)
                                  if isinstance(a, torch.Tensor) and not torch.equal(a, c)]
    position = names.index(wrt)
    weights = from_input(inputs["weights"]) if "weights" in inputs else None
    observed["gradient"] = gradient_of(
        lambda x: function(*args[:position], x, *args[position + 1:], **(kwargs or {})),
        args[position], weights=weights,
    )
    return observed


@harness(ASSIGNMENT, "test_softmax_with_temperature")
def softmax_with_temperature(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "softmax_with_temperature")
    return value_and_gradient(function, inputs, ["logits", "temperature"], "logits", {"dim": inputs["dim"]})


@harness(ASSIGNMENT, "test_distillation_loss")
def distillation_loss(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "distillation_loss")
    with stand_ins(namespace, inputs.get("stand_ins", {})):
        return value_and_gradient(function, inputs, ["student_logits", "teacher_logits", "temperature"],
                                  "student_logits")


@harness(ASSIGNMENT, "test_combined_loss")
def combined_loss(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "combined_loss")
    with stand_ins(namespace, inputs.get("stand_ins", {})):
        return value_and_gradient(
            function, inputs, ["student_logits", "teacher_logits", "labels", "alpha", "temperature"], "student_logits"
        )


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
    """A linear student: its logits are ``features @ weight.T + bias``."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(6, 4)

    def forward(self, features):
        return self.out(features)


def load_state(model: nn.Module, state: Mapping) -> nn.Module:
    model.load_state_dict({k: from_input(v) for k, v in state.items()})
    return model


def _state(model: nn.Module) -> dict:
    return {k: to_plain(v) for k, v in model.state_dict().items()}


@harness(ASSIGNMENT, "test_kd_step")
def kd_step(inputs: Mapping, namespace) -> dict:
    """Two calls of ``kd_step`` in a row with one SGD optimizer, from recorded weights. Observed after
    each call: what it returned, how the teacher was called (mode, autograd), whether the teacher got
    gradients or changed, the student's mode and weights."""
    function = student_function(namespace, "kd_step")
    teacher = load_state(ProbeTeacher(), inputs["teacher_state"]).train()  # a correct kd_step calls eval()
    student = load_state(ProbeStudent(), inputs["student_state"]).eval()  # ... and student.train()
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimizer = torch.optim.SGD(student.parameters(), lr=inputs["lr"])
    features, labels = from_input(inputs["features"]), from_input(inputs["labels"])
    steps = []
    with stand_ins(namespace, inputs.get("stand_ins", {})):
        for _ in range(inputs["calls"]):
            teacher.calls.clear()
            batch = {"features": features.clone(), "labels": labels.clone()}
            observed = observe(function, teacher, student, batch, optimizer,
                               temperature=inputs["temperature"], alpha=inputs["alpha"])
            observed.update(
                teacher_calls=[list(call) for call in teacher.calls],
                teacher_has_gradients=any(p.grad is not None for p in teacher.parameters()),
                teacher_changed=any(not torch.equal(teacher.state_dict()[k], v) for k, v in teacher_before.items()),
                student_training=student.training,
                student_state=_state(student),
            )
            steps.append(observed)
            if observed["status"] != "ok":
                break
    return {"status": steps[-1]["status"] if steps[-1]["status"] != "ok" else "ok", "steps": steps,
            **({"error": steps[-1]["error"]} if "error" in steps[-1] else {})}
