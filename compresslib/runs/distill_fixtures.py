"""Fixtures that notebook 02 (building and distilling a student) is graded against.

``python -m compresslib.runs distill --fixtures-only`` (a few seconds, deterministic on CPU).

The setting is tiny and stored whole in the JSON, so a grader rebuilds it exactly on any machine and any
torch version: a 4-layer BERT teacher (width 8) whose weights are in the file, a fixed batch of 4 sequences,
and the expected values of

(a) the layer-copying initialisation (``layers = [0, 2]``, one out of two): the student's logits and the
    sum of each of its tensors, plus the values that identify the catalogued wrong answers;
(b) one distillation step (``T = 2``, ``alpha = 0.5``, SGD with ``lr = 0.1``, the student's dropout
    switched off so the step is deterministic, the teacher with dropout ``p = 0.1``): the loss and its
    parts, the student's logits after the step, plus the wrong answers' values;
(c) the layer choice ``every_other_layers(L)`` for a few even teacher depths ``L``: one layer out of two,
    from layer 0, plus the first-``L/2``-layers and odd-layers mistakes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

TEACHER_CONFIG = dict(vocab_size=32, hidden_size=8, num_hidden_layers=4, num_attention_heads=2, intermediate_size=16,
                      max_position_embeddings=16, type_vocab_size=2, num_labels=2, hidden_dropout_prob=0.1,
                      attention_probs_dropout_prob=0.1, attn_implementation="eager")
INPUT_IDS = [[2, 7, 11, 5, 19, 3, 0, 0], [2, 23, 4, 9, 14, 30, 8, 3], [2, 6, 6, 17, 3, 0, 0, 0],
             [2, 12, 27, 21, 10, 16, 3, 0]]
LABELS = [1, 0, 1, 0]
EVERY_OTHER_DEPTHS = (4, 6, 8, 12)
STEP = dict(temperature=2.0, alpha=0.5, lr=0.1, teacher_train_mode_seed=1234)
COMMAND = "python -m compresslib.runs distill --fixtures-only"


def _attention_mask():
    ids = torch.tensor(INPUT_IDS)
    mask = (ids != 0).long()
    mask[:, 0] = 1
    return mask


def build_teacher(state: dict | None = None):
    """The tiny teacher: from ``state`` (name -> nested lists) when given, else freshly from seed 0."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    teacher = BertForSequenceClassification(BertConfig(**TEACHER_CONFIG))
    if state is not None:
        teacher.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()}, strict=False)
    else:
        with torch.no_grad():  # larger weights than BERT's 0.02 init so that layers visibly differ
            for name, p in teacher.named_parameters():
                if p.dim() > 1:
                    p.normal_(0.0, 0.4)
    return teacher.eval()


def _inputs():
    return {"input_ids": torch.tensor(INPUT_IDS), "attention_mask": _attention_mask()}


def _logits(model):
    model.eval()
    with torch.no_grad():
        return model(**_inputs()).logits


def _sums(model) -> dict[str, float]:
    return {k: float(v.double().sum()) for k, v in model.state_dict().items() if v.is_floating_point()}


def _no_dropout(model):
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def _kd_step(teacher, student, *, teacher_train=False, detach_teacher=True, scale_t2=True):
    """One step written out plainly (independent of compresslib.distill.step), with switches for the mistakes."""
    import torch.nn.functional as F

    t, alpha = STEP["temperature"], STEP["alpha"]
    optimizer = torch.optim.SGD(student.parameters(), lr=STEP["lr"])
    labels = torch.tensor(LABELS)
    teacher.train(teacher_train)
    if teacher_train:
        torch.manual_seed(STEP["teacher_train_mode_seed"])
    if detach_teacher:
        with torch.no_grad():
            teacher_logits = teacher(**_inputs()).logits
    else:
        teacher_logits = teacher(**_inputs()).logits
    student.train()
    student_logits = student(**_inputs()).logits
    soft = -(F.softmax(teacher_logits / t, -1) * F.log_softmax(student_logits / t, -1)).sum(-1).mean()
    soft = soft * t**2 if scale_t2 else soft
    hard = F.cross_entropy(student_logits, labels)
    loss = alpha * hard + (1 - alpha) * soft
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    teacher.eval()
    grads = [p.grad for p in teacher.parameters() if p.grad is not None]
    teacher_grad_norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))) if grads else 0.0
    return dict(loss=loss.item(), hard=hard.item(), soft=soft.item(), teacher_logits=teacher_logits.tolist(),
                logits_after=_logits(student).tolist(), teacher_grad_norm=teacher_grad_norm)


def make_fixtures() -> dict:
    import transformers

    from compresslib.distill.student import init_student_from_teacher

    teacher = build_teacher()
    state = {k: v.tolist() for k, v in teacher.state_dict().items() if v.is_floating_point()}
    teacher = build_teacher(state)  # what a grader rebuilds from the file
    student = init_student_from_teacher(teacher, [0, 2])
    first_k = init_student_from_teacher(teacher, [0, 1])
    no_embeddings = init_student_from_teacher(teacher, [0, 2])
    torch.manual_seed(0)
    no_embeddings.bert.embeddings.word_embeddings.weight.data.normal_(0.0, 0.02)

    # sharing instead of copying: one SGD step on a student whose tensors are the teacher's changes the teacher
    shared = build_teacher(state)
    shared.bert.encoder.layer = nn.ModuleList([shared.bert.encoder.layer[i] for i in (0, 2)])
    shared.config.num_hidden_layers = 2
    shared_teacher = build_teacher(state)
    shared_teacher.bert.embeddings = shared.bert.embeddings
    for i, t in enumerate((0, 2)):
        shared_teacher.bert.encoder.layer[t] = shared.bert.encoder.layer[i]
    shared_teacher.bert.pooler, shared_teacher.classifier = shared.bert.pooler, shared.classifier
    _kd_step(build_teacher(state), _no_dropout(shared))
    teacher_after_shared_step = _logits(shared_teacher)

    correct = _kd_step(teacher, _no_dropout(init_student_from_teacher(teacher, [0, 2])))
    assert torch.equal(_logits(teacher), _logits(build_teacher(state))), "the teacher changed during a correct step"
    every_other = {"cases": [
        {"num_teacher_layers": depth, "expected": list(range(0, depth, 2)),
         "wrong": {"first_k": list(range(depth // 2)), "odd_layers": list(range(1, depth, 2))}}
        for depth in EVERY_OTHER_DEPTHS]}
    return {
        "about": __doc__.strip(),
        "provenance": {
            "command": COMMAND,
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "transformers": transformers.__version__},
            "device": "cpu",
        },
        "setting": {
            "teacher_class": "BertForSequenceClassification",
            "teacher_config": TEACHER_CONFIG,
            "teacher_state_dict": state,
            "input_ids": INPUT_IDS,
            "attention_mask": _attention_mask().tolist(),
            "labels": LABELS,
            "student_layers": [0, 2],
            "step": {**STEP, "optimizer": "SGD(student.parameters(), lr) without momentum",
                     "student_dropout": "off (every nn.Dropout p = 0), so the step is deterministic",
                     "teacher": "eval mode under torch.no_grad()"},
        },
        "tolerance": {"atol": 1e-4, "rtol": 1e-4},
        "init": {
            "teacher_logits": _logits(teacher).tolist(),
            "student_logits": _logits(student).tolist(),
            "student_tensor_sums": _sums(student),
            "teacher_tensor_sums": _sums(teacher),
            "wrong_answers": {
                "first_k_layers": {"what": "copied layers [0, 1] instead of [0, 2] (one out of two)",
                                   "student_logits": _logits(first_k).tolist()},
                "forgot_embeddings": {
                    "what": "embeddings left at their random initialisation; identified by the embeddings' tensor "
                            "sums differing from teacher_tensor_sums (the logits depend on the random init)",
                    "example_student_logits_seed0": _logits(no_embeddings).tolist()},
                "shared_not_copied": {
                    "what": "student modules are the teacher's (no copy): one distillation step on the student "
                            "then changes the teacher, whose logits become these (expected: unchanged "
                            "init.teacher_logits); also data_ptr of a student tensor equals the teacher's",
                    "teacher_logits_after_student_step": teacher_after_shared_step.tolist()},
            },
        },
        "every_other_layers": every_other,
        "kd_step": {
            "loss": correct["loss"], "hard": correct["hard"], "soft": correct["soft"],
            "student_logits_after_step": correct["logits_after"],
            "teacher_logits": correct["teacher_logits"],
            "wrong_answers": {
                "teacher_train_mode": {
                    "what": "teacher left in train mode (dropout on): its logits change from call to call; with "
                            "torch.manual_seed(teacher_train_mode_seed) just before the teacher's forward they "
                            "are these (the correct ones are kd_step.teacher_logits)",
                    **{k: v for k, v in _kd_step(teacher, _no_dropout(init_student_from_teacher(teacher, [0, 2])),
                                                 teacher_train=True).items()
                       if k in ("loss", "soft", "teacher_logits")}},
                "teacher_grads_enabled": {
                    "what": "teacher forward outside torch.no_grad() and its logits not detached: the teacher's "
                            "parameters get gradients of this total norm (expected: no .grad at all)",
                    "teacher_grad_norm": _kd_step(build_teacher(state),
                                                  _no_dropout(init_student_from_teacher(teacher, [0, 2])),
                                                  detach_teacher=False)["teacher_grad_norm"]},
                "no_t2": {"what": "soft loss not multiplied by T^2",
                          **{k: v for k, v in _kd_step(teacher, _no_dropout(init_student_from_teacher(teacher, [0, 2])),
                                                       scale_t2=False).items() if k in ("loss", "soft")}},
                "student_under_no_grad": {"what": "both forwards under torch.no_grad() (the lecture's bug): the "
                                                  "student does not change; its logits stay init.student_logits",
                                          "student_logits_after_step": _logits(student).tolist()},
            },
        },
    }


def write_fixtures(path: Path) -> dict:
    from compresslib.runs.common import write_json

    fixtures = make_fixtures()
    write_json(Path(path), fixtures)
    Path(path).chmod(0o644)
    return fixtures
