r"""Soft targets and the distillation losses of the lecture (Hinton, Vinyals & Dean, 2015).

Notation follows the lecture: ``z`` are the student's logits and ``p`` its distribution, ``v`` the
teacher's logits and ``q`` its distribution, ``T`` the temperature, ``K`` the number of classes
(or the vocabulary size for word-level distillation).

All losses compute in float32 (float64 stays float64) through ``log_softmax`` whatever the input dtype (float16, bfloat16,
float32), so logits up to about 1e4 in size and temperatures from 0.05 to 100 give finite values
and finite gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from compresslib.answers import reference_answer
from compresslib._checks import (
    check_fraction,
    check_logits,
    check_position_mask,
    check_same_shape,
    check_temperature,
)


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 upcast to float32; float32 and float64 kept as they are."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


@reference_answer("01_soft_targets")
def softmax_with_temperature(logits: torch.Tensor, temperature: float, dim: int = -1) -> torch.Tensor:
    r"""Softened softmax: :math:`p_k = \exp(z_k / T) / \sum_i \exp(z_i / T)`.

    ``T = 1`` is the ordinary softmax; ``T > 1`` flattens the distribution (the teacher's "dark
    knowledge" about which wrong classes are nearly right shows up), ``T -> 0`` approaches argmax.

    Args:
        logits: tensor ``(..., K)`` of any floating dtype.
        temperature: ``T``, a positive finite number.
        dim: the class dimension.

    Returns:
        probabilities of the same shape and dtype as ``logits`` (computed in at least float32).
    """
    temperature = check_temperature(temperature)
    check_logits(logits, "logits")
    return torch.softmax(_at_least_float32(logits) / temperature, dim=dim).to(logits.dtype)


@reference_answer("01_soft_targets")
def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    *,
    scale_by_t2: bool = True,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The lecture's distillation loss :math:`\mathcal{L}_D`, scaled by :math:`T^2`.

    .. math::

        \mathcal{L}_D = -\frac{T^2}{N} \sum_{n} \sum_{k} q_{n,k} \log p_{n,k},
        \qquad p = \mathrm{softmax}(z / T),\; q = \mathrm{softmax}(v / T)

    the cross-entropy of the student's softened distribution ``p`` against the teacher's softened
    distribution ``q``, averaged over the ``N`` examples (over the unmasked positions when the logits
    are token-level, shape ``(batch, seq, vocab)``, as in word-level distillation of a language model).

    Gradient. For one example, :math:`\partial \mathcal{L}_D / \partial z_k = T^2 \cdot \frac{1}{T}(p_k - q_k)
    = T (p_k - q_k)`. Without the :math:`T^2` factor the gradient is :math:`\frac{1}{T}(p_k - q_k)`, whose
    size falls as :math:`1/T^2` for large T (since :math:`p_k - q_k \approx (z_k - v_k)/(K T)` for zero-mean
    logits); the :math:`T^2` keeps the soft loss's gradient about as large as the hard loss's when T
    changes, so ``alpha`` need not be retuned. (The lecture writes the same gradient with the roles of
    the letters swapped; here ``p`` is always the student.)

    Relation to KL. :math:`\mathrm{KL}(q \| p) = \sum_k q_k \log q_k - \sum_k q_k \log p_k`, so the cross-entropy
    and the KL divergence differ by the teacher's entropy :math:`H(q)`, which does not depend on the
    student: the two losses have equal gradients with respect to the student's logits (PyTorch's
    ``nn.KLDivLoss(reduction='batchmean')`` on ``log_softmax(z/T)`` and ``softmax(v/T)`` gives the KL form).

    The teacher is a fixed target: no gradient flows into ``teacher_logits``.

    Args:
        student_logits: ``(N, K)`` or ``(B, S, V)``.
        teacher_logits: the same shape as ``student_logits``.
        temperature: ``T > 0``.
        scale_by_t2: multiply by :math:`T^2` (default, as Hinton et al. and DistilBERT do).
        mask: optional 0/1 or boolean tensor of shape ``student_logits.shape[:-1]``; only positions where
            it is 1 count, and the mean is over those positions.

    Returns:
        a scalar tensor, float32 (float64 for float64 inputs).
    """
    temperature = check_temperature(temperature)
    check_logits(student_logits, "student_logits")
    check_logits(teacher_logits, "teacher_logits")
    check_same_shape(student_logits, teacher_logits)
    if mask is not None:
        mask = check_position_mask(mask, student_logits.shape[:-1], "the logits' shape without the class dimension")

    log_p = F.log_softmax(_at_least_float32(student_logits) / temperature, dim=-1)
    q = F.softmax(_at_least_float32(teacher_logits.detach()) / temperature, dim=-1)
    per_position = -(q * log_p).sum(dim=-1)
    loss = per_position[mask].mean() if mask is not None else per_position.mean()
    return loss * temperature**2 if scale_by_t2 else loss


def _check_labels(labels: torch.Tensor, logits: torch.Tensor, ignore_index: int) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError("labels must be an integer tensor of class indices")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels must have the logits' shape without the class dimension, {tuple(logits.shape[:-1])}, "
            f"got {tuple(labels.shape)}"
        )
    valid = labels != ignore_index
    if not valid.any():
        raise ValueError(f"every label equals ignore_index={ignore_index}: there is nothing to learn from")
    num_classes = logits.shape[-1]
    counted = labels[valid]
    if (counted < 0).any() or (counted >= num_classes).any():
        raise ValueError(
            f"labels must lie in [0, {num_classes - 1}] (or equal ignore_index={ignore_index}), "
            f"got values from {int(counted.min())} to {int(counted.max())}"
        )
    return valid


class CombinedLoss(NamedTuple):
    """The combined loss and its two parts (all scalar tensors)."""

    total: torch.Tensor
    hard: torch.Tensor
    soft: torch.Tensor


@reference_answer("01_soft_targets")
def combined_loss_parts(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    *,
    ignore_index: int = -100,
) -> CombinedLoss:
    r""":func:`combined_loss` with its hard and soft parts, for logging."""
    alpha = check_fraction(alpha, "alpha")
    temperature = check_temperature(temperature)
    check_logits(student_logits, "student_logits")
    valid = _check_labels(labels, student_logits, ignore_index)
    soft = distillation_loss(student_logits, teacher_logits, temperature, mask=valid)
    hard = F.cross_entropy(
        _at_least_float32(student_logits).reshape(-1, student_logits.shape[-1]), labels.reshape(-1), ignore_index=ignore_index
    )
    return CombinedLoss(alpha * hard + (1 - alpha) * soft, hard, soft)


@reference_answer("01_soft_targets")
def combined_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    *,
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""The lecture's combined loss :math:`\mathcal{L}_C = \alpha \mathcal{L} + (1 - \alpha) \mathcal{L}_D`.

    :math:`\mathcal{L} = -\frac{1}{N}\sum_n \log p_{n, x_n}` is the ordinary cross-entropy with the ground
    truth ``labels`` at temperature 1 ("temperature is set to 1 for ground truth"), and
    :math:`\mathcal{L}_D` is :func:`distillation_loss` at temperature ``T`` with the :math:`T^2` factor.
    Positions whose label is ``ignore_index`` (padding) count in neither part.

    Args:
        student_logits, teacher_logits: ``(N, K)`` or ``(B, S, V)``.
        labels: integer class indices of shape ``student_logits.shape[:-1]``.
        alpha: weight of the hard loss, in [0, 1] (``alpha = 1``: no distillation; ``0``: soft targets only).
        temperature: ``T > 0`` for the soft part.
    """
    return combined_loss_parts(
        student_logits, teacher_logits, labels, alpha, temperature, ignore_index=ignore_index
    ).total
