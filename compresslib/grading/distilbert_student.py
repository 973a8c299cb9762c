"""Judges of notebook 02 (a half-depth BERT student): what the hidden tests accept.

Each judge sees one hidden case: its recorded inputs, expected outputs and catalogued wrong outputs
(``fixtures/02_distilbert_student.json``), and what the student's function did on it in the sandbox
(:mod:`compresslib.capture.distilbert_student`). It accepts, or names the likely mistake, describing the
student's own output and never the expected one.

Not judged, on purpose: the mode ``make_student`` leaves the student in (the notebook does not ask for
one, and ``distill_step`` and the training loop set it), and the keywords ``distill_step`` passes to the
student (labels there only add an unused loss). The student's device is compared with the teacher's, but
the hidden teachers live where grading runs, on a CPU, so a student left on the CPU while its teacher is
on a GPU is only caught where grading has a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compresslib.capture.plain import describe
from compresslib.grading.judging import (
    Mistake,
    as_array,
    close,
    judge,
    require_ok,
    short,
)

ASSIGNMENT = "02_distilbert_student"
LAYER_PREFIX = "bert.encoder.layer."
INDEX_CONTAINERS = ("list", "tuple", "range", "Tensor", "ndarray")

EVERY_OTHER_MESSAGES = {
    "count": "this is how many layers the student keeps, not which: return the list of teacher layer indices",
    "first_k": "these are the first k layers [0, 1, ..., k-1]: DistilBERT keeps one layer out of two, "
               "so the student spans the teacher's whole depth",
    "odd_layers": "these are the odd layers: one out of two starts from the teacher's first layer, layer 0",
    "reversed": "the layers are in reversed order: list them bottom-up (student layer i copies the i-th "
                "index of this list, so the order is the order of the student's layers)",
    "floor_half": "for a teacher of odd depth the top layer is left out: one out of two from layer 0 keeps "
                  "ceil(L / 2) layers, 0, 2, ..., up to L - 1",
    "one_indexed": "these indices count from 1: the teacher's layers are numbered from 0",
    "top_half": "these are the top layers: one out of two from layer 0 spans the teacher's whole depth",
    "fixed_list": "the same layers whatever the teacher's depth: compute them from num_teacher_layers",
}

LAYER_MAPPING_MESSAGES = {
    "first_k": "the student's layers are copies of the teacher's first layers {got}: student layer i copies "
               "teacher layer layers[i], not teacher layer i",
    "reversed": "the student's layers are the chosen teacher layers in reversed order ({got}): student layer i "
                "copies teacher layer layers[i]",
    "every_other": "the student's layers are copies of teacher layers {got} whatever `layers` says: copy the "
                   "layers you are given, layers[i] into student layer i",
}

SHARED = ("the student shares tensors with the teacher instead of copying them ({name} is the teacher's own "
          "tensor), so training the student would change the teacher too: copy them (copy.deepcopy of a module, "
          "or load_state_dict into the student's own modules)")

LECTURE_BUG = ("the student's forward pass ran under torch.no_grad() (the lecture's bug): its logits carry no "
               "graph, so loss.backward() cannot reach its weights. Only a teacher's forward belongs under no_grad, "
               "and distill_step needs no teacher at all")

RECOMPUTED = ("recomputed the teacher's logits: the batch carries them, computed once beforehand, in "
              "batch['teacher_logits'], and distill_step needs no teacher")

NO_GRAPH = ("the loss has no graph although the student ran with autograd on: are the student's and the "
            "teacher's logits swapped in the call, combined_loss(student_logits, teacher_logits, labels, alpha, "
            "temperature), or were the student's logits detached?")

ALPHA_TEMPERATURE = ("combined_loss takes (student_logits, teacher_logits, labels, alpha, temperature): "
                     "are alpha and temperature swapped in the call?")

DISTILL_MESSAGES = {
    "no_zero_grad": "the step used this batch's gradients plus the previous call's: zero the gradients "
                    "(optimizer.zero_grad()) before loss.backward()",
    "no_t2": "the soft loss lacks the T^2 factor: use combined_loss (its distillation part includes T^2)",
    "alpha_complement": "alpha weighs the hard loss: pass alpha itself to combined_loss, "
                        "L_C = alpha * L + (1 - alpha) * L_D (was 1 - alpha passed?)",
    "logits_swapped": "the student's and the teacher's logits are swapped in the call: combined_loss(student_logits, "
                      "teacher_logits, labels, alpha, temperature)",
    "hard_only": "the update ignores the teacher's logits: the loss is the combined loss, not the cross-entropy "
                 "with the labels alone",
}


def _fingerprints_close(actual: Mapping, expected: Mapping) -> bool:
    return set(actual) == set(expected) and all(close(actual[k], expected[k], rtol=1e-4, atol=1e-5) for k in expected)


# --- every_other_layers ------------------------------------------------------------------------------------


@judge(ASSIGNMENT, "test_every_other_layers")
def every_other_layers(case: Mapping, observed: Mapping) -> None:
    depth = case["inputs"]["num_teacher_layers"]
    what = f"every_other_layers({depth})"
    require_ok(observed, what)
    value, got = observed.get("value"), observed.get("indices")
    if isinstance(value, int) and not isinstance(value, bool):
        raise Mistake(f"{what} returned the number {value}: {EVERY_OTHER_MESSAGES['count']}")
    if got is None or observed.get("kind") not in INDEX_CONTAINERS:
        raise Mistake(f"{what} should return a list of layer indices, got {describe(value)}")
    if got == case["expected"]["indices"]:
        return
    for key, wrong in case["wrong"].items():
        if wrong == got and key in EVERY_OTHER_MESSAGES:
            raise Mistake(f"{what} returned {got}: {EVERY_OTHER_MESSAGES[key]}")
    raise Mistake(f"{what} returned {got}, which is not one layer out of two from layer 0")


# --- make_student -------------------------------------------------------------------------------------------


def observed_layer_mapping(tensors: Mapping, depth: int, teacher_depth: int) -> list[int | None]:
    """For each student layer, the teacher layer all of whose tensors it equals (None when there is none)."""
    mapping = []
    for i in range(depth):
        prefix = f"{LAYER_PREFIX}{i}."
        mine = {name[len(prefix):]: info.get("equals", []) for name, info in tensors.items() if name.startswith(prefix)}
        found = None
        for j in range(teacher_depth):
            if mine and all(f"{LAYER_PREFIX}{j}.{rest}" in equals for rest, equals in mine.items()):
                found = j
                break
        mapping.append(found)
    return mapping


def _check_teacher_unchanged(what: str, case: Mapping, after: Mapping) -> None:
    expected = case["expected"]["teacher_config"]
    config = after.get("config") or {}
    changed = sorted(k for k in expected if config.get(k) != expected[k])
    if changed:
        now = ", ".join(f"{k}={config.get(k)!r}" for k in changed[:3])
        raise Mistake(f"{what} changed the teacher: its config now says {now}. Work on a copy of the teacher's "
                      "config, copy.deepcopy(teacher.config)")
    depth = case["inputs"]["teacher"]["config"]["num_hidden_layers"]
    if after.get("depth") != depth:
        raise Mistake(f"{what} changed the teacher: it now has {after.get('depth')} layers. Build a new model for "
                      "the student and leave the teacher as it is")
    if after.get("changed"):
        raise Mistake(f"{what} changed the teacher's weights ({after['changed'][0]}): only copy from the teacher")


def _check_config(what: str, case: Mapping, student: Mapping) -> None:
    config, expected = student.get("config") or {}, case["expected"]["config"]
    depth = student.get("depth")
    if config.get("num_hidden_layers") != depth:
        raise Mistake(f"{what}: the student has {depth} layers but its config says num_hidden_layers="
                      f"{config.get('num_hidden_layers')!r}: set config.num_hidden_layers = len(layers) "
                      "(save_pretrained and from_pretrained rebuild the model from its config)")
    differs = sorted(k for k in expected if k != "num_hidden_layers" and config.get(k) != expected[k])
    if differs:
        got = ", ".join(f"{k}={config.get(k)!r}" for k in differs[:3])
        raise Mistake(f"{what}: the student's config differs from the teacher's ({got}): start from a copy of "
                      "the teacher's config and change only num_hidden_layers")


def _explain_tensors(what: str, case: Mapping, student: Mapping, wrong: list[str]) -> None:
    layers = case["inputs"]["layers"]
    embeddings = [k for k in wrong if k.startswith("bert.embeddings.")]
    if embeddings:
        if len(embeddings) == len([k for k in case["expected"]["sources"] if k.startswith("bert.embeddings.")]):
            raise Mistake(f"{what}: none of the student's embeddings is the teacher's: did you forget to copy "
                          "the embeddings (word, position and token-type embeddings and their LayerNorm)?")
        raise Mistake(f"{what}: the student's {', '.join(k.removeprefix('bert.embeddings.') for k in embeddings)} "
                      "are not copies of the teacher's: copy the whole embeddings module (word, position and "
                      "token-type embeddings and their LayerNorm)")
    if any(k.startswith(LAYER_PREFIX) for k in wrong):
        depth = case["inputs"]["teacher"]["config"]["num_hidden_layers"]
        got = observed_layer_mapping(student.get("tensors") or {}, len(layers), depth)
        for key, spec in case["wrong"].items():
            if spec.get("layers") == got and key in LAYER_MAPPING_MESSAGES:
                raise Mistake(f"{what}: {LAYER_MAPPING_MESSAGES[key].format(got=got)}")
        if None in got:
            index = got.index(None)
            raise Mistake(f"{what}: student layer {index} is not a copy of any teacher layer (left at its random "
                          f"initialisation, or only partly copied?): copy teacher layer layers[{index}] into it")
        raise Mistake(f"{what}: the student's layers are copies of teacher layers {got}, with layers={layers}: "
                      "student layer i copies teacher layer layers[i]")
    if any(k.startswith("bert.pooler.") for k in wrong):
        raise Mistake(f"{what}: the pooler was not copied: in BertForSequenceClassification the classifier reads "
                      "pooler(h_[CLS]), so the fine-tuned pooler is part of the task head")
    if any(k.startswith("classifier.") for k in wrong):
        raise Mistake(f"{what}: the classifier was not copied from the teacher")
    raise Mistake(f"{what}: the student's {wrong[0]} is not a copy of the matching teacher tensor")


@judge(ASSIGNMENT, "test_make_student")
def make_student(case: Mapping, observed: Mapping) -> None:
    inputs, expected = case["inputs"], case["expected"]
    depth = inputs["teacher"]["config"]["num_hidden_layers"]
    what = f"make_student(teacher with {depth} layers, layers={inputs['layers']})"
    require_ok(observed, what, {"size mismatch": "the student must keep the teacher's width: build it from a copy "
                                                 "of the teacher's config, changing only num_hidden_layers"})
    student = observed.get("student")
    if not isinstance(student, Mapping):
        raise Mistake(f"{what} should return the student model, got {describe(observed.get('value'))}")
    if student.get("is_teacher"):
        raise Mistake(f"{what} returned the teacher itself: build a new model, type(teacher)(config), "
                      "and copy the teacher's tensors into it")
    teacher_after = observed.get("teacher_after") or {}
    _check_teacher_unchanged(what, case, teacher_after)
    if student.get("class") != teacher_after.get("class"):
        raise Mistake(f"{what} returned a {student.get('class')}: build a model of the teacher's class, "
                      "type(teacher)(config)")
    if student.get("depth") != expected["depth"]:
        raise Mistake(f"{what}: the student has {student.get('depth')} layers in .bert.encoder.layer: "
                      "it needs one layer per entry of `layers`")
    _check_config(what, case, student)
    tensors = student.get("tensors") or {}
    shared = [name for name, info in tensors.items() if info.get("shared")] + (student.get("shared_modules") or [])
    if shared or student.get("config_is_teachers"):
        raise Mistake(f"{what}: " + SHARED.format(name=shared[0] if shared else "its config"))
    missing = [k for k in expected["sources"] if k not in tensors]
    if missing:
        raise Mistake(f"{what}: the student has no tensor {missing[0]}: build it as type(teacher)(config)")
    wrong = [k for k, source in expected["sources"].items() if source not in (tensors[k].get("equals") or [])]
    if wrong:
        _explain_tensors(what, case, student, wrong)
    teacher_devices = teacher_after.get("devices")
    if student.get("devices") != teacher_devices:
        raise Mistake(f"{what}: the student's tensors are on {student.get('devices')}, the teacher's on "
                      f"{teacher_devices}: put the student on the teacher's device")
    forward = student.get("forward") or {}
    require_ok(forward, f"{what}: the student's forward pass on a batch")
    logits = as_array(forward.get("value"), f"{what}: the student's logits")
    if not close(logits, expected["logits"], rtol=1e-4, atol=1e-5):
        raise Mistake(f"{what}: the student's tensors are the teacher's, yet its logits on a batch are "
                      f"{short(logits)}, which no such student gives: keep the teacher's config apart from "
                      "num_hidden_layers")


# --- teacher_logits -----------------------------------------------------------------------------------------

TEACHER_LOGITS_MESSAGES = {
    "train_mode": "these are the logits of the teacher in train mode (dropout on): call teacher.eval() first",
    "probabilities": "these are probabilities (each row sums to 1): return the teacher's raw logits, "
                     "output.logits; the softened softmax comes later, in the loss",
    "no_attention_mask": "the teacher ran without the batch's attention_mask, so padding changed its logits: "
                         "pass the model all of its inputs, teacher(**inputs)",
}


def _check_teacher_call(what: str, case: Mapping, call: Mapping) -> None:
    require_ok(call, what)
    forwards = call.get("forwards") or []
    encoder = [f for f in forwards if f.get("encoder")]
    kind = str(call.get("kind"))
    if not encoder:
        raise Mistake(f"{what} never ran the teacher: the soft targets are teacher(**inputs).logits")
    if "Output" in kind:
        raise Mistake(f"{what} returned the model's output object ({kind}): return its logits tensor, output.logits")
    passed = {k for f in forwards if f.get("model") for k in f.get("keywords", [])}
    if passed & {"labels", "teacher_logits"}:
        raise Mistake(f"{what} passed {sorted(passed & {'labels', 'teacher_logits'})} to the teacher: the model takes "
                      "only its inputs (the `inputs` dict, without 'labels' and 'teacher_logits')")
    if any(f.get("dropout_active") for f in encoder):
        raise Mistake(f"{what} ran the teacher in train mode (dropout on), so its soft targets are noisy and change "
                      "from call to call: call teacher.eval() before its forward pass")
    if any(f.get("grad_enabled") for f in encoder) or call.get("requires_grad"):
        raise Mistake(f"{what} ran the teacher with gradients enabled: it is a fixed target, so compute its logits "
                      "under torch.no_grad() (autograd would otherwise record a graph through the whole teacher)")
    if call.get("batch_changed"):
        raise Mistake(f"{what} changed the batch it was given ({call['batch_changed'][0]}): leave it as it is "
                      "(the caller still needs its labels) and build a new dict for the model's inputs")
    value = as_array(call.get("value"), what)
    expected = np.asarray(case["expected"]["logits"])
    if value.shape != expected.shape:
        raise Mistake(f"{what} returned shape {value.shape}: one row of num_labels logits per example")
    if not close(value, expected, rtol=1e-4, atol=1e-5):
        for key, wrong in case["wrong"].items():
            if close(value, wrong, rtol=1e-4, atol=1e-5):
                raise Mistake(f"{what}: {TEACHER_LOGITS_MESSAGES[key]}")
        cached = case["inputs"]["batch"]["mapping"].get("teacher_logits")
        if cached is not None and close(value, cached["tensor"], rtol=1e-6, atol=1e-7):
            raise Mistake(f"{what} returned the batch's own 'teacher_logits' instead of running the teacher")
        raise Mistake(f"{what} returned {short(value)}: these are not the teacher's logits on this batch "
                      "(eval mode, all of the model's inputs)")
    if call.get("teacher_training_after"):
        raise Mistake(f"{what} left the teacher in train mode afterwards: leave it in eval mode (teacher.eval()), "
                      "it only ever serves as a fixed target")


@judge(ASSIGNMENT, "test_teacher_logits")
def teacher_logits(case: Mapping, observed: Mapping) -> None:
    calls = observed.get("calls") or []
    for i in range(len(case["inputs"]["seeds"])):
        what = "teacher_logits(teacher, batch)" + (" (second call, the teacher in train mode again)" if i else "")
        if i >= len(calls):
            require_ok(observed, what)
            raise Mistake(f"{what} did not return")
        _check_teacher_call(what, case, calls[i])
    if observed.get("teacher_has_gradients"):
        raise Mistake("teacher_logits left gradients on the teacher's parameters: the teacher must get no gradient")
    if observed.get("teacher_changed"):
        raise Mistake("teacher_logits changed the teacher's weights: it only runs the teacher")


# --- distill_step -------------------------------------------------------------------------------------------


def _check_step(what: str, case: Mapping, step: Mapping, i: int) -> None:
    encoder = [f for f in step.get("forwards") or [] if f.get("encoder")]
    no_graph = NO_GRAPH if any(f.get("grad_enabled") for f in encoder) else LECTURE_BUG
    require_ok(step, what, {"does not require grad": no_graph, "grad_fn": no_graph,
                            "name 'teacher": RECOMPUTED, "alpha must lie in": ALPHA_TEMPERATURE})
    if set(step.get("called") or []) & {"teacher_logits", "make_student"}:
        raise Mistake(f"{what} {RECOMPUTED}")
    if not encoder:
        raise Mistake(f"{what} never ran the student: its logits are student(**inputs).logits")
    if not any(f.get("grad_enabled") for f in encoder):
        raise Mistake(f"{what}: {LECTURE_BUG}")
    if not any(f.get("training") and f.get("grad_enabled") for f in encoder):
        raise Mistake(f"{what} ran the student in eval mode: call student.train() before its forward pass "
                      "(dropout is part of its training)")
    if step.get("batch_changed"):
        raise Mistake(f"{what} changed the batch it was given ({step['batch_changed'][0]}): leave it as it is and "
                      "build a new dict for the model's inputs")
    expected = case["expected"]["steps"][i]
    before = case["expected"]["initial"] if i == 0 else case["expected"]["steps"][i - 1]["weights"]
    weights = step.get("weights") or {}
    if not _fingerprints_close(weights, expected["weights"]):
        if _fingerprints_close(weights, before):
            raise Mistake(f"{what} did not change the student's weights: call loss.backward() and then "
                          "optimizer.step(), with optimizer.zero_grad() before the backward pass, not between it "
                          "and the step (and keep the student's logits attached to its graph: no .detach())")
        for key, wrong in case["wrong"].items():
            if key in DISTILL_MESSAGES and _fingerprints_close(weights, wrong["steps"][i]["weights"]):
                raise Mistake(f"{what}: {DISTILL_MESSAGES[key]}")
        raise Mistake(f"{what}: after the optimizer step the student's weights are not those of one step on "
                      "L_C = alpha * L + (1 - alpha) * L_D of its logits against batch['teacher_logits']: zero the "
                      "gradients, compute combined_loss, backpropagate once and step once")
    if not step.get("student_training_after"):
        raise Mistake(f"{what} left the student in eval mode: it is being trained, leave it in train mode")
    value = step.get("value")
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise Mistake(f"{what} returned {describe(value)}: return the loss as a Python float, loss.item()")
    if not close(float(value), expected["loss"], rtol=1e-4, atol=1e-6):
        raise Mistake(f"{what} returned {float(value):.6g}: return the combined loss of this batch, computed "
                      "before the step, as a float (loss.item())")


@judge(ASSIGNMENT, "test_distill_step")
def distill_step(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    steps = observed.get("steps") or []
    for i in range(inputs["calls"]):
        what = (f"distill_step(student, batch, {inputs['optimizer']['name']} optimizer, "
                f"temperature={inputs['temperature']}, alpha={inputs['alpha']})")
        if i > 0:
            what += " (second call with the same optimizer)"
        if i >= len(steps):
            require_ok(observed, what)
            raise Mistake(f"{what} did not return")
        _check_step(what, case, steps[i], i)
