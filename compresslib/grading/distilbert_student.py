"""Graded checks of notebook 02 (building and distilling a half-depth BERT student).

Every check rebuilds the tiny 4-layer BERT teacher stored in ``fixtures/02_distilbert_student.json``
(recorded by ``python -m compresslib.runs distill --fixtures-only``), calls the student's function on it,
and compares with the recorded values; it never calls compresslib's implementation of the function it
grades. Where a value alone cannot tell a mistake apart (dropout noise, a graph that should not exist,
tensors shared instead of copied), the check probes how the models were called or what they hold, and
the message names the mistake.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compresslib.grading.core import GradingError, call_student, error_hint, graded_alone, load_fixture, to_number

ASSIGNMENT = "02_distilbert_student"

EVERY_OTHER_MESSAGES = {
    "first_k": "these are the first k layers [0, 1, ..., k-1]: DistilBERT keeps one layer out of two, "
               "[0, 2, 4, ...], so the student spans the teacher's whole depth",
    "odd_layers": "these are the odd layers [1, 3, 5, ...]: start from the first layer, [0, 2, 4, ...]",
}


def _fixture() -> dict:
    return load_fixture(ASSIGNMENT)


def _tolerance() -> dict:
    return dict(_fixture()["tolerance"])


# --- the tiny teacher and its inputs, rebuilt from the fixture -------------------------------------------


def build_teacher() -> nn.Module:
    """The fixture's 4-layer BERT teacher (``BertForSequenceClassification``) in eval mode."""
    from transformers import BertConfig, BertForSequenceClassification

    setting = _fixture()["setting"]
    teacher = BertForSequenceClassification(BertConfig(**setting["teacher_config"]))
    state = {k: torch.tensor(v, dtype=torch.float32) for k, v in setting["teacher_state_dict"].items()}
    teacher.load_state_dict(state, strict=False)
    return teacher.eval()


def reference_student(teacher: nn.Module, layers) -> nn.Module:
    """The student the fixture expects, built here by renaming the teacher's tensors (layer ``layers[i]``
    becomes layer ``i``): what the graded ``distill_step`` starts from."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(**{**_fixture()["setting"]["teacher_config"], "num_hidden_layers": len(layers)})
    student = BertForSequenceClassification(config)
    state = {}
    for key in student.state_dict():
        source = key
        if key.startswith("bert.encoder.layer."):
            index, rest = key.removeprefix("bert.encoder.layer.").split(".", 1)
            source = f"bert.encoder.layer.{layers[int(index)]}.{rest}"
        state[key] = teacher.state_dict()[source].detach().clone()
    student.load_state_dict(state)
    return student


def batch(with_teacher_logits: bool = False) -> dict[str, torch.Tensor]:
    setting = _fixture()["setting"]
    out = {"input_ids": torch.tensor(setting["input_ids"]), "attention_mask": torch.tensor(setting["attention_mask"]),
           "labels": torch.tensor(setting["labels"])}
    if with_teacher_logits:
        out["teacher_logits"] = torch.tensor(_fixture()["kd_step"]["teacher_logits"])
    return out


def _logits(model: nn.Module) -> torch.Tensor:
    b = batch()
    model.eval()
    with torch.no_grad():
        out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    return (out.logits if hasattr(out, "logits") else out).detach().double()


def _close(a, b) -> bool:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return a.shape == b.shape and bool(torch.allclose(a, b, **_tolerance()))


class _Probe:
    """Records, at each forward of a model, whether it was in train mode and whether autograd was on."""

    def __init__(self, model: nn.Module):
        self.calls: list[tuple[bool, bool]] = []
        self.handle = model.register_forward_pre_hook(self._record)

    def _record(self, module, args):
        self.calls.append((module.training, torch.is_grad_enabled()))

    def remove(self):
        self.handle.remove()


def _no_dropout(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


# --- every_other_layers ------------------------------------------------------------------------------------


def _as_int_list(value, what: str) -> list[int]:
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    try:
        return [int(i) for i in value]
    except TypeError:
        raise GradingError(f"{what} should return a list of layer indices, got {type(value).__name__}") from None


def check_every_other_layers(fn) -> None:
    """The student's ``every_other_layers(num_teacher_layers)`` against the recorded layer choices."""
    for case in _fixture()["every_other_layers"]["cases"]:
        depth = case["num_teacher_layers"]
        what = f"every_other_layers({depth})"
        got = _as_int_list(call_student(fn, what, depth), what)
        if got == case["expected"]:
            continue
        for key, wrong in case["wrong"].items():
            if got == wrong:
                raise GradingError(f"{what} returned {got}: {EVERY_OTHER_MESSAGES[key]}")
        raise GradingError(f"{what} returned {got}, expected {case['expected']} (one layer out of two, from layer 0)")


# --- make_student -------------------------------------------------------------------------------------------


def _shared_tensors(student: nn.Module, teacher: nn.Module) -> list[str]:
    teacher_storage = {t.untyped_storage().data_ptr() for t in teacher.state_dict().values() if t.numel()}
    return [name for name, t in student.state_dict().items() if t.numel() and t.untyped_storage().data_ptr()
            in teacher_storage]


def _layers_of(student: nn.Module):
    try:
        return student.bert.encoder.layer
    except AttributeError:
        raise GradingError(
            "make_student should return a BertForSequenceClassification like the teacher (type(teacher)(config)), "
            f"with its layers in .bert.encoder.layer; got {type(student).__name__}"
        ) from None


def _which_teacher_layer(student_sums: dict, index: int, teacher_sums: dict, depth: int) -> int | None:
    prefix = f"bert.encoder.layer.{index}."
    mine = {k[len(prefix):]: v for k, v in student_sums.items() if k.startswith(prefix)}
    for j in range(depth):
        theirs = {k[len(f"bert.encoder.layer.{j}."):]: v for k, v in teacher_sums.items()
                  if k.startswith(f"bert.encoder.layer.{j}.")}
        if mine and all(abs(mine[k] - theirs.get(k, float("nan"))) <= 1e-4 * max(1.0, abs(mine[k])) for k in mine):
            return j
    return None


def check_make_student(fn) -> None:
    """The student's ``make_student(teacher, layers)`` on the fixture's 4-layer teacher with ``layers=[0, 2]``:
    a new 2-layer model of the teacher's class whose embeddings, layers 0 and 2, pooler and classifier are
    copies (not shared) of the teacher's, and whose logits are the recorded ones."""
    fixture = _fixture()
    init = fixture["init"]
    layers = list(fixture["setting"]["student_layers"])
    depth = fixture["setting"]["teacher_config"]["num_hidden_layers"]
    teacher = build_teacher()
    what = f"make_student(teacher, layers={layers})"
    student = call_student(fn, what, teacher, list(layers))
    if not isinstance(student, nn.Module):
        raise GradingError(f"{what} should return the student model, got {type(student).__name__}")

    if teacher.config.num_hidden_layers != depth or len(teacher.bert.encoder.layer) != depth:
        raise GradingError(
            f"{what} changed the teacher (its config or its layer list now has "
            f"{teacher.config.num_hidden_layers} layers): work on a copy of its config, copy.deepcopy(teacher.config)"
        )
    student_layers = _layers_of(student)
    if len(student_layers) != len(layers) or getattr(student.config, "num_hidden_layers", None) != len(layers):
        raise GradingError(
            f"{what}: the student should have {len(layers)} layers (config.num_hidden_layers = len(layers)), "
            f"it has {len(student_layers)} (config says {getattr(student.config, 'num_hidden_layers', None)})"
        )

    shared = _shared_tensors(student, teacher)
    if shared:
        raise GradingError(
            f"{what}: the student shares tensors with the teacher instead of copying them (e.g. {shared[0]} is "
            f"the teacher's own tensor), so training the student would change the teacher too: copy them "
            "(copy.deepcopy of the module, or load_state_dict into the student's own modules)"
        )

    expected_sums = init["student_tensor_sums"]
    teacher_sums = init["teacher_tensor_sums"]
    sums = {k: float(v.detach().double().sum()) for k, v in student.state_dict().items() if v.is_floating_point()}
    missing = [k for k in expected_sums if k not in sums]
    if missing:
        raise GradingError(f"{what}: the student has no tensor {missing[0]}: build it as type(teacher)(config)")
    wrong = [k for k, v in expected_sums.items() if abs(sums[k] - v) > 1e-4 * max(1.0, abs(v))]
    if wrong:
        _explain_wrong_tensors(what, wrong, sums, teacher_sums, layers, depth)

    logits = _logits(student)
    if _close(logits, init["wrong_answers"]["first_k_layers"]["student_logits"]):
        raise GradingError(f"{what}: these are the logits of a student made of the teacher's first layers [0, 1]: "
                           f"student layer i must copy teacher layer layers[i]")
    if not _close(logits, init["student_logits"]):
        raise GradingError(
            f"{what}: the student's logits differ from the expected ones although its tensors are right; "
            "keep the teacher's config (hidden size, heads, ...) apart from num_hidden_layers"
        )

    # Copies, not views: a training step on the student must leave the teacher as it was.
    before = _logits(teacher)
    student.train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    b = batch()
    out = student(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    F.cross_entropy(out.logits, b["labels"]).backward()
    optimizer.step()
    if not torch.equal(before, _logits(teacher)):
        raise GradingError(
            f"{what}: one training step on the student changed the teacher: the student shares its weights "
            "with the teacher instead of copying them"
        )


def _explain_wrong_tensors(what, wrong, sums, teacher_sums, layers, depth) -> None:
    embeddings = [k for k in wrong if k.startswith("bert.embeddings.")]
    if embeddings:
        if all(k == "bert.embeddings.token_type_embeddings.weight" for k in embeddings):
            raise GradingError(
                f"{what}: the token-type embeddings were not copied; copy the whole embeddings module "
                "(word, position and token-type embeddings and their LayerNorm)"
            )
        raise GradingError(
            f"{what}: the student's embeddings are not the teacher's ({embeddings[0]} differs): did you forget "
            "to copy the embeddings (word, position, token-type, LayerNorm)?"
        )
    layer_keys = [k for k in wrong if k.startswith("bert.encoder.layer.")]
    if layer_keys:
        got = [_which_teacher_layer(sums, i, teacher_sums, depth) for i in range(len(layers))]
        if got == list(range(len(layers))):
            raise GradingError(
                f"{what}: the student's layers are the teacher's first layers {got}, not {layers}: student layer "
                f"i copies teacher layer layers[i] (one out of two), not teacher layer i"
            )
        if all(g is not None for g in got):
            raise GradingError(f"{what}: the student's layers are copies of teacher layers {got}, expected {layers}")
        index = int(layer_keys[0].split(".")[3])
        raise GradingError(
            f"{what}: student layer {index} is not a copy of any teacher layer (is it left at its random "
            f"initialisation?): copy teacher layer {layers[index]} into it"
        )
    if any(k.startswith("bert.pooler.") for k in wrong):
        raise GradingError(
            f"{what}: the pooler was not copied: in BertForSequenceClassification the classifier reads "
            "pooler(h_[CLS]), so the fine-tuned pooler is part of the task head"
        )
    if any(k.startswith("classifier.") for k in wrong):
        raise GradingError(f"{what}: the classifier was not copied from the teacher")
    raise GradingError(f"{what}: the student's {wrong[0]} differs from the teacher's")


# --- teacher_logits -----------------------------------------------------------------------------------------


def check_teacher_logits(fn) -> None:
    """The student's ``teacher_logits(teacher, batch)`` on the fixture's teacher, handed over in train mode:
    the logits tensor of the teacher in eval mode (no dropout) computed under ``torch.no_grad()``."""
    fixture = _fixture()["kd_step"]
    teacher = build_teacher().train()  # a correct teacher_logits switches it to eval mode itself
    probe = _Probe(teacher)
    what = "teacher_logits(teacher, batch)"
    torch.manual_seed(_fixture()["setting"]["step"]["teacher_train_mode_seed"])
    try:
        out = call_student(fn, what, teacher, batch())
    finally:
        probe.remove()
    if not probe.calls:
        raise GradingError(f"{what} never ran the teacher: the soft targets are teacher(**inputs).logits")
    if hasattr(out, "logits") and not isinstance(out, torch.Tensor):
        raise GradingError(f"{what} returned the model's output object: return its logits tensor, output.logits")
    if not isinstance(out, torch.Tensor):
        raise GradingError(f"{what} should return a tensor of logits, got {type(out).__name__}")
    training, grad_enabled = probe.calls[-1]
    if training:
        raise GradingError(
            f"{what} ran the teacher in train mode (dropout on), so its soft targets are noisy: call teacher.eval() "
            "before its forward pass"
        )
    if grad_enabled or out.requires_grad:
        raise GradingError(
            f"{what} ran the teacher with gradients enabled: it is a fixed target, so compute its logits under "
            "torch.no_grad() (autograd would otherwise record a graph through the whole teacher)"
        )
    if any(p.grad is not None for p in teacher.parameters()):
        raise GradingError(f"{what} left gradients on the teacher's parameters: the teacher must get no gradient")
    if _close(out, fixture["wrong_answers"]["teacher_train_mode"]["teacher_logits"]):
        raise GradingError(f"{what}: these are the logits of the teacher in train mode (dropout on): call teacher.eval()")
    if not _close(out, fixture["teacher_logits"]):
        raise GradingError(
            f"{what}: the logits differ from the teacher's (expected shape {tuple(torch.tensor(fixture['teacher_logits']).shape)}, "
            f"got {tuple(out.shape)}): run teacher(**inputs) on the batch's input_ids and attention_mask"
        )


# --- distill_step -------------------------------------------------------------------------------------------


def check_distill_step(fn, **references) -> None:
    """The student's ``distill_step(student, batch, optimizer, *, temperature, alpha)`` with cached teacher
    logits in ``batch["teacher_logits"]``: one SGD step on the combined loss from the recorded 2-layer student
    must land on the recorded logits, with the student in train mode and autograd on, and return the loss."""
    fixture = _fixture()
    step, expected = fixture["setting"]["step"], fixture["kd_step"]
    teacher = build_teacher()
    student = _no_dropout(reference_student(teacher, fixture["setting"]["student_layers"])).eval()
    initial = {k: v.clone() for k, v in student.state_dict().items()}
    probe = _Probe(student)
    optimizer = torch.optim.SGD(student.parameters(), lr=step["lr"])
    what = f"distill_step(student, batch, optimizer, temperature={step['temperature']}, alpha={step['alpha']})"
    try:
        with graded_alone(fn, **references):
            result = fn(student, batch(with_teacher_logits=True), optimizer, temperature=step["temperature"],
                        alpha=step["alpha"])
    except NotImplementedError:
        raise
    except GradingError:
        raise
    except RuntimeError as error:
        if "does not require grad" in str(error) or "grad_fn" in str(error):
            raise GradingError(
                f"{what}: loss.backward() failed because the loss has no graph: the student's forward pass must "
                "not run under torch.no_grad() (the lecture's bug); the cached teacher logits need no teacher at all"
            ) from error
        raise GradingError(f"{what} raised RuntimeError: {error}") from error
    except Exception as error:
        raise GradingError(f"{what} raised {type(error).__name__}: {error}{error_hint(error)}") from error
    finally:
        probe.remove()

    if not probe.calls:
        raise GradingError(f"{what} never ran the student: its logits are student(**inputs).logits")
    training, grad_enabled = probe.calls[-1]
    if not grad_enabled:
        raise GradingError(
            f"{what} ran the student under torch.no_grad() (the lecture's bug): its logits carry no graph and "
            "it did not change; only the teacher's forward belongs under no_grad"
        )
    if not training:
        raise GradingError(f"{what} ran the student in eval mode: call student.train() before its forward pass")
    now = student.state_dict()
    if all(torch.equal(now[k], initial[k]) for k in initial):
        raise GradingError(f"{what} did not change the student's weights: is optimizer.step() missing?")

    logits = _logits(student)
    wrong = expected["wrong_answers"]
    value = to_number(result.get("loss") if isinstance(result, dict) else result, f"{what}'s returned loss")
    if not _close(logits, expected["student_logits_after_step"]):
        if _close(value, wrong["no_t2"]["loss"]):
            raise GradingError(f"{what}: the soft loss lacks the T^2 factor; use combined_loss (which includes it)")
        if _close(value, wrong["teacher_train_mode"]["loss"]):
            raise GradingError(f"{what}: the soft targets are those of a teacher in train mode (dropout on)")
        raise GradingError(
            f"{what}: after one SGD step the student's logits differ from the expected ones. The update must follow "
            "the combined loss alpha * CE(z, labels) + (1 - alpha) * L_D(z, v, T) of the student's logits z against "
            "the cached teacher logits v = batch['teacher_logits']: zero the gradients, backpropagate once, step once"
        )
    if not _close(value, expected["loss"]):
        raise GradingError(
            f"{what} returned loss {value:.6g}, expected {expected['loss']:.6g}: return the combined loss of this "
            "batch (before the step) as a float, loss.item()"
        )
