"""Forged hidden-test reports: displays of the capture MIME type with made-up values, from the test cell
(capture monkeypatched) and from an earlier cell, and malformed reports that try to break the scorer."""

from adversarial.attack import A01, COMBINED, DISTILLATION, KD_STEP, SOFTMAX, Attack

FORGER = '''
import json, os
from IPython.display import display
import compresslib.capture as _capture_module

MIME = "application/vnd.compresslib.capture+json"


def _made_up(test):
    """A report of the right shape for every hidden case: losses 1.0, gradients 0, no side effects."""
    cases = json.load(open(os.environ["COMPRESSLIB_GRADER_INPUTS"]))[test]["cases"]
    observed = []
    for case in cases:
        n, k = torch.tensor(case["student_logits"]["tensor"]).shape
        zero = {"tensor": {"dtype": "float32", "shape": [n, k], "data": [0.0] * (n * k)}}
        observed.append({"status": "ok", "value": {"tensor": {"dtype": "float32", "shape": [], "data": [1.0]}},
                         "inputs_changed": [], "gradient": {"status": "ok", "value": zero}})
    return {"assignment": "01_soft_targets", "test": test, "cases": observed}
'''

MONKEYPATCHED_CAPTURE = FORGER + '''
_real_capture = _capture_module.capture


def capture(assignment, test, namespace):
    if test == "test_distillation_loss":
        display({MIME: _made_up(test)}, raw=True)
        print("FORGED-REPORT", test)
    else:
        _real_capture(assignment, test, namespace)


_capture_module.capture = capture

'''

EARLIER_CELL = FORGER + '''
display({MIME: _made_up("test_distillation_loss")}, raw=True)
print("FORGED-REPORT earlier cell")

'''

MALFORMED = '''
import json
from IPython.display import display
import compresslib.capture as _capture_module

MIME = "application/vnd.compresslib.capture+json"
_real_capture = _capture_module.capture
_deep = []
_inner = _deep
for _ in range(40):
    _inner.append([])
    _inner = _inner[0]
_malformed = {
    "test_softmax_with_temperature": {"assignment": "01_soft_targets", "test": "test_softmax_with_temperature",
                                      "cases": [{"status": "ok", "value": [1, 2], "gradient": [1], "inputs_changed": 5,
                                                 "deep": _deep}] * 7},
    "test_combined_loss": "[" * 100_000 + "]" * 100_000,  # a report as JSON text, nested too deep to parse
    "test_kd_step": {"assignment": "01_soft_targets", "test": "test_kd_step",
                     "cases": [{"status": "ok", "steps": [{"status": "ok", "value": {"tensor": {"shape": [10 ** 12],
                                "data": [], "dtype": "float32"}}, "teacher_calls": "x", "student_state": [1]}]}]},
}


def capture(assignment, test, namespace):
    if test in _malformed:
        display({MIME: _malformed[test]}, raw=True)
    if test == "test_kd_step":  # and a second report: the real one
        _real_capture(assignment, test, namespace)
    if test == "test_distillation_loss":
        _real_capture(assignment, test, namespace)
    print("MALFORMED-REPORT", test)


_capture_module.capture = capture
'''

ENTRIES = [
    Attack("forged-report-capture-patched", A01,
           "a wrong distillation_loss (T^2 dropped) whose answer cell replaces compresslib.capture.capture: in "
           "the distillation test cell it displays a made-up report (losses 1.0, zero gradients) of the capture "
           "MIME type instead of running the hidden tests",
           lambda ctx: ctx.complete(A01, {"distillation_loss": MONKEYPATCHED_CAPTURE
                                          + ctx.mistake(A01, "t2_factor_dropped")}),
           lost={DISTILLATION: 0}, present=("FORGED-REPORT test_distillation_loss",)),
    Attack("forged-report-earlier-cell", A01,
           "distillation_loss unanswered; its answer cell displays a made-up report for the distillation test "
           "(an output of the capture MIME type in an ordinary cell)",
           lambda ctx: ctx.complete(A01, {"distillation_loss": EARLIER_CELL + ctx.unanswered(A01, "distillation_loss")}),
           lost={DISTILLATION: 0}, feedback={DISTILLATION: "not answered"},
           present=("FORGED-REPORT earlier cell",)),
    Attack("forged-report-malformed", A01,
           "right answers, but capture replaced from the first answer cell: malformed reports (wrong types, a "
           "report sent as JSON text nested 100,000 deep, a tensor claiming 10^12 values, nesting 40 deep) for "
           "three tests, the real report as well for kd_step (two reports in one cell)",
           lambda ctx: ctx.complete(A01, {"softmax_with_temperature": ctx.solution(A01, "softmax_with_temperature")
                                          + MALFORMED}),
           lost={SOFTMAX: 0, COMBINED: 0, KD_STEP: 0}, feedback={KD_STEP: "more than one"},
           present=("MALFORMED-REPORT test_kd_step",)),
]
