"""Which library functions are the reference answers of a graded notebook.

A graded notebook asks students to write a function whose reference version lives in this library
(``distillation_loss`` in notebook 01, ``magnitude_mask`` in notebook 03, ...). Each such reference is
marked where it is defined::

    @reference_answer("01_soft_targets")
    def distillation_loss(student_logits, teacher_logits, temperature): ...

The mark changes nothing at run time. It tells the student-kit builder
(``python -m compresslib.course student-kit``) which bodies to replace by an error naming the notebook
where the student writes the function, unless that assignment is unlocked (its deadline has passed).
Mark every library function that computes a graded answer, including equivalents under another name,
so that no import in the student kit hands the answer over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

REFERENCE_ANSWERS: dict[str, list[str]] = {}
"""assignment -> qualified names (``module.function``) of the library's reference answers for it."""


def reference_answer(*assignments: str) -> Callable[[F], F]:
    """Mark the decorated function as the reference answer of a function graded in each of ``assignments``
    (the student kit keeps its body only when every one of them is unlocked)."""
    if not assignments or not all(isinstance(a, str) and a for a in assignments):
        raise ValueError(f"reference_answer needs assignment names such as '01_soft_targets', got {assignments!r}")

    def mark(function: F) -> F:
        for assignment in assignments:
            REFERENCE_ANSWERS.setdefault(assignment, []).append(f"{function.__module__}.{function.__qualname__}")
        return function

    return mark


class LockedAnswer(NotImplementedError):
    """Raised by a reference answer in the student kit: the student writes this function in a notebook."""
