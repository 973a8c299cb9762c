"""What runs in the student's kernel when a notebook is graded: the student's functions called on the
grader's hidden inputs, their results reported as plain data.

Each hidden test cell of a graded notebook holds one line, restored by nbgrader from the gradebook at
grading time (students never see it)::

    from compresslib.capture import capture; capture("01_soft_targets", "test_distillation_loss", globals())

:func:`capture` reads the hidden inputs of that test from the file the sandbox binds in
(``$COMPRESSLIB_GRADER_INPUTS``), calls the student's functions through the test's *harness* (one per
graded test, in this package's per-notebook modules), and displays what came back as one output of MIME
type :data:`MIME`: JSON numbers and arrays, size-limited. The expected values never enter the kernel.
A trusted process outside the sandbox compares the report with the recorded fixtures and decides the
cell's score (``compresslib.grading``), so nothing the student's code does inside its own process can
raise its score: only returning the right values on inputs it has not seen.

A harness tells *how* a function is called and *what is observed* (its return value, gradients, the
modes a model was left in, ...). It never says what the right answer is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

from compresslib.capture.plain import to_plain
from compresslib.capture.registry import Registry

MIME = "application/vnd.compresslib.capture+json"
INPUTS_VARIABLE = "COMPRESSLIB_GRADER_INPUTS"
MAX_REPORT_BYTES = 4_000_000
GRADER_SKIP_TAG = "grader-skip"
"""Cell tag of a notebook's ungraded experiments (fine-tuning, sweeps, plots): the grading executor
skips them, since no hidden test needs what they compute and the score never depends on them."""

# assignment -> the module holding its harnesses
HARNESS_MODULES = {
    "01_soft_targets": "compresslib.capture.soft_targets",
    "02_distilbert_student": "compresslib.capture.distilbert_student",
    "03_lottery_tickets": "compresslib.capture.lottery_tickets",
    "04_precision_rank_sharing": "compresslib.capture.precision_rank_sharing",
}

Harness = Callable[[Mapping, Mapping], dict]
HARNESSES = Registry("capture harness", HARNESS_MODULES)
harness = HARNESSES.register
"""``@harness(assignment, test)`` registers ``function(inputs, namespace) -> observed`` as a test's harness."""
harness_of = HARNESSES.get


class MissingFunction(LookupError):
    """The notebook defines no function of the name a graded test calls."""


def student_function(namespace: Mapping, name: str) -> Callable:
    """The student's function ``name`` from the notebook's namespace, or MissingFunction."""
    function = namespace.get(name)
    if not callable(function):
        raise MissingFunction(name)
    return function


def observe(function: Callable, *args, **kwargs) -> dict:
    """Call ``function``; report what it returned, or how it failed, as plain data."""
    try:
        return {"status": "ok", "value": to_plain(function(*args, **kwargs))}
    except NotImplementedError as error:
        return {"status": "not_implemented", "error": str(error)[:500]}
    except MissingFunction as error:
        return {"status": "missing", "name": str(error)}
    except RecursionError:
        return {"status": "raised", "error": "RecursionError: maximum recursion depth exceeded"}
    except Exception as error:  # the student's code may raise anything; it is reported, not judged here
        return {"status": "raised", "error": f"{type(error).__name__}: {error}"[:1000]}


def run_harness(assignment: str, test: str, cases: list, namespace: Mapping) -> dict:
    """The report of one graded test: its harness run on every hidden case (the trusted side scores it)."""
    run = harness_of(assignment, test)
    observed = []
    for case in cases:
        try:
            observed.append(run(case, namespace))
        except NotImplementedError as error:
            observed.append({"status": "not_implemented", "error": str(error)[:500]})
        except MissingFunction as error:
            observed.append({"status": "missing", "name": str(error)})
        except Exception as error:
            observed.append({"status": "raised", "error": f"{type(error).__name__}: {error}"[:1000]})
    return {"assignment": assignment, "test": test, "cases": observed}


def load_inputs(path: str | None = None) -> dict:
    """The hidden inputs the grader bound into the sandbox: ``{test: {"cases": [...]}}``."""
    path = path or os.environ.get(INPUTS_VARIABLE)
    if not path:
        raise RuntimeError(
            f"no grading inputs: ${INPUTS_VARIABLE} is not set. Hidden tests only run when the course grades "
            "a submission; use the visible tests and `nbgrader validate` to check your work."
        )
    with open(path) as handle:
        return json.load(handle)


def capture(assignment: str, test: str, namespace: Mapping) -> None:
    """Run the hidden test ``test`` of ``assignment`` on the student's functions in ``namespace`` and
    display the report as one ``MIME`` output of the current cell. Outside grading (no inputs bound in,
    e.g. when a walkthrough is built) it only says so."""
    if not os.environ.get(INPUTS_VARIABLE):
        print(f"(the hidden tests of {test} run when the course grades a submission)")
        return
    inputs = load_inputs().get(test, {"cases": []})
    report = run_harness(assignment, test, inputs["cases"], namespace)
    text = json.dumps(report)
    if len(text) > MAX_REPORT_BYTES:
        report = {"assignment": assignment, "test": test, "too_large": len(text)}
    from IPython.display import display

    display({MIME: report}, raw=True)
