"""Trusted scoring: a hidden test's report from the sandbox, judged against the recorded fixture.

A *judge* (one per graded test, in the per-notebook modules beside this one) looks at what the
student's functions returned on one hidden case and either accepts it or returns a message naming the
likely mistake. Messages describe the student's own output, never the expected values. The report is
untrusted plain data: anything malformed is a failure of that test, never an exception that could
stop grading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from compresslib.capture.plain import PlainDataError, array_of, describe
from compresslib.capture.registry import Registry
from compresslib.grading.fixtures import test_cases

JUDGE_MODULES = {
    "01_soft_targets": "compresslib.grading.soft_targets",
    "02_distilbert_student": "compresslib.grading.distilbert_student",
    "03_lottery_tickets": "compresslib.grading.lottery_tickets",
    "04_precision_rank_sharing": "compresslib.grading.precision_rank_sharing",
}

Judge = Callable[[Mapping, Mapping], "str | None"]
JUDGES = Registry("judge", JUDGE_MODULES)
judge = JUDGES.register
"""``@judge(assignment, test)`` registers ``function(case, observed)``: it returns None when the observed
output is right, or raises :class:`Mistake` (or returns its message) when it is not."""
judge_of = JUDGES.get


class Mistake(Exception):
    """Raised inside a judge: the message names what is wrong with the student's output."""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str

    @classmethod
    def ok(cls, message: str = "hidden tests passed") -> Verdict:
        return cls(True, message)


# --- what every judge checks first ---------------------------------------------------------------


def require_ok(observed: Mapping, what: str, hints: Mapping[str, str] | None = None) -> None:
    """Raise a Mistake unless ``observed`` says the call returned normally. ``hints`` maps a fragment
    of an error message to an explanation (e.g. the lecture's no_grad bug)."""
    status = observed.get("status") if isinstance(observed, Mapping) else None
    if status == "ok":
        return
    if status == "not_implemented":
        raise Mistake(f"{what} is not answered yet: it raises NotImplementedError")
    if status == "missing":
        raise Mistake(f"the notebook defines no function {observed.get('name')!r}: keep the name the notebook asks for")
    if status == "raised":
        error = str(observed.get("error", ""))[:600]
        for fragment, hint in (hints or {}).items():
            if fragment in error:
                raise Mistake(f"{what} raised {error}: {hint}")
        raise Mistake(f"{what} raised {error}{_library_hint(error)}")
    raise Mistake(f"{what}: the grader could not read what the function did ({status!r})")


def _library_hint(error: str) -> str:
    if "SequenceClassifierOutput" in error or "ModelOutput" in error:
        return " (a transformers model returns an output object: its logits are output.logits)"
    if "unexpected keyword argument" in error and ("labels" in error or "teacher_logits" in error):
        return " (pass the model only its inputs: drop 'labels' and 'teacher_logits' from the batch)"
    if "LockedAnswer" in error or "is written in notebook" in error:
        return " (the library's version is locked until this assignment's deadline: write your own)"
    return ""


def as_array(plain, what: str) -> np.ndarray:
    """The student's tensor as a NumPy array, or a Mistake saying what came back instead."""
    try:
        return array_of(plain, what)
    except PlainDataError:
        raise Mistake(f"{what} should return a tensor, got {describe(plain)}") from None


def as_scalar(plain, what: str) -> float:
    """A scalar result (a 0-d or one-element tensor, or a Python number) as a float."""
    if isinstance(plain, bool):
        raise Mistake(f"{what} should return a number, got a bool")
    if isinstance(plain, int | float):
        return float(plain)
    if isinstance(plain, str) and plain in ("nan", "inf", "-inf"):
        return float(plain)
    array = as_array(plain, what)
    if array.size != 1:
        raise Mistake(f"{what} should return a single number (a 0-d tensor), got a tensor of shape "
                      f"{array.shape}: did you forget to average over the examples?")
    return float(array.reshape(()))


def close(actual, expected, *, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return actual.shape == expected.shape and bool(np.allclose(actual, expected, rtol=rtol, atol=atol))


def name_the_mistake(actual, wrong: Mapping, messages: Mapping[str, str], *, rtol: float = 1e-4,
                     atol: float = 1e-6) -> str | None:
    """The message of the first catalogued wrong answer whose recorded output equals ``actual``."""
    for key, value in wrong.items():
        if key in messages and close(actual, value, rtol=rtol, atol=atol):
            return messages[key]
    return None


def short(array: np.ndarray) -> str:
    """The student's own output, briefly (feedback shows it; it never shows the expected value)."""
    array = np.asarray(array)
    if array.size == 1:
        return f"{float(array.reshape(())):.6g}"
    head = ", ".join(f"{x:.4g}" for x in array.reshape(-1)[:4])
    return f"an array of shape {array.shape} starting [{head}{', ...' if array.size > 4 else ''}]"


# --- scoring one report --------------------------------------------------------------------------


def score_report(assignment: str, test: str, report) -> Verdict:
    """The verdict of one graded test cell: every hidden case must pass its judge."""
    if not isinstance(report, Mapping) or report.get("test") != test or report.get("assignment") != assignment:
        return Verdict(False, "the grader received no valid result from this cell's hidden tests")
    if "too_large" in report:
        return Verdict(False, "the result of this cell's hidden tests was too large to grade "
                              "(did a function return something enormous?)")
    cases = test_cases(assignment, test)
    observed = report.get("cases")
    if not isinstance(observed, list) or len(observed) != len(cases):
        return Verdict(False, "the hidden tests of this cell did not complete")
    check = judge_of(assignment, test)
    for case, seen in zip(cases, observed):
        try:
            message = check(case, seen if isinstance(seen, Mapping) else {})
        except Mistake as mistake:
            message = str(mistake)
        except Exception as error:  # noqa: BLE001 - the report is untrusted: whatever it holds fails this test only
            message = f"the grader could not read this cell's result ({type(error).__name__})"
        if message:
            return Verdict(False, message)
    return Verdict.ok()
