"""One knowledge-distillation training step, with the lecture's bug fixed.

The lecture's ``kd_step`` runs *both* forward passes under ``torch.no_grad()``: the student's logits
then carry no graph, ``loss.backward()`` fails (or, in variants that wrap the loss, silently does
nothing) and the student never learns. Only the teacher belongs under ``no_grad``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from compresslib.answers import reference_answer
from compresslib._checks import check_fraction, check_temperature
from compresslib.distill.losses import combined_loss_parts

TEACHER_LOGITS_KEY = "teacher_logits"
LABELS_KEY = "labels"


def logits_of(output) -> torch.Tensor:
    """The logits of a model's output: a tensor, or a Hugging Face output with ``.logits``."""
    return output.logits if hasattr(output, "logits") else output


def model_inputs(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword arguments a model takes from a batch: everything but the labels and cached teacher logits."""
    return {k: v for k, v in batch.items() if k not in (LABELS_KEY, TEACHER_LOGITS_KEY)}


@reference_answer("01_soft_targets", "02_distilbert_student")
def kd_step(
    teacher: nn.Module | None,
    student: nn.Module,
    batch: Mapping[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    temperature: float,
    alpha: float,
) -> dict[str, float]:
    r"""One optimisation step of the student on :math:`\mathcal{L}_C = \alpha \mathcal{L} + (1-\alpha)\mathcal{L}_D`.

    The teacher runs in eval mode (no dropout) under ``torch.no_grad()``: it is a fixed target and
    gets no gradient. The student runs in train mode with autograd on, so ``backward`` reaches its
    parameters.

    Args:
        teacher: the teacher model, or ``None`` when ``batch`` carries cached ``teacher_logits``.
        student: the model being trained.
        batch: a mapping with ``labels`` and the model's inputs (``input_ids``, ``attention_mask``, ... or
            whatever keyword arguments the models take); optionally ``teacher_logits`` computed once
            beforehand, in which case the teacher is not run.
        optimizer: over the student's parameters.
        temperature: ``T > 0`` for the soft part.
        alpha: weight of the hard loss, in [0, 1].

    Returns:
        ``{"loss": ..., "hard": ..., "soft": ...}`` as Python floats.
    """
    temperature = check_temperature(temperature)
    alpha = check_fraction(alpha, "alpha")
    if LABELS_KEY not in batch:
        raise ValueError("batch must contain 'labels' (the ground truth for the hard loss)")
    if teacher is None and TEACHER_LOGITS_KEY not in batch:
        raise ValueError("teacher is None, so batch must carry precomputed 'teacher_logits'")

    device = next(student.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    inputs = model_inputs(batch)

    if TEACHER_LOGITS_KEY in batch:
        teacher_logits = batch[TEACHER_LOGITS_KEY]
    else:
        teacher.eval()
        with torch.no_grad():
            teacher_logits = logits_of(teacher(**inputs))

    student.train()
    student_logits = logits_of(student(**inputs))
    parts = combined_loss_parts(student_logits, teacher_logits, batch[LABELS_KEY], alpha, temperature)

    optimizer.zero_grad(set_to_none=True)
    parts.total.backward()
    optimizer.step()
    return {"loss": parts.total.item(), "hard": parts.hard.item(), "soft": parts.soft.item()}
