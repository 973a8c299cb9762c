"""What every graded test cell uses: fixtures with provenance, and comparisons that name the mistake.

A fixture file ``fixtures/<assignment>.json`` holds, for each graded function, cases of inputs, the
expected output, and the outputs of the catalogued wrong answers, all recorded once by a recorder
(``python -m compresslib.grading.record``) and stored with their provenance. Test cells compare a
student's output with the stored values, never with compresslib's own implementation (a student's
notebook can import that too), and when the output matches a catalogued wrong answer the failure
message names that mistake.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from importlib import resources

import torch

FIXTURES_PACKAGE = "compresslib.grading"


class GradingError(AssertionError):
    """A graded check failed; the message says what was expected and the likely mistake."""


@functools.cache
def _load(assignment: str) -> dict:
    path = resources.files(FIXTURES_PACKAGE) / "fixtures" / f"{assignment}.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no grading fixtures for {assignment!r} at {path}: run `python -m compresslib.grading.record {assignment}`"
        ) from None
    return json.loads(text)


def load_fixture(assignment: str) -> dict:
    """The fixture file of an assignment: ``{"provenance": {...}, "<check>": {...}, ...}``."""
    return _load(assignment)


def as_tensor(value, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(value, dtype=dtype)


def to_number(value, what: str) -> float:
    """A student's scalar result as a Python float, or a GradingError saying what came back instead."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise GradingError(
                f"{what} should return a single number (a 0-d tensor), got a tensor of shape {tuple(value.shape)}: "
                "did you forget to average over the examples?"
            )
        return float(value.detach().double().item())
    if isinstance(value, (int, float)):
        return float(value)
    raise GradingError(f"{what} should return a tensor, got {type(value).__name__}")


def close(a, b, *, rtol: float, atol: float) -> bool:
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol))


def diagnose(actual, expected, wrong_answers: dict, *, what: str, rtol: float = 1e-4, atol: float = 1e-6,
             messages: dict[str, str]) -> None:
    """Pass if ``actual`` matches ``expected``; else raise a GradingError naming the catalogued mistake
    whose recorded output ``actual`` matches, or giving the ratio to the expected value."""
    if close(actual, expected, rtol=rtol, atol=atol):
        return
    for key, value in wrong_answers.items():
        if close(actual, value, rtol=rtol, atol=atol):
            raise GradingError(f"{what}: {messages[key]}")
    actual_t = torch.as_tensor(actual, dtype=torch.float64)
    expected_t = torch.as_tensor(expected, dtype=torch.float64)
    detail = f"{what}: expected {_short(expected_t)}, got {_short(actual_t)}"
    if actual_t.shape != expected_t.shape:
        raise GradingError(f"{what}: expected shape {tuple(expected_t.shape)}, got {tuple(actual_t.shape)}")
    if not torch.isfinite(actual_t).all():
        raise GradingError(detail + " (not finite: an exp() overflowed or a log() saw 0?)")
    if actual_t.numel() == 1 and expected_t.item() != 0:
        ratio = actual_t.item() / expected_t.item()
        detail += f" (ratio {ratio:.4g})"
    raise GradingError(detail)


def _short(t: torch.Tensor) -> str:
    if t.numel() == 1:
        return f"{t.item():.6g}"
    flat = ", ".join(f"{x:.4g}" for x in t.flatten()[:4].tolist())
    return f"tensor of shape {tuple(t.shape)} starting [{flat}{', ...' if t.numel() > 4 else ''}]"


def exactly_factor(ratio: float, factor: float, rel: float = 1e-4) -> bool:
    return math.isclose(ratio, factor, rel_tol=rel)


def error_hint(error: Exception) -> str:
    """A hint for the common transformers slips behind ``error`` ("" when there is none)."""
    text = str(error)
    if "SequenceClassifierOutput" in text or "ModelOutput" in text:
        return " (a transformers model returns an output object: its logits are output.logits)"
    if "unexpected keyword argument" in text and ("labels" in text or "teacher_logits" in text):
        return " (pass the model only its inputs: drop 'labels' and 'teacher_logits' from the batch)"
    return ""


def call_student(fn, what: str, *args, **kwargs):
    """``fn(*args, **kwargs)``, the student's function. If it raises (anything but NotImplementedError,
    which must reach nbgrader so a blank cell scores 0, or a GradingError from a nested check), the
    error becomes a GradingError saying which call failed, with a hint for the common transformers
    slips, and the original kept as its cause."""
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, GradingError):
        raise
    except Exception as error:
        raise GradingError(f"{what} raised {type(error).__name__}: {error}{error_hint(error)}") from error


@contextlib.contextmanager
def graded_alone(fn, **references):
    """Grade ``fn`` on its own merits: while it runs, the earlier functions it calls by name in the
    student's notebook (e.g. their ``distillation_loss`` inside ``combined_loss``) are replaced by the
    reference versions, so one mistake is not charged again in every later cell."""
    namespace = getattr(fn, "__globals__", None)
    present = {name: namespace[name] for name in references if namespace is not None and name in namespace}
    try:
        for name in present:
            namespace[name] = references[name]
        yield
    finally:
        for name, value in present.items():
            namespace[name] = value
