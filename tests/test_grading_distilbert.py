"""Notebook 02's hidden tests in-process (seconds; the pipeline tests do the same through nbgrader and
the sandbox): the solution gets every test, a blank notebook none, each catalogued wrong answer loses
exactly its own test with its message, the fixture is what its recorder produces, and the recorded
expected values (computed without the library) agree with the library's reference answers."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from graded import (ROOT, assert_blank_scores_zero, assert_catalog_entry_caught, assert_full_marks, grade,
                    solution_namespace)
from transformers import BertConfig, BertForSequenceClassification

from compresslib import combined_loss
from compresslib.capture.distilbert_student import build_bert, fingerprints, make_optimizer
from compresslib.capture.plain import from_input
from compresslib.course.examples import wrong_answers
from compresslib.course.notebooks import from_source, grade_id, source_path
from compresslib.distill import init_student_from_teacher, kd_step, select_layers
from compresslib.grading.fixtures import load_fixture
from compresslib.grading.record import record

ASSIGNMENT = "02_distilbert_student"
IMPORTS = {"torch": torch, "nn": nn, "F": F, "copy": copy, "combined_loss": combined_loss,
           "BertConfig": BertConfig, "BertForSequenceClassification": BertForSequenceClassification}
CATALOG = wrong_answers(ROOT, ASSIGNMENT)


def test_notebook_solution_passes_every_hidden_test():
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS))


def test_every_graded_cell_has_recorded_cases_and_the_points_add_up_to_10():
    cells = from_source(source_path(ROOT, ASSIGNMENT)).cells
    graded = {grade_id(c): c.metadata.nbgrader["points"] for c in cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert set(graded) == set(load_fixture(ASSIGNMENT)["tests"])
    assert sum(graded.values()) == 10


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_wrong_answer_loses_exactly_its_test_with_its_message(name):
    assert_catalog_entry_caught(ASSIGNMENT, IMPORTS, CATALOG[name])


def test_the_catalog_has_at_least_six_mistakes_per_graded_function():
    per_test = {}
    for entry in CATALOG.values():
        per_test[entry["test"]] = per_test.get(entry["test"], 0) + 1
    assert set(per_test) == set(load_fixture(ASSIGNMENT)["tests"]) and min(per_test.values()) >= 6, per_test


def test_blank_notebook_scores_zero_on_every_test():
    assert_blank_scores_zero(ASSIGNMENT, IMPORTS)


def test_fixture_has_provenance_and_matches_its_recorder():
    stored = load_fixture(ASSIGNMENT)
    assert stored["provenance"]["command"] == f"python -m compresslib.grading.record {ASSIGNMENT}"
    fresh = record(ASSIGNMENT)["tests"]
    assert set(fresh) == set(stored["tests"])
    for test in fresh:
        assert [c["inputs"] for c in fresh[test]["cases"]] == [c["inputs"] for c in stored["tests"][test]["cases"]]
        _assert_close_trees([c["expected"] for c in fresh[test]["cases"]],
                            [c["expected"] for c in stored["tests"][test]["cases"]])


def _assert_close_trees(a, b):
    """Equal JSON trees, numbers equal to float32 round-off (a recorder run on another machine)."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            _assert_close_trees(a[key], b[key])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_close_trees(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    else:
        assert a == b


def test_every_catalogued_wrong_value_differs_from_the_right_one():
    """A case where a mistake gives the right output cannot catch that mistake (recorded wrong values
    equal to the expected one are left out)."""
    for test, spec in load_fixture(ASSIGNMENT)["tests"].items():
        for case in spec["cases"]:
            for key, wrong in case["wrong"].items():
                assert wrong != case["expected"], (test, key)
                if test == "test_distill_step":  # the second step at least must land elsewhere
                    last, right = wrong["steps"][-1]["weights"], case["expected"]["steps"][-1]["weights"]
                    assert any(abs(x - y) > 1e-3 * max(1.0, abs(y)) for k in right for x, y in zip(last[k], right[k])), key


def test_recorded_teachers_never_repeat_a_tensor():
    """Each student tensor must name its source: no two tensors of a recorded teacher are equal."""
    for case in load_fixture(ASSIGNMENT)["tests"]["test_make_student"]["cases"]:
        tensors = list(build_bert(case["inputs"]["teacher"]).state_dict().items())
        for i, (a, x) in enumerate(tensors):
            assert all(x.shape != y.shape or not torch.equal(x, y) for _, y in tensors[i + 1:]), a


# --- the recorded expected values, computed without the library, agree with its reference answers ---------


def test_library_layer_choice_agrees_with_the_recorded_one_odd_depths_included():
    for case in load_fixture(ASSIGNMENT)["tests"]["test_every_other_layers"]["cases"]:
        assert select_layers(case["inputs"]["num_teacher_layers"]) == case["expected"]["indices"]


def test_library_student_init_gives_the_recorded_students():
    namespace = {"make_student": lambda teacher, layers: init_student_from_teacher(teacher, layers)}
    assert grade(ASSIGNMENT, "test_make_student", namespace).passed


def test_library_kd_step_with_cached_logits_gives_the_recorded_steps():
    namespace = {"distill_step": lambda student, batch, optimizer, *, temperature, alpha: kd_step(
        None, student, batch, optimizer, temperature=temperature, alpha=alpha)["loss"]}
    assert grade(ASSIGNMENT, "test_distill_step", namespace).passed


def test_recorded_steps_follow_the_library_loss_through_autograd():
    """The recorder's closed-form dL/dz backpropagated through the BERT equals autograd through
    compresslib's combined_loss: the first SGD step lands on the same weights."""
    case = load_fixture(ASSIGNMENT)["tests"]["test_distill_step"]["cases"][0]
    inputs = case["inputs"]
    student = build_bert(inputs["student"])
    optimizer = make_optimizer(student, inputs["optimizer"])
    batch = from_input(inputs["batch"])
    logits = student(**{k: v for k, v in batch.items() if k not in ("labels", "teacher_logits")}).logits
    loss = combined_loss(logits, batch["teacher_logits"], batch["labels"], inputs["alpha"], inputs["temperature"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert loss.item() == pytest.approx(case["expected"]["steps"][0]["loss"], rel=1e-5)
    _assert_close_trees(fingerprints(student), case["expected"]["steps"][0]["weights"])


# --- right answers written differently keep full marks -----------------------------------------------------

HONEST = {
    "every_other_layers": [
        "def every_other_layers(num_teacher_layers):\n    return [i for i in range(num_teacher_layers) if i % 2 == 0]\n",
        "def every_other_layers(num_teacher_layers):\n    return range(0, num_teacher_layers, 2)\n",
        "def every_other_layers(num_teacher_layers):\n    return torch.arange(0, num_teacher_layers, 2)\n",
        "def every_other_layers(n):\n    return tuple(list(range(n))[::2])\n",
    ],
    "make_student": [
        '''def make_student(teacher, layers):
    student = copy.deepcopy(teacher)
    student.bert.encoder.layer = nn.ModuleList([student.bert.encoder.layer[t] for t in layers])
    student.config.num_hidden_layers = len(layers)
    return student
''',
        '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config).eval()
    student.bert.embeddings = copy.deepcopy(teacher.bert.embeddings)
    student.bert.encoder.layer = nn.ModuleList(copy.deepcopy(teacher.bert.encoder.layer[t]) for t in layers)
    student.bert.pooler = copy.deepcopy(teacher.bert.pooler)
    student.classifier = copy.deepcopy(teacher.classifier)
    return student
''',
        '''import re
import sys
import warnings


def make_student(teacher, layers):
    warnings.warn("copying the teacher")
    print("building the student", file=sys.stderr)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    state = {}
    for key, value in teacher.state_dict().items():
        match = re.match(r"bert\\.encoder\\.layer\\.(\\d+)\\.(.*)", key)
        if match is None:
            state[key] = value.clone()
        elif int(match.group(1)) in layers:
            state[f"bert.encoder.layer.{list(layers).index(int(match.group(1)))}.{match.group(2)}"] = value.clone()
    student.load_state_dict(state)
    return student.train(teacher.training)
''',
    ],
    "teacher_logits": [
        '''def teacher_logits(teacher, batch):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    teacher.train(False)
    with torch.inference_mode():
        return teacher(**inputs)[0]
''',
        '''def teacher_logits(teacher, batch):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    teacher.eval()
    with torch.no_grad():
        out = teacher(**inputs)
    return out.logits.detach().clone().float().cpu()
''',
    ],
    "distill_step": [
        '''import warnings


def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    warnings.warn("a step")
    student.train()
    z = student(**inputs).logits
    T = temperature
    soft = -(torch.softmax(batch["teacher_logits"] / T, -1) * torch.log_softmax(z / T, -1)).sum(-1).mean() * T**2
    loss = alpha * torch.nn.functional.cross_entropy(z, batch["labels"]) + (1 - alpha) * soft
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss)
''',
        '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    device = next(student.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    optimizer.zero_grad()
    loss = combined_loss(student_logits=student(**inputs).logits, teacher_logits=batch["teacher_logits"],
                         labels=batch["labels"], temperature=temperature, alpha=alpha)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        student.eval()
        student(**inputs)  # a look at the logits after the step
        student.train()
    return loss.detach().item()
''',
    ],
}


@pytest.mark.parametrize(("cell", "index"), [(c, i) for c, codes in HONEST.items() for i in range(len(codes))])
def test_right_answers_written_differently_keep_full_marks(cell, index):
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS, {cell: HONEST[cell][index]}))
