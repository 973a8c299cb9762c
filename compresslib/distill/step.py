"""Knowledge-distillation training steps, with the lecture's bug fixed.

The lecture's ``kd_step`` runs *both* forward passes under ``torch.no_grad()``: the student's logits
then carry no graph, ``loss.backward()`` fails (or, in variants that wrap the loss, silently does
nothing) and the student never learns. Only the teacher belongs under ``no_grad``.

:func:`kd_step` is the lecture's step (logits only). :func:`cached_kd_step`, :func:`cached_transfer_kd_step`
and :func:`cached_kd_hidden_step` build steps with the ``step(model, batch, optimizer)`` signature that
:func:`compresslib.training.fit` calls, for batches that carry the teacher's outputs computed once
beforehand (the batch conventions are in :mod:`compresslib.batches`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from compresslib._checks import check_fraction, check_temperature
from compresslib.answers import reference_answer
from compresslib.batches import (
    EXAMPLE_INDEX_KEY,
    LABELS_KEY,
    TEACHER_LOGITS_KEY,
    TRANSFER_PREFIX,
    logits_of,
    model_inputs,
    split_streams,
)
from compresslib.distill.intermediate import HIDDEN_LOSSES, hidden_states_loss
from compresslib.distill.losses import combined_loss_parts, distillation_loss

Step = Callable[[nn.Module, Mapping[str, torch.Tensor], torch.optim.Optimizer], dict[str, float]]


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


def cached_kd_step(*, temperature: float, alpha: float) -> Step:
    """:func:`kd_step` without a teacher, for batches that carry cached ``teacher_logits``:
    ``step(student, batch, optimizer)``."""
    temperature = check_temperature(temperature)
    alpha = check_fraction(alpha, "alpha")

    def step(student: nn.Module, batch: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> dict[str, float]:
        return kd_step(None, student, batch, optimizer, temperature=temperature, alpha=alpha)

    return step


def cached_transfer_kd_step(*, temperature: float, alpha: float) -> Step:
    r"""A step for the label-scarce setting: hard labels on a small labelled set, the teacher's soft targets
    on a larger *transfer set* whose labels are never read.

    .. math::

        \mathcal{L} = \alpha\, \mathcal{L}(z^{lab}, y) + (1 - \alpha)\, \mathcal{L}_D(z^{tr}, v^{tr}; T)

    :math:`\mathcal{L}` is the cross-entropy at temperature 1 averaged over the labelled batch (logits
    :math:`z^{lab}`, labels :math:`y`), :math:`\mathcal{L}_D` the :math:`T^2`-scaled distillation loss
    (:func:`~compresslib.distill.losses.distillation_loss`) averaged over the transfer batch, whose cached
    teacher logits are :math:`v^{tr}`. Hinton et al.'s transfer set; with the labelled batch equal to the
    transfer batch this is :func:`cached_kd_step`.

    The batch merges two streams (:class:`compresslib.training.StreamLoader`): the labelled one under plain
    keys (model inputs and ``labels``), the transfer one under ``transfer.`` keys (model inputs and
    ``teacher_logits``; a ``transfer.labels`` entry is ignored). A part whose weight is 0 is not computed and
    its stream may be absent: ``alpha = 0`` is pure soft-target training on the transfer set alone,
    ``alpha = 1`` ordinary training on the labels alone.

    Returns ``{"loss", "hard", "soft"}`` as floats, without the part that was not computed.
    """
    temperature = check_temperature(temperature)
    alpha = check_fraction(alpha, "alpha")

    def step(student: nn.Module, batch: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> dict[str, float]:
        labelled, transfer = split_streams(batch, TRANSFER_PREFIX)
        if alpha > 0 and LABELS_KEY not in labelled:
            raise ValueError(f"alpha = {alpha} > 0, so batch must carry a labelled stream with 'labels'")
        if alpha < 1 and TEACHER_LOGITS_KEY not in transfer:
            raise ValueError(f"alpha = {alpha} < 1, so batch must carry a transfer stream with "
                             f"'{TRANSFER_PREFIX}{TEACHER_LOGITS_KEY}'")
        student.train()
        record, total = {}, 0.0
        if alpha > 0:
            logits = logits_of(student(**model_inputs(labelled)))
            hard = torch.nn.functional.cross_entropy(logits.float(), labelled[LABELS_KEY])
            total = total + alpha * hard
            record["hard"] = hard.item()
        if alpha < 1:
            logits = logits_of(student(**model_inputs(transfer)))
            soft = distillation_loss(logits, transfer[TEACHER_LOGITS_KEY], temperature)
            total = total + (1 - alpha) * soft
            record["soft"] = soft.item()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return {"loss": total.item(), **record}

    return step


def cached_kd_hidden_step(
    teacher_hidden: torch.Tensor,
    student_to_cache: Mapping[int, int],
    *,
    temperature: float,
    alpha: float,
    weight: float,
    loss: str = "cosine",
) -> Step:
    r"""A step on :math:`\mathcal{L}_C + w \, \mathcal{L}_{hidden}` against teacher hidden states cached once.

    :math:`\mathcal{L}_C = \alpha \mathcal{L} + (1-\alpha)\mathcal{L}_D` is the combined loss on the
    cached ``teacher_logits``; :math:`\mathcal{L}_{hidden} = \frac{1}{|M|}\sum_{(s,k) \in M}
    \mathcal{L}(H^S_s, H^T_k)` (:func:`~compresslib.distill.intermediate.hidden_states_loss`, masked by the
    attention mask) pairs student hidden-state entry ``s`` with cached teacher layer ``k``.

    Args:
        teacher_hidden: ``(K, N, S_max, d)``: the teacher's hidden states of ``K`` layers for the ``N``
            examples of the training set, padded to ``S_max`` positions (any float dtype; used as float32).
        student_to_cache: ``{s: k}``: student ``hidden_states`` entry ``s`` learns from cached layer ``k``.
        temperature, alpha: of the combined loss (``T > 0``, ``alpha`` in [0, 1]).
        weight: ``w >= 0``, the hidden-state loss's weight.
        loss: ``"cosine"`` or ``"mse"`` (equal widths).

    The batch carries ``labels``, ``teacher_logits`` and ``example_index`` (each example's row ``n`` in
    ``teacher_hidden``) besides the model's inputs, which must include ``input_ids`` and ``attention_mask``.
    Returns ``{"loss", "hard", "soft", "hidden"}`` as floats.
    """
    temperature = check_temperature(temperature)
    alpha = check_fraction(alpha, "alpha")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ValueError(f"weight must be a non-negative number, got {weight!r}")
    if loss not in HIDDEN_LOSSES:
        raise ValueError(f"loss must be one of {HIDDEN_LOSSES}, got {loss!r}")
    if not isinstance(teacher_hidden, torch.Tensor) or teacher_hidden.dim() != 4:
        raise ValueError("teacher_hidden must be a (layers, examples, positions, width) tensor, got "
                         f"{tuple(teacher_hidden.shape) if isinstance(teacher_hidden, torch.Tensor) else type(teacher_hidden).__name__}")
    bad = {s: k for s, k in student_to_cache.items() if not 0 <= k < teacher_hidden.shape[0]}
    if bad:
        raise ValueError(f"student_to_cache points at cached layers {bad}; the cache holds {teacher_hidden.shape[0]}")

    def step(student: nn.Module, batch: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> dict[str, float]:
        for key in (LABELS_KEY, TEACHER_LOGITS_KEY, EXAMPLE_INDEX_KEY):
            if key not in batch:
                raise ValueError(f"batch must contain {key!r} for the cached hidden-state step")
        student.train()
        inputs = model_inputs(batch)
        output = student(**inputs, output_hidden_states=True)
        parts = combined_loss_parts(output.logits, batch[TEACHER_LOGITS_KEY], batch[LABELS_KEY], alpha, temperature)
        rows = batch[EXAMPLE_INDEX_KEY].long().cpu()
        length = inputs["input_ids"].shape[1]
        device = output.logits.device
        teacher_states = [teacher_hidden[k, rows, :length].to(device).float() for k in range(teacher_hidden.shape[0])]
        hidden = hidden_states_loss(output.hidden_states, teacher_states, dict(student_to_cache), loss=loss,
                                    mask=inputs["attention_mask"])
        total = parts.total + weight * hidden
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return {"loss": total.item(), "hard": parts.hard.item(), "soft": parts.soft.item(), "hidden": hidden.item()}

    return step
