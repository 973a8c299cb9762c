"""Record the fixture of notebook 02 (a half-depth BERT student): hidden inputs, expected outputs,
catalogued wrong outputs.

The setting is tiny and stored whole, so a grader rebuilds it exactly on any machine: BERTs of width 8
(``BertForSequenceClassification``) whose every tensor is drawn at random, LayerNorm and biases included,
so that no two tensors of a teacher are equal and a copied tensor names its source.

Expected values are computed without the library's reference answers (``select_layers``,
``init_student_from_teacher``, ``kd_step``, ``combined_loss``):

* the layer choice is ``range(0, L, 2)``: one layer out of two from layer 0, ``ceil(L / 2)`` layers, so an
  odd-depth teacher keeps its top layer too;
* the student is built by *renaming* the teacher's state-dict keys (teacher layer ``layers[i]`` becomes
  layer ``i``) and loading them into a fresh model of the student's config; its logits are recorded;
* the teacher's logits are its forward pass in eval mode under ``torch.no_grad()``;
* a distillation step takes the student's logits ``z`` from its forward pass, the loss and ``dL/dz`` from
  the lecture's closed forms in NumPy float64 (:mod:`compresslib.grading.closed_forms`), and lets
  autograd carry ``dL/dz`` back through the BERT (``z.backward(dL/dz)``) before the optimizer step.
"""

from __future__ import annotations

import numpy as np
import torch

from compresslib.capture.distilbert_student import (
    build_bert,
    config_values,
    fingerprints,
    make_optimizer,
    one_thread,
)
from compresslib.capture.plain import input_of
from compresslib.grading import closed_forms as cf

ASSIGNMENT = "02_distilbert_student"
NOTE = ("tiny random BERTs stored whole; the student by renaming the teacher's keys; distill_step: the loss and "
        "dL/dz in NumPy closed forms, backpropagated through the BERT by autograd, two optimizer steps")

WIDTH = dict(vocab_size=32, hidden_size=8, num_attention_heads=2, intermediate_size=16, max_position_embeddings=16,
             type_vocab_size=2, attn_implementation="eager")
EVERY_OTHER_DEPTHS = (6, 5, 12, 1, 2, 3, 4, 7)  # the first failing depth names the mistake: 6 and 5 tell them apart
IDS_A = [[2, 7, 11, 5, 19, 3, 0, 0], [2, 23, 4, 9, 14, 30, 8, 3], [2, 6, 6, 17, 3, 0, 0, 0],
         [2, 12, 27, 21, 10, 16, 3, 0]]
LABELS_A = [1, 0, 1, 0]
IDS_B = [[2, 9, 26, 3, 0, 0], [2, 14, 3, 8, 22, 3], [2, 31, 5, 3, 0, 0]]
TYPES_B = [[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]]
LABELS_B = [2, 0, 1]


# --- the tiny BERTs -----------------------------------------------------------------------------------------


def random_bert_spec(depth: int, num_labels: int, seed: int, dropout: float = 0.1) -> dict:
    """A hidden input ``{"config", "state"}``: a BERT whose tensors are all random and pairwise different."""
    from transformers import BertConfig, BertForSequenceClassification

    config = {**WIDTH, "num_hidden_layers": depth, "num_labels": num_labels, "hidden_dropout_prob": dropout,
              "attention_probs_dropout_prob": dropout}
    torch.manual_seed(seed)
    model = BertForSequenceClassification(BertConfig(**config))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            p.copy_(1.0 + 0.1 * noise if name.endswith("LayerNorm.weight") else (0.4 if p.dim() > 1 else 0.1) * noise)
    # four decimals: a short fixture; the model is whatever float32 makes of them, on both sides
    spec = {"config": config, "state": {"mapping": {k: {"tensor": np.round(v.double().numpy(), 4).tolist(),
                                                        "dtype": "float32"} for k, v in model.state_dict().items()}}}
    tensors = list(build_bert(spec).state_dict().items())
    for i, (a, x) in enumerate(tensors):
        for b, y in tensors[i + 1:]:
            assert x.shape != y.shape or not torch.equal(x, y), f"{a} equals {b}: the recorded teacher must not repeat a tensor"
    return spec


def batch_a(labels: bool = True) -> dict:
    ids = torch.tensor(IDS_A)
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    return {**batch, "labels": torch.tensor(LABELS_A)} if labels else batch


def batch_b(labels: bool = True) -> dict:
    ids = torch.tensor(IDS_B)
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.tensor(TYPES_B)}
    return {**batch, "labels": torch.tensor(LABELS_B)} if labels else batch


def model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("labels", "teacher_logits")}


def logits(model, batch: dict, *, train: bool = False, seed: int | None = None) -> np.ndarray:
    model.train(train)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        return model(**model_inputs(batch)).logits.double().numpy()


# --- every_other_layers --------------------------------------------------------------------------------------


def _every_other_cases() -> list[dict]:
    cases = []
    for depth in EVERY_OTHER_DEPTHS:
        expected = list(range(0, depth, 2))
        wrong = {
            "count": depth // 2,
            "first_k": list(range(depth // 2)),
            "odd_layers": list(range(1, depth, 2)),
            "reversed": expected[::-1],
            "floor_half": list(range(0, 2 * (depth // 2), 2)),
            "one_indexed": list(range(2, depth + 1, 2)),
            "top_half": list(range(depth - depth // 2, depth)),
            "fixed_list": [0, 2, 4],
        }
        cases.append({"inputs": {"num_teacher_layers": depth}, "expected": {"indices": expected},
                      "wrong": {k: v for k, v in wrong.items() if v != expected}})
    return cases


# --- make_student -------------------------------------------------------------------------------------------


def renamed_sources(student_keys, layers) -> dict[str, str]:
    """Student key -> the teacher key it copies: ``bert.encoder.layer.{i}.X`` <- ``bert.encoder.layer.{layers[i]}.X``,
    every other key from the same name."""
    sources = {}
    for key in student_keys:
        source = key
        if key.startswith("bert.encoder.layer."):
            index, rest = key.removeprefix("bert.encoder.layer.").split(".", 1)
            source = f"bert.encoder.layer.{layers[int(index)]}.{rest}"
        sources[key] = source
    return sources


def renamed_student(teacher_spec: dict, layers) -> tuple[object, dict]:
    """The expected student and its config: a fresh model of the teacher's config with
    ``num_hidden_layers = len(layers)``, loaded with the teacher's tensors under renamed keys (no library call)."""
    from transformers import BertConfig, BertForSequenceClassification

    config = {**teacher_spec["config"], "num_hidden_layers": len(layers)}
    teacher_state = build_bert(teacher_spec).state_dict()
    student = BertForSequenceClassification(BertConfig(**config))
    sources = renamed_sources(student.state_dict().keys(), layers)
    student.load_state_dict({key: teacher_state[source] for key, source in sources.items()}, strict=True)
    return student, config


def _make_student_case(depth: int, num_labels: int, seed: int, layers: list[int]) -> dict:
    from transformers import BertConfig

    teacher_spec = random_bert_spec(depth, num_labels, seed)
    teacher = build_bert(teacher_spec)
    student, config = renamed_student(teacher_spec, layers)
    keys = sorted(teacher_spec["config"])
    inputs = {"teacher": teacher_spec, "layers": layers, "batch": input_of(batch_a(labels=False))}
    wrong_layers = {"first_k": list(range(len(layers))), "reversed": layers[::-1],
                    "every_other": list(range(0, depth, 2))}
    return {
        "inputs": inputs,
        "expected": {
            "depth": len(layers),
            "layers": layers,
            "config": config_values(BertConfig(**config), keys),
            "teacher_config": config_values(teacher.config, keys),
            "sources": renamed_sources(student.state_dict().keys(), layers),
            "logits": logits(student, batch_a()).tolist(),
        },
        "wrong": {k: {"layers": v} for k, v in wrong_layers.items() if v != layers},
    }


def _make_student_cases() -> list[dict]:
    return [_make_student_case(4, 2, 11, [0, 2]), _make_student_case(6, 3, 12, [0, 2, 4]),
            _make_student_case(5, 2, 13, [0, 2, 4]), _make_student_case(4, 2, 14, [1, 3])]


# --- teacher_logits -----------------------------------------------------------------------------------------


def _teacher_logits_case(depth, num_labels, seed, batch, seeds, stale=None) -> dict:
    spec = random_bert_spec(depth, num_labels, seed)
    teacher = build_bert(spec)
    expected = logits(teacher, batch)
    given = {**batch, **({"teacher_logits": torch.tensor(stale, dtype=torch.float32)} if stale is not None else {})}
    return {
        "inputs": {"teacher": spec, "batch": input_of(given), "seeds": seeds},
        "expected": {"logits": expected.tolist()},
        "wrong": {
            "train_mode": logits(teacher, batch, train=True, seed=seeds[0]).tolist(),
            "probabilities": cf.softmax(expected).tolist(),
            "no_attention_mask": logits(teacher, {"input_ids": batch["input_ids"]}).tolist(),
        },
    }


def _teacher_logits_cases(rng) -> list[dict]:
    stale = (rng.normal(size=(len(IDS_B), 3)) * 2).astype(np.float32)
    return [_teacher_logits_case(4, 2, 21, batch_a(), [101, 202]),
            _teacher_logits_case(6, 3, 22, batch_b(), [303, 404], stale=stale.tolist())]


# --- distill_step -------------------------------------------------------------------------------------------


def loss_and_gradient(z, v, y, alpha: float, T: float, mistake: str | None = None) -> tuple[float, np.ndarray]:
    """L_C and dL_C/dz (closed forms, float64), or the loss and gradient of a catalogued mistake."""
    n = len(z)
    if mistake == "alpha_complement":
        alpha = 1 - alpha
    if mistake in (None, "alpha_complement", "no_zero_grad"):
        return cf.combined_loss(z, v, y, alpha, T), cf.combined_gradient(z, v, y, alpha, T)
    if mistake == "no_t2":
        loss = alpha * cf.hard_loss(z, y) + (1 - alpha) * cf.distillation_loss(z, v, T) / T**2
        return loss, alpha * cf.hard_gradient(z, y) + (1 - alpha) * cf.distillation_gradient(z, v, T) / T**2
    if mistake == "hard_only":
        return cf.hard_loss(z, y), cf.hard_gradient(z, y)
    if mistake == "logits_swapped":  # combined_loss(teacher_logits, student_logits, ...): z is the target
        log_p = cf.log_softmax(v / T)
        loss = alpha * cf.hard_loss(v, y) + (1 - alpha) * T**2 * cf.cross_entropy(cf.softmax(z / T), log_p)
        return loss, (1 - alpha) * T**2 / n * cf.softmax_vjp(z, T, -log_p)
    raise ValueError(f"unknown mistake {mistake!r}")


def two_steps(spec: dict, batch: dict, optimizer_spec: dict, T: float, alpha: float, calls: int,
              mistake: str | None = None) -> dict:
    """The losses and the student's weights after each of ``calls`` steps, with or without a mistake."""
    student = build_bert(spec)
    optimizer = make_optimizer(student, optimizer_spec)
    v, y = batch["teacher_logits"].double().numpy(), batch["labels"].numpy()
    steps = []
    for _ in range(calls):
        student.train()
        z = student(**model_inputs(batch)).logits
        loss, gradient = loss_and_gradient(z.detach().double().numpy(), v, y, alpha, T, mistake)
        if mistake != "no_zero_grad":
            optimizer.zero_grad()
        z.backward(torch.tensor(gradient, dtype=z.dtype))
        optimizer.step()
        steps.append({"loss": loss, "weights": fingerprints(student)})
    return {"initial": fingerprints(build_bert(spec)), "steps": steps}


def _distill_step_case(depth, num_labels, seed, batch, optimizer, T, alpha, rng) -> dict:
    spec = random_bert_spec(depth, num_labels, seed, dropout=0.0)  # no dropout: a deterministic step
    cached = torch.tensor(rng.normal(size=(len(batch["labels"]), num_labels)) * 2, dtype=torch.float32)
    batch = {**batch, "teacher_logits": cached}
    calls = 2
    correct = two_steps(spec, batch, optimizer, T, alpha, calls)
    mistakes = ("no_zero_grad", "no_t2", "alpha_complement", "logits_swapped", "hard_only")
    return {
        "inputs": {"student": spec, "batch": input_of(batch), "optimizer": optimizer, "temperature": T,
                   "alpha": alpha, "calls": calls},
        "expected": correct,
        "wrong": {m: {"steps": two_steps(spec, batch, optimizer, T, alpha, calls, m)["steps"]} for m in mistakes},
    }


def _distill_step_cases(rng) -> list[dict]:
    return [_distill_step_case(2, 2, 31, batch_a(), {"name": "SGD", "lr": 0.1}, 2.0, 0.3, rng),
            _distill_step_case(3, 3, 32, batch_b(), {"name": "SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, 4.0, 0.7, rng)]


def record() -> dict:
    rng = np.random.default_rng(2024)
    with one_thread():
        return _record(rng)


def _record(rng) -> dict:
    return {
        "note": NOTE,
        "tests": {
            "test_every_other_layers": {"cases": _every_other_cases()},
            "test_make_student": {"cases": _make_student_cases()},
            "test_teacher_logits": {"cases": _teacher_logits_cases(rng)},
            "test_distill_step": {"cases": _distill_step_cases(rng)},
        },
    }
