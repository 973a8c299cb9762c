"""Taking over IPython: input transformers, custom exception handlers, showtraceback, post_run_cell hooks.

A test cell scores from the hidden tests' report it displays, judged outside; a cell that shows no
report scores zero. Rewriting, silencing or decorating cells can remove a report, never make one right.
"""

from adversarial.attack import A01, COMBINED, DISTILLATION, KD_STEP, SOFTMAX, Attack, code, insert

SKIP_TESTS = '''
def _no_tests(lines):
    """The old trick: every cell that runs hidden tests becomes `pass`."""
    return ["pass\\n"] if any("capture(" in line or "assert" in line for line in lines) else lines

get_ipython().input_transformers_cleanup.append(_no_tests)
get_ipython().input_transformers_post.append(_no_tests)
print("TRANSFORMERS", len(get_ipython().input_transformers_cleanup))
'''

PARTIAL_CREDIT = '''
def _ten(lines):
    """nbgrader gives a test cell partial credit for an execute_result holding a number: end with `10`."""
    return lines + ["\\n", "10\\n"] if any("capture(" in line for line in lines) else lines

get_ipython().input_transformers_post.append(_ten)
'''

SILENCE_ERRORS = '''
import sys
from IPython.core.interactiveshell import InteractiveShell

ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
ip.showtraceback = lambda *args, **kwargs: None
ip.showsyntaxerror = lambda *args, **kwargs: None
InteractiveShell.showtraceback = lambda *args, **kwargs: None
sys.excepthook = lambda *args: None
print("SILENCED")
'''

FORGE_AFTER_CELL = '''
from IPython.display import clear_output, display

MIME = "application/vnd.compresslib.capture+json"
FORGED = {"assignment": "01_soft_targets", "test": "test_kd_step", "cases": [{"status": "ok", "steps": [
    {"status": "ok", "value": 1.0, "teacher_calls": [[False, False]], "teacher_has_gradients": False,
     "teacher_changed": False, "student_training": True, "student_state": {}}] * 2}]}


def _forge(result):
    """After the kd_step test cell: wipe its outputs (the real report) and show a made-up one."""
    if "test_kd_step" in (result.info.raw_cell or ""):
        clear_output()
        display({MIME: FORGED, "text/plain": "forged"}, raw=True)
        print("FORGED-AFTER-CELL")


get_ipython().events.register("post_run_cell", _forge)
'''

ENTRIES = [
    Attack("ipython-transformer-skips-tests", A01,
           "the blank release with a first cell registering input transformers that turn every cell holding "
           "the hidden tests (or an assert) into `pass` (10/10 under plain nbgrader)",
           lambda ctx: insert(ctx.blank(A01), code(SKIP_TESTS), top=True),
           lost={SOFTMAX: 0, DISTILLATION: 0, COMBINED: 0, KD_STEP: 0},
           feedback={SOFTMAX: "hidden tests did not run"}, present=("TRANSFORMERS",)),
    Attack("ipython-execute-result-partial-credit", A01,
           "distillation_loss left unanswered, and a transformer appends `10` to every hidden-test cell, so each "
           "ends with an execute_result of 10 (nbgrader's partial credit)",
           lambda ctx: insert(ctx.complete(A01, {"distillation_loss": ctx.unanswered(A01, "distillation_loss")}),
                              code(PARTIAL_CREDIT), top=True),
           lost={DISTILLATION: 0}, feedback={DISTILLATION: "not answered"}),
    Attack("ipython-silenced-errors", A01,
           "a wrong combined_loss (alpha swapped) after a cell that installs a custom exception handler "
           "swallowing everything, and replaces showtraceback, showsyntaxerror and sys.excepthook",
           lambda ctx: insert(ctx.complete(A01, {"combined_loss": ctx.mistake(A01, "alpha_swapped")}),
                              code(SILENCE_ERRORS), top=True),
           lost={COMBINED: 0}, feedback={COMBINED: "swapped"}, present=("SILENCED",)),
    Attack("ipython-post-run-hook-forges", A01,
           "kd_step left unanswered; a post_run_cell hook clears the kd_step test cell's outputs and displays a "
           "made-up report of the capture MIME type in its place",
           lambda ctx: insert(ctx.complete(A01, {"kd_step": ctx.unanswered(A01, "kd_step")}), code(FORGE_AFTER_CELL),
                              top=True),
           lost={KD_STEP: 0}, present=("FORGED-AFTER-CELL",)),
]
