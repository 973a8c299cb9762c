"""Harnesses of notebook 03 (finding a lottery ticket): how the hidden tests call the student's functions
and what they observe. The trusted side (``compresslib.grading``) decides what is right.

* ``magnitude_mask`` and ``prune_remaining`` are called on fresh copies of the hidden weights (and
  previous mask); observed: the masks they return, and whether the weights or the previous mask were
  modified. ``prune_remaining`` runs with ``magnitude_mask`` replaced by its stand-in.
* ``apply_mask`` is called on a small MLP (observed: its parameters afterwards, whether they are the
  same objects, whether the mask was modified); ``train_with_mask`` trains a fresh copy with a given
  optimizer (sometimes already holding momentum from earlier steps) over several batches. The model
  records, at every forward pass, its mode and how many masked-out weights were non-zero; the
  optimizer counts its steps.
* ``imp_round`` gets a model, its θ0, a mask, a fraction and a ``train`` that records how it is called
  and leaves the model at recorded "trained" weights. Observed: the new mask, the model's state after
  the round, the calls to ``train`` and whether θ0 or the mask were modified. ``prune_remaining``,
  ``magnitude_mask`` and ``apply_mask`` are replaced by their stand-ins.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from compresslib.capture import harness, observe, student_function
from compresslib.capture.plain import from_input, to_plain
from compresslib.capture.stand_ins import stand_ins

ASSIGNMENT = "03_lottery_tickets"


def fresh(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.clone() for name, t in tensors.items()}


def changed(before: Mapping[str, torch.Tensor], after: Mapping) -> list[str]:
    """Names whose tensor in ``after`` no longer equals (values and dtype) the one in ``before``; a
    name dropped from or added to ``after`` counts too."""
    names = [n for n in before if n not in after or not isinstance(after[n], torch.Tensor)
             or after[n].dtype != before[n].dtype or not torch.equal(after[n].detach(), before[n])]
    return names + [str(n) for n in after if n not in before]


# --- magnitude_mask, prune_remaining ----------------------------------------------------------------


@harness(ASSIGNMENT, "test_magnitude_mask")
def magnitude_mask(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "magnitude_mask")
    weights = from_input(inputs["weights"])
    given = fresh(weights)
    observed = observe(function, given, inputs["sparsity"])
    observed["weights_changed"] = changed(weights, given)
    return observed


@harness(ASSIGNMENT, "test_prune_remaining")
def prune_remaining(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "prune_remaining")
    weights, previous = from_input(inputs["weights"]), from_input(inputs["previous"])
    given_weights, given_previous = fresh(weights), fresh(previous)
    with stand_ins(namespace, inputs.get("stand_ins", {})):
        observed = observe(function, given_weights, inputs["fraction"], given_previous)
    observed["weights_changed"] = changed(weights, given_weights)
    observed["previous_changed"] = changed(previous, given_previous)
    return observed


# --- apply_mask, train_with_mask ----------------------------------------------------------------------


class ProbeMLP(nn.Sequential):
    """Linear layers of ``sizes`` with ReLUs between them (parameters named ``0.weight``, ``0.bias``,
    ``2.weight``, ...). At every forward pass it records its mode and how many weights that ``watched``
    (a mask) prunes are non-zero."""

    def __init__(self, sizes: list[int]):
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(n_in, n_out))
        super().__init__(*layers)
        self.forwards: list[list] = []
        self.watched: dict[str, torch.Tensor] = {}

    def forward(self, x):
        params = dict(self.named_parameters())
        nonzero = sum(int(((params[n].detach() != 0) & (m == 0)).sum()) for n, m in self.watched.items())
        self.forwards.append([self.training, nonzero])
        return super().forward(x)


def probe_model(inputs: Mapping) -> ProbeMLP:
    model = ProbeMLP(inputs["sizes"])
    model.load_state_dict(from_input(inputs["state"]))
    return model


def state_of(model: nn.Module) -> dict:
    return to_plain({k: v for k, v in model.state_dict().items()})


def make_optimizer(spec: Mapping, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer the hidden test hands over: ``{"name": "AdamW" | "SGD", hyperparameters...,
    "state": {parameter name: {buffer: tensor}}}`` (a state: momentum left by earlier steps)."""
    settings = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k not in ("name", "state")}
    optimizer = {"AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}[spec["name"]](model.parameters(), **settings)
    params = dict(model.named_parameters())
    for name, buffers in spec.get("state", {}).items():
        state = {key: from_input(value) for key, value in buffers.items() if key != "step"}
        if "step" in buffers:
            state["step"] = torch.tensor(float(buffers["step"]))
        optimizer.state[params[name]] = state
    return optimizer


def observe_apply_mask(function, inputs: Mapping, mask: Mapping) -> dict:
    model = probe_model(inputs).train()
    before = dict(model.named_parameters())
    given = fresh(mask)
    observed = observe(function, model, given)
    observed.pop("value", None)
    observed["state"] = state_of(model)
    observed["parameters_replaced"] = [n for n, p in model.named_parameters() if before.get(n) is not p]
    observed["mask_changed"] = changed(mask, given)
    return observed


@harness(ASSIGNMENT, "test_train_with_mask")
def train_with_mask(inputs: Mapping, namespace) -> dict:
    """``apply_mask`` on its own, then ``train_with_mask`` on a model left in eval mode."""
    apply_mask = student_function(namespace, "apply_mask")
    function = student_function(namespace, "train_with_mask")
    mask = from_input(inputs["mask"])
    applied = observe_apply_mask(apply_mask, inputs, mask)

    model = probe_model(inputs).eval()  # a correct train_with_mask trains in train mode
    model.watched = fresh(mask)
    optimizer = make_optimizer(inputs["optimizer"], model)
    steps: list[int] = []
    optimizer.register_step_post_hook(lambda *_: steps.append(1))
    batches = [(from_input(b["x"]), from_input(b["y"])) for b in inputs["batches"]]
    given = fresh(mask)
    trained = observe(function, model, given, optimizer, batches)
    trained.pop("value", None)
    trained.update(forwards=model.forwards, steps=len(steps), state=state_of(model), mask_changed=changed(mask, given))
    return {"status": "ok", "apply_mask": applied, "train": trained}


# --- imp_round ---------------------------------------------------------------------------------------


class RecordingTrain:
    """The ``train(model, mask)`` the hidden test hands to ``imp_round``: it records how it was called
    (the mask it got, whether the model is the one imp_round was given and still at its starting
    weights) and leaves the model's parameters at the recorded ``trained`` values (in place)."""

    def __init__(self, model: nn.Module, start: Mapping[str, torch.Tensor], trained: Mapping[str, torch.Tensor]):
        self.model, self.start, self.trained = model, start, trained
        self.calls: list[dict] = []

    def __call__(self, model, mask, *args, **kwargs):
        self.calls.append({
            "mask": to_plain(dict(mask)) if isinstance(mask, Mapping) else to_plain(mask),
            "same_model": model is self.model,
            "at_start": isinstance(model, nn.Module) and not changed(self.start, model.state_dict()),
        })
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(self.trained[name])
        return model


@harness(ASSIGNMENT, "test_imp_round")
def imp_round(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "imp_round")
    model = probe_model({"sizes": inputs["sizes"], "state": inputs["start"]})
    start = fresh(model.state_dict())
    theta0, mask = from_input(inputs["theta0"]), from_input(inputs["mask"])
    given_theta0, given_mask = fresh(theta0), fresh(mask)
    train = RecordingTrain(model, start, from_input(inputs["trained"]))
    with stand_ins(namespace, inputs.get("stand_ins", {})):
        observed = observe(function, model, given_theta0, given_mask, inputs["fraction"], train)
    observed.update(train_calls=train.calls, state=state_of(model), theta0_changed=changed(theta0, given_theta0),
                    mask_changed=changed(mask, given_mask))
    return observed
