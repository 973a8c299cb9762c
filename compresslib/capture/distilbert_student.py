"""Harnesses of notebook 02 (a half-depth BERT student): how the hidden tests call the student's
functions and what they observe. The trusted side (``compresslib.grading``) decides what is right.

The hidden inputs carry tiny BERTs (``BertForSequenceClassification``, width 8) as a config and a state
dict; :func:`build_bert` rebuilds them here. What is observed:

* ``every_other_layers``: the layer indices it returns for one teacher depth, and their container type;
* ``make_student``: the model it returns (class, depth, config, mode, devices, logits on a batch), and,
  for each of the student's tensors, which of the teacher's tensors it equals and whether it *is* (shares
  storage with) one of them; whether the student shares modules or its config object with the teacher;
  and what became of the teacher (its config, its depth, its weights);
* ``teacher_logits``: two calls on a teacher handed over in train mode, each after a different random
  seed: the values, whether they carry a graph, how the teacher ran (dropout, autograd, the keywords it
  received), its mode afterwards, its gradients, and whether the batch dict was changed;
* ``distill_step``: two calls in a row with one optimizer, from recorded weights, without any teacher
  (the batch carries cached ``teacher_logits``): what each call returned, how the student ran, its mode
  afterwards, whether the batch changed, whether the notebook's other graded functions were called, and
  a checksum of every weight after each call (:func:`fingerprint`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Iterator, Mapping, MutableMapping

import numpy as np
import torch
from torch import nn

from compresslib.capture import harness as register
from compresslib.capture import observe, student_function
from compresslib.capture.plain import from_input, to_plain

ASSIGNMENT = "02_distilbert_student"
OPTIMIZERS = ("SGD",)  # Adam would turn the float noise of gradients that are zero in exact arithmetic
# (BERT's attention key biases) into full-size steps; SGD's step is linear in the gradient
OTHER_GRADED = ("every_other_layers", "make_student", "teacher_logits")
MAX_LAYERS = 1000


def harness(assignment: str, test: str):
    """Register a harness of this notebook, run on one torch thread (:func:`one_thread`)."""

    def decorate(function):
        @functools.wraps(function)
        def run(inputs, namespace):
            with one_thread():
                return function(inputs, namespace)

        return register(assignment, test)(run)

    return decorate


def build_bert(spec: Mapping) -> nn.Module:
    """The ``BertForSequenceClassification`` of a hidden input ``{"config": {...}, "state": {"mapping": ...}}``."""
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(**spec["config"]))
    model.load_state_dict(from_input(spec["state"]), strict=True)
    return model


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread while the block runs: the models here are tiny, and on a busy machine the
    threads of one matrix product wait for each other far longer than they compute (10x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fingerprint(tensor: torch.Tensor) -> list[float]:
    """Three float64 checksums of a tensor's values: ``[sum x_i, sum x_i^2, sum x_i * (1 + (i mod 7) / 7)]``
    (the last one changes when values move between positions)."""
    x = torch.Tensor.as_subclass(tensor, torch.Tensor).detach().cpu().double().reshape(-1)
    weights = 1.0 + (torch.arange(x.numel(), dtype=torch.float64) % 7) / 7
    return [float(x.sum()), float((x * x).sum()), float((x * weights).sum())]


def fingerprints(model: nn.Module) -> dict[str, list[float]]:
    return {name: fingerprint(t) for name, t in model.state_dict().items() if t.is_floating_point()}


def call(function, *args, **kwargs) -> tuple[dict, object]:
    """``observe(function, ...)`` plus the raw value it returned (None when it failed)."""
    kept = []

    def run():
        kept.append(function(*args, **kwargs))
        return kept[0]

    return observe(run), (kept[0] if kept else None)


class ForwardProbe:
    """Records every forward of a BERT: the keywords the model received, and, where the encoder ran, its
    mode, whether any dropout was active and whether autograd was on."""

    def __init__(self, model: nn.Module):
        self.dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0]
        self.records: list[dict] = []
        self.handles = [model.register_forward_pre_hook(self._model_called, with_kwargs=True)]
        inner = getattr(model, "bert", None)
        if isinstance(inner, nn.Module):
            self.handles.append(inner.register_forward_pre_hook(self._encoder_called, with_kwargs=True))

    def _model_called(self, module, args, kwargs):
        self.records.append({"model": True, "keywords": sorted(map(str, kwargs))[:50], "positional": len(args)})

    def _encoder_called(self, module, args, kwargs):
        self.records.append({"encoder": True, "training": module.training,
                             "dropout_active": any(m.training for m in self.dropouts),
                             "grad_enabled": torch.is_grad_enabled()})

    def take(self) -> list[dict]:
        taken, self.records = self.records[:200], []
        return taken

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@contextlib.contextmanager
def traced(namespace: MutableMapping, names) -> Iterator[list[str]]:
    """While the block runs, record the name of each of the notebook's functions ``names`` that is called
    (the call still goes to the student's own function)."""
    called: list[str] = []
    saved = {name: namespace.get(name) for name in names if callable(namespace.get(name))}

    def tracer(name, function):
        def traced_call(*args, **kwargs):
            called.append(name)
            return function(*args, **kwargs)

        return traced_call

    try:
        for name, function in saved.items():
            namespace[name] = tracer(name, function)
        yield called
    finally:
        namespace.update(saved)


def _snapshot(batch) -> dict:
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def batch_changes(batch, snapshot: Mapping) -> list[str]:
    """How a batch dict differs from its snapshot: keys removed, added, or whose tensor changed."""
    if not isinstance(batch, Mapping):
        return ["the batch is no longer a dict"]
    changes = [f"removed {k!r}" for k in snapshot if k not in batch]
    changes += [f"added {k!r}" for k in batch if k not in snapshot]
    for key, before in snapshot.items():
        after = batch.get(key)
        if isinstance(before, torch.Tensor) and key in batch and (
                not isinstance(after, torch.Tensor) or after.shape != before.shape or not torch.equal(after, before)):
            changes.append(f"changed {key!r}")
    return changes[:20]


def _storages(tensors) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in tensors if t.numel()}


def config_values(config, keys) -> dict:
    """The config's value of each of ``keys``, as plain data (None where it has none)."""
    return {key: to_plain(getattr(config, key, None)) for key in keys}


def int_list(value) -> list[int] | None:
    """The indices in ``value`` (a list, tuple, range, 1-D tensor, ...) as ints; None if it holds other things."""
    if isinstance(value, torch.Tensor | np.ndarray):
        value = value.tolist()
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        return None
    items = list(itertools.islice(value, MAX_LAYERS))
    if not all(isinstance(i, int | np.integer) and not isinstance(i, bool) for i in items):
        return None
    return [int(i) for i in items]


# --- every_other_layers ------------------------------------------------------------------------------------


@harness(ASSIGNMENT, "test_every_other_layers")
def every_other_layers(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "every_other_layers")
    observed, value = call(function, inputs["num_teacher_layers"])
    if observed["status"] == "ok":
        observed.update(kind=type(value).__name__, indices=int_list(value))
    return observed


# --- make_student -------------------------------------------------------------------------------------------


def _tensor_sources(student_state: Mapping, teacher_before: Mapping, teacher_storages: set[int]) -> dict:
    """For each of the student's tensors: its shape, the teacher tensors (before the call) it equals, and
    whether its storage is one of the teacher's."""
    by_shape: dict[tuple, list[tuple[str, torch.Tensor]]] = {}
    for name, tensor in teacher_before.items():
        by_shape.setdefault(tuple(tensor.shape), []).append((name, tensor.double()))
    report = {}
    for name, tensor in itertools.islice(student_state.items(), 2000):
        plain = torch.Tensor.as_subclass(tensor, torch.Tensor).detach()
        values = plain.cpu().double()
        report[name] = {
            "shape": list(plain.shape),
            "equals": [k for k, t in by_shape.get(tuple(plain.shape), []) if torch.equal(values, t)][:20],
            "shared": bool(plain.numel()) and plain.untyped_storage().data_ptr() in teacher_storages,
        }
    return report


def depth_of(model) -> int | None:
    """The number of layers in ``model.bert.encoder.layer`` (None when there is no such list)."""
    layers = getattr(getattr(getattr(model, "bert", None), "encoder", None), "layer", None)
    return len(layers) if isinstance(layers, nn.ModuleList) else None


def _student_report(student: nn.Module, teacher: nn.Module, teacher_before: Mapping, config_keys, batch) -> dict:
    teacher_modules = {id(m) for m in teacher.modules()}
    config = getattr(student, "config", None)
    report = {
        "class": type(student).__name__,
        "is_teacher": student is teacher,
        "shared_modules": [name or "(the model)" for name, m in student.named_modules() if id(m) in teacher_modules][:10],
        "config_is_teachers": config is teacher.config,
        "config": config_values(config, config_keys) if config is not None else None,
        "depth": depth_of(student),
        "training": student.training,
        "devices": sorted({str(t.device) for t in student.state_dict().values()}),
        "tensors": _tensor_sources(student.state_dict(), teacher_before,
                                   _storages([*teacher.parameters(), *teacher.buffers()])),
    }

    def forward():
        student.eval()
        with torch.no_grad():
            return student(**batch).logits

    report["forward"] = observe(forward)
    return report


@harness(ASSIGNMENT, "test_make_student")
def make_student(inputs: Mapping, namespace) -> dict:
    """``make_student(teacher, layers)`` on a teacher in eval mode; the student and the teacher afterwards."""
    function = student_function(namespace, "make_student")
    teacher = build_bert(inputs["teacher"]).eval()
    before = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
    config_keys = sorted(inputs["teacher"]["config"])
    observed, student = call(function, teacher, list(inputs["layers"]))
    after = teacher.state_dict()
    observed["teacher_after"] = {
        "class": type(teacher).__name__,
        "config": config_values(teacher.config, config_keys),
        "depth": depth_of(teacher),
        "changed": [k for k, v in before.items() if k not in after or not torch.equal(after[k].detach().cpu(), v)][:20],
        "devices": sorted({str(t.device) for t in after.values()}),
    }
    if observed["status"] == "ok" and isinstance(student, nn.Module):
        observed["student"] = _student_report(student, teacher, before, config_keys, from_input(inputs["batch"]))
    return observed


# --- teacher_logits -----------------------------------------------------------------------------------------


def _leaves_gradients(model: nn.Module) -> bool:
    return any(p.grad is not None for p in model.parameters())


@harness(ASSIGNMENT, "test_teacher_logits")
def teacher_logits(inputs: Mapping, namespace) -> dict:
    """Calls on a teacher handed over in train mode (dropout on), each after ``torch.manual_seed(seed)``."""
    function = student_function(namespace, "teacher_logits")
    teacher = build_bert(inputs["teacher"])
    before = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
    probe = ForwardProbe(teacher)
    calls = []
    try:
        for seed in inputs["seeds"]:
            teacher.train()
            batch = from_input(inputs["batch"])
            snapshot = _snapshot(batch)
            torch.manual_seed(seed)
            observed, value = call(function, teacher, batch)
            observed.update(
                kind=type(value).__name__,
                requires_grad=bool(getattr(value, "requires_grad", False)) if isinstance(value, torch.Tensor) else None,
                teacher_training_after=teacher.training,
                batch_changed=batch_changes(batch, snapshot),
                forwards=probe.take(),
            )
            calls.append(observed)
            if observed["status"] != "ok":
                break
    finally:
        probe.remove()
    now = teacher.state_dict()
    return {"status": calls[-1]["status"], **({"error": calls[-1]["error"]} if "error" in calls[-1] else {}),
            "calls": calls, "teacher_has_gradients": _leaves_gradients(teacher),
            "teacher_changed": any(not torch.equal(now[k], v) for k, v in before.items())}


# --- distill_step -------------------------------------------------------------------------------------------


def make_optimizer(model: nn.Module, spec: Mapping) -> torch.optim.Optimizer:
    """``{"name": "SGD", **keyword arguments}`` over the model's parameters."""
    name = spec["name"]
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is not one of {OPTIMIZERS}")
    return getattr(torch.optim, name)(model.parameters(), **{k: v for k, v in spec.items() if k != "name"})


@harness(ASSIGNMENT, "test_distill_step")
def distill_step(inputs: Mapping, namespace) -> dict:
    """Two calls of ``distill_step`` in a row with one optimizer, on a student handed over in eval mode
    (its dropout is off, so the step is deterministic) and a batch with cached ``teacher_logits``."""
    function = student_function(namespace, "distill_step")
    student = build_bert(inputs["student"]).eval()
    probe = ForwardProbe(student)
    optimizer = make_optimizer(student, inputs["optimizer"])
    steps = []
    try:
        with traced(namespace, OTHER_GRADED) as called:
            for _ in range(inputs["calls"]):
                batch = from_input(inputs["batch"])
                snapshot = _snapshot(batch)
                observed, value = call(function, student, batch, optimizer,
                                       temperature=inputs["temperature"], alpha=inputs["alpha"])
                observed.update(
                    kind=type(value).__name__,
                    forwards=probe.take(),
                    student_training_after=student.training,
                    batch_changed=batch_changes(batch, snapshot),
                    called=list(called),
                    weights=fingerprints(student),
                )
                called.clear()
                steps.append(observed)
                if observed["status"] != "ok":
                    break
    finally:
        probe.remove()
    last = steps[-1]
    return {"status": last["status"], **({"error": last["error"]} if "error" in last else {}), "steps": steps}
