"""Trusted scoring, unit by unit: a test cell's score comes from its hidden tests' report alone, judged
outside the student's kernel; the oracle answers only what a dependent test may ask; the hidden inputs
hold no answer. (The whole path, through nbgrader and the sandbox, is tested in the pipeline tests and
the adversarial corpus.)"""

from __future__ import annotations

import json

import nbformat
import pytest
import torch
import torch.nn.functional as F
from graded import solution_namespace

from compresslib.capture import MIME, run_harness
from compresslib.capture.stand_ins import ORACLE_PROMPT, set_transport, stand_in
from compresslib.grading.fixtures import hidden_inputs, load_fixture
from compresslib.grading.judging import Verdict
from compresslib.grading.nbgrader_plugins import EXECUTION_KEY, ScoreCaptures, verdict_of_cell
from compresslib.grading.oracle import StandInOracle, answer, scope

ASSIGNMENT = "01_soft_targets"
TEST = "test_distillation_loss"
IMPORTS = {"torch": torch, "F": F, "nn": torch.nn}


def _report(namespace=None) -> dict:
    cases = hidden_inputs(ASSIGNMENT)[TEST]["cases"]
    return json.loads(json.dumps(run_harness(ASSIGNMENT, TEST, cases, namespace or solution_namespace(ASSIGNMENT, IMPORTS))))


def _cell(outputs, grade_id=TEST, points=4, metadata=None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("capture(...)")
    cell.metadata.nbgrader = {"grade": True, "grade_id": grade_id, "points": points, "solution": False, "locked": True}
    cell.metadata.update(metadata or {})
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def _capture(report) -> dict:
    return {"output_type": "display_data", "data": {MIME: report}, "metadata": {}}


def _score(cell) -> tuple[list, str]:
    """The cell's outputs after ScoreCaptures, and what nbgrader's determine_grade gives it."""
    from nbgrader.utils import determine_grade

    nb = nbformat.v4.new_notebook(cells=[cell])
    nb, _ = ScoreCaptures().preprocess(nb, {"nbgrader": {"assignment": ASSIGNMENT}})
    score, _ = determine_grade(nb.cells[0])
    return nb.cells[0].outputs, score


def test_a_correct_report_gets_full_marks_whatever_else_the_cell_printed():
    noise = [{"output_type": "stream", "name": "stderr", "text": "UserWarning: harmless\n"},
             {"output_type": "error", "ename": "AssertionError", "evalue": "a visible test", "traceback": []}]
    outputs, score = _score(_cell([*noise, _capture(_report())]))
    assert score == 4
    assert not any(o.output_type == "error" or o.get("name") == "stderr" for o in outputs)
    assert "a visible test failed (not scored" in "".join(o.get("text", "") for o in outputs)


def test_a_wrong_report_gets_zero_and_the_message_names_the_mistake():
    namespace = solution_namespace(ASSIGNMENT, IMPORTS, {"distillation_loss": (
        "def distillation_loss(z, v, T):\n"
        "    return -(torch.softmax(v / T, -1) * F.log_softmax(z / T, -1)).sum(-1).mean()\n")})
    outputs, score = _score(_cell([_capture(_report(namespace))]))
    assert score == 0
    assert "drop the T^2 factor" in outputs[-1].evalue


@pytest.mark.parametrize("outputs, reason", [
    ([], "hidden tests did not run"),
    ([{"output_type": "execute_result", "data": {"text/plain": "4"}, "metadata": {}, "execution_count": 1}],
     "hidden tests did not run"),
])
def test_no_report_means_no_points_even_with_a_partial_credit_value(outputs, reason):
    cell_outputs, score = _score(_cell(outputs))
    assert score == 0 and reason in cell_outputs[-1].evalue
    assert all(o.output_type != "execute_result" for o in cell_outputs)


def test_the_executors_record_says_why_there_is_no_report():
    outputs, score = _score(_cell([], metadata={EXECUTION_KEY: {"status": "timeout"}}))
    assert score == 0 and "ran past its time limit" in outputs[-1].evalue


def test_two_reports_a_report_for_another_test_or_a_forged_one_score_zero():
    good = _report()
    assert not verdict_of_cell(ASSIGNMENT, _cell([_capture(good), _capture(good)])).passed
    other = dict(good, test="test_combined_loss")
    assert not verdict_of_cell(ASSIGNMENT, _cell([_capture(other)])).passed
    forged = dict(good, cases=[{"status": "ok", "value": 1.0}] * len(good["cases"]))
    verdict = verdict_of_cell(ASSIGNMENT, _cell([_capture(forged)]))
    assert not verdict.passed and isinstance(verdict, Verdict)
    garbage = dict(good, cases=[{"status": "ok", "value": {"tensor": "not a tensor"}}] * len(good["cases"]))
    assert not verdict_of_cell(ASSIGNMENT, _cell([_capture(garbage)])).passed


def test_scripts_and_html_in_outputs_are_dropped():
    html = {"output_type": "display_data", "metadata": {},
            "data": {"text/html": "<script>steal()</script>", "application/javascript": "steal()", "text/plain": "x"}}
    outputs, _ = _score(_cell([html, _capture(_report())]))
    kept = [k for o in outputs for k in o.get("data", {})]
    assert "text/html" not in kept and "application/javascript" not in kept and "text/plain" in kept


def test_the_feedback_never_shows_the_expected_value():
    namespace = solution_namespace(ASSIGNMENT, IMPORTS, {"distillation_loss": "def distillation_loss(z, v, T):\n    return z.sum() * 0 + 1.2345\n"})
    outputs, _ = _score(_cell([_capture(_report(namespace))]))
    message = outputs[-1].evalue
    expected = load_fixture(ASSIGNMENT)["tests"][TEST]["cases"][0]["expected"]["value"]
    assert "1.2345" in message and f"{expected:.4g}" not in message and f"{expected:.6g}" not in message


def test_the_hidden_inputs_hold_no_expected_or_recorded_answer():
    for assignment in ("01_soft_targets", "02_distilbert_student", "03_lottery_tickets"):
        inputs = hidden_inputs(assignment)
        text = json.dumps(inputs)
        assert '"expected"' not in text and '"wrong"' not in text and '"result"' not in text
        for spec in inputs.values():
            for case in spec["cases"]:
                for stand_in_spec in case.get("stand_ins", {}).values():
                    assert set(stand_in_spec) == {"signature"}, "a stand-in carries its signature, never results"


def test_the_oracle_answers_only_the_functions_in_its_scope():
    allowed = {"softmax_with_temperature"}
    request = {"function": "distillation_loss", "args": {"student_logits": {"tensor": [[1.0, 2.0]]},
                                                         "teacher_logits": {"tensor": [[2.0, 1.0]]}, "temperature": 2.0}}
    assert "unavailable" in answer(ASSIGNMENT, allowed, request)
    assert "result" in answer(ASSIGNMENT, {"distillation_loss"}, request)
    assert "unavailable" in answer(ASSIGNMENT, allowed, "not a request")
    bad = {"function": "softmax_with_temperature", "args": {"logits": {"tensor": [[1.0]]}, "temperature": -1, "dim": -1}}
    assert "raised" in answer(ASSIGNMENT, allowed, bad)


def test_the_executors_oracle_offers_stdin_only_to_dependent_tests(tmp_path):
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps(hidden_inputs(ASSIGNMENT)))
    oracle = StandInOracle.from_inputs(ASSIGNMENT, inputs)
    assert oracle.handler("test_softmax_with_temperature") is None  # nothing before it to stand in for
    assert oracle.handler(None) is None and oracle.handler("a student's cell") is None
    reply = oracle.handler(TEST, {"test_softmax_with_temperature"})  # the earlier test ran above it
    assert reply("What is your name?") == ""  # a student's own input() gets an empty line
    asked = {"function": "softmax_with_temperature", "args": {"logits": {"tensor": [[0.0, 0.0]]}, "temperature": 1.0, "dim": -1}}
    assert json.loads(reply(ORACLE_PROMPT + json.dumps(asked)))["result"]["tensor"] == [[0.5, 0.5]]
    forbidden = dict(asked, function="distillation_loss")
    assert "unavailable" in json.loads(reply(ORACLE_PROMPT + json.dumps(forbidden)))


def test_a_stand_in_falls_back_to_the_students_function_without_an_oracle():
    def own(logits, temperature, dim=-1):
        return "the student's own"

    set_transport(lambda request: {"unavailable": "not grading"})
    try:
        assert stand_in("softmax_with_temperature", ["logits", "temperature", ["dim", -1]], own)(torch.zeros(1, 2), 1.0) \
            == "the student's own"
    finally:
        set_transport(None)


def test_a_stand_in_passes_gradients_through_the_oracles_jacobian():
    allowed = scope([{"softmax_with_temperature": {}}])
    set_transport(lambda request: answer(ASSIGNMENT, allowed, request))
    try:
        z = torch.tensor([[1.0, -0.5, 2.0]], requires_grad=True)
        p = stand_in("softmax_with_temperature", ["logits", "temperature", ["dim", -1]], None)(z, 2.0)
        (p * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    finally:
        set_transport(None)
    reference = torch.tensor([[1.0, -0.5, 2.0]], requires_grad=True)
    (torch.softmax(reference / 2.0, -1) * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert torch.allclose(z.grad, reference.grad, atol=1e-6)
