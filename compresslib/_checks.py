"""Argument checks shared by the library: each raises ``ValueError`` naming the argument.

They run before any work is done, so a bad call fails fast with a message a user can act on.
"""

from __future__ import annotations

import math
from numbers import Real

import torch


def check_temperature(temperature: float, name: str = "temperature") -> float:
    """Return ``temperature`` as a float, or raise if it is not a positive finite number."""
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"{name} must be a single positive number, got a tensor of shape {tuple(temperature.shape)}")
        temperature = temperature.item()
    if isinstance(temperature, bool) or not isinstance(temperature, Real):
        raise ValueError(f"{name} must be a positive finite number, got {temperature!r}")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"{name} must be a positive finite number (T > 0), got {temperature!r}")
    return float(temperature)


def check_fraction(value: float, name: str, *, low_inclusive=True, high_inclusive=True) -> float:
    """Return ``value`` as a float, or raise if it lies outside [0, 1] (bounds as asked)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    low_ok = value >= 0 if low_inclusive else value > 0
    high_ok = value <= 1 if high_inclusive else value < 1
    if not (low_ok and high_ok):
        interval = ("[" if low_inclusive else "(") + "0, 1" + ("]" if high_inclusive else ")")
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return float(value)


def check_logits(logits: torch.Tensor, name: str) -> None:
    """Raise unless ``logits`` is a floating-point tensor of at least one dimension with finite values."""
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.dim() == 0:
        raise ValueError(f"{name} must have a class dimension, got a scalar")
    if logits.shape[-1] == 0:
        raise ValueError(f"{name} has an empty class dimension")
    if not torch.isfinite(logits).all():
        bad = "NaN" if torch.isnan(logits).any() else "infinite"
        raise ValueError(f"{name} contains {bad} values; check the model's outputs before the loss")


def check_same_shape(student: torch.Tensor, teacher: torch.Tensor, student_name="student_logits",
                     teacher_name="teacher_logits") -> None:
    """Raise when the student's and teacher's logits do not match, naming the vocabulary when that differs."""
    if student.shape[-1] != teacher.shape[-1]:
        raise ValueError(
            f"{student_name} and {teacher_name} have different vocabularies / class counts: "
            f"{student.shape[-1]} vs {teacher.shape[-1]} (last dimension); distillation needs the same output space"
        )
    if student.shape != teacher.shape:
        raise ValueError(
            f"{student_name} has shape {tuple(student.shape)} but {teacher_name} has shape {tuple(teacher.shape)}; "
            "they must match example for example (and position for position)"
        )


def check_position_mask(mask: torch.Tensor, shape: torch.Size, what: str) -> torch.Tensor:
    """Return ``mask`` as booleans, or raise unless it is a 0/1 tensor of ``shape`` selecting something.

    ``what`` says which shape that is (e.g. "the logits' shape without the class dimension")."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a tensor of shape {tuple(shape)} ({what}), got {type(mask).__name__}")
    if mask.shape != shape:
        raise ValueError(f"mask must have shape {tuple(shape)} ({what}), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool and not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask must hold only 0/1 (or booleans): 1 marks a position that counts in the loss")
    mask = mask.bool()
    if not mask.any():
        raise ValueError("mask selects no position: the loss would be an average over nothing")
    return mask
