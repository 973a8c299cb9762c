r"""Distillation beyond the logits: hidden states and attention maps (the lecture's "distil each layer").

Notation: ``h^S_{b,p}`` and ``h^T_{b,p}`` are the student's and the teacher's hidden vectors at example
``b`` and token position ``p`` (widths ``d_S`` and ``d_T``); ``A^S_{b,a,i,j}`` and ``A^T_{b,a,i,j}`` are
attention probabilities of head ``a``, query ``i``, key ``j`` (each row ``A_{b,a,i,:}`` sums to 1, since
attention is a softmax). ``P`` is the set of counted positions (the attention mask's ones), ``|P|``
its size.

Layer maps. A map pairs a student index with a teacher index, ``{s: t}`` or ``[(s, t), ...]``:

* for **hidden states**, indices address the tuple that ``output_hidden_states=True`` returns, whose
  entry 0 is the embedding output and entry ``l`` the output of layer ``l`` (so ``L + 1`` entries);
* for **attention maps**, indices address ``output_attentions=True``'s tuple, entry ``l`` being layer
  ``l``'s map (``L`` entries, numbered from 0).

:func:`uniform_layer_map` builds TinyBERT's uniform map (student layer ``m`` learns from teacher layer
``m L_T / L_S``, so the student's last layer learns from the teacher's last, as in DistilBERT).

All losses compute in float32, are pure functions of their tensors (the learned projection of the MSE
loss is passed in), and treat the teacher as a fixed target (no gradient flows into it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from compresslib._checks import check_position_mask

HIDDEN_LOSSES = ("cosine", "mse")
ATTENTION_LOSSES = ("kl", "mse")


# ----------------------------------------------------------------------------------------------------
# argument checks


def _check_tensor(x, name: str, dims: int | None = None) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if dims is not None and x.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimensions, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _masked_mean(per_position: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return per_position[mask].mean() if mask is not None else per_position.mean()


# ----------------------------------------------------------------------------------------------------
# hidden states


def hidden_cosine_loss(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""DistilBERT's cosine loss, aligning the directions of the student's and teacher's hidden vectors:

    .. math::

        \mathcal{L}_{\cos} = \frac{1}{|P|} \sum_{(b,p) \in P}
            \Bigl(1 - \frac{h^S_{b,p} \cdot h^T_{b,p}}{\lVert h^S_{b,p} \rVert \, \lVert h^T_{b,p} \rVert}\Bigr)

    (``nn.CosineEmbeddingLoss`` with target 1, over the unmasked positions). It is 0 when the vectors
    point the same way whatever their lengths, 1 when orthogonal, 2 when opposite. It needs equal
    widths ``d_S = d_T`` (DistilBERT keeps the teacher's width); use :func:`hidden_mse_loss` with a
    projection otherwise.

    Args:
        student_hidden, teacher_hidden: ``(B, S, d)`` (or ``(N, d)``).
        mask: optional 0/1 or boolean ``(B, S)`` (the attention mask): only positions with 1 count.

    Returns:
        a float32 scalar tensor.
    """
    _check_tensor(student_hidden, "student_hidden")
    _check_tensor(teacher_hidden, "teacher_hidden")
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"student_hidden has shape {tuple(student_hidden.shape)} but teacher_hidden {tuple(teacher_hidden.shape)}: "
            "the cosine loss needs equal widths (use hidden_mse_loss with a projection when they differ)"
        )
    if mask is not None:
        mask = check_position_mask(mask, student_hidden.shape[:-1], "the hidden states' shape without the width")
    cosine = F.cosine_similarity(student_hidden.float(), teacher_hidden.detach().float(), dim=-1, eps=1e-8)
    return _masked_mean(1.0 - cosine, mask)


def hidden_mse_loss(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    projection: Callable[[torch.Tensor], torch.Tensor] | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Mean squared error between hidden states, through a learned projection ``W`` when widths differ
    (TinyBERT's :math:`\mathrm{MSE}(H^S W_h, H^T)`):

    .. math::

        \mathcal{L}_{\mathrm{MSE}} = \frac{1}{|P| \, d_T} \sum_{(b,p) \in P}
            \bigl\lVert W h^S_{b,p} + c - h^T_{b,p} \bigr\rVert_2^2

    with ``W`` of shape ``(d_T, d_S)`` and bias ``c`` the parameters of ``projection`` (an
    ``nn.Linear(d_S, d_T)``, see :func:`make_projections`), trained together with the student; without a
    projection (``d_S = d_T``) it is the plain MSE of the vectors.

    Args:
        student_hidden: ``(B, S, d_S)``.
        teacher_hidden: ``(B, S, d_T)``.
        projection: a callable (usually ``nn.Linear(d_S, d_T)``) applied to the student's vectors; required
            when ``d_S != d_T``.
        mask: optional 0/1 or boolean ``(B, S)``.

    Returns:
        a float32 scalar tensor.
    """
    _check_tensor(student_hidden, "student_hidden")
    _check_tensor(teacher_hidden, "teacher_hidden")
    if student_hidden.shape[:-1] != teacher_hidden.shape[:-1]:
        raise ValueError(
            f"student_hidden {tuple(student_hidden.shape)} and teacher_hidden {tuple(teacher_hidden.shape)} "
            "must agree in every dimension but the width"
        )
    if projection is None and student_hidden.shape[-1] != teacher_hidden.shape[-1]:
        raise ValueError(
            f"widths differ (student {student_hidden.shape[-1]}, teacher {teacher_hidden.shape[-1]}): pass "
            f"projection=nn.Linear({student_hidden.shape[-1]}, {teacher_hidden.shape[-1]}) (see make_projections)"
        )
    if mask is not None:
        mask = check_position_mask(mask, student_hidden.shape[:-1], "the hidden states' shape without the width")
    projected = projection(student_hidden) if projection is not None else student_hidden
    if projected.shape != teacher_hidden.shape:
        raise ValueError(
            f"the projection maps the student's width to {projected.shape[-1]}, the teacher's is {teacher_hidden.shape[-1]}"
        )
    per_position = (projected.float() - teacher_hidden.detach().float()).pow(2).mean(dim=-1)
    return _masked_mean(per_position, mask)


def make_projections(student_width: int, teacher_width: int, count: int = 1) -> nn.ModuleList:
    r"""``count`` learned projections ``nn.Linear(d_S, d_T)`` for :func:`hidden_mse_loss`, one per mapped
    layer pair; give their parameters to the optimizer together with the student's."""
    for value, name in ((student_width, "student_width"), (teacher_width, "teacher_width"), (count, "count")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return nn.ModuleList([nn.Linear(student_width, teacher_width) for _ in range(count)])


# ----------------------------------------------------------------------------------------------------
# attention maps


def _check_attention(student_attention, teacher_attention, mask):
    _check_tensor(student_attention, "student_attention", dims=4)
    _check_tensor(teacher_attention, "teacher_attention", dims=4)
    if student_attention.shape != teacher_attention.shape:
        raise ValueError(
            f"student_attention {tuple(student_attention.shape)} and teacher_attention "
            f"{tuple(teacher_attention.shape)} must have the same shape (batch, heads, queries, keys): "
            "attention maps compare head for head"
        )
    if (student_attention < 0).any() or (teacher_attention < 0).any():
        raise ValueError("attention maps are probabilities (after the softmax) and cannot be negative")
    if mask is None:
        return None
    b, _, s, k = student_attention.shape
    if s != k:
        raise ValueError("a mask needs self-attention maps (as many queries as keys)")
    return check_position_mask(mask, torch.Size((b, s)), "(batch, sequence), the attention mask")


def attention_kl_loss(
    student_attention: torch.Tensor,
    teacher_attention: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    eps: float = 1e-12,
) -> torch.Tensor:
    r"""KL divergence from the teacher's attention distributions to the student's, row by row:

    .. math::

        \mathcal{L}_{\mathrm{att,KL}} = \frac{1}{|Q|} \sum_{(b,a,i) \in Q} \sum_j
            A^T_{b,a,i,j} \bigl(\log A^T_{b,a,i,j} - \log A^S_{b,a,i,j}\bigr)

    where ``Q`` runs over examples, heads and the counted query positions ``i``. Each row is a softmax
    distribution over keys, so this is the logit KD loss applied to attention (MiniLM's self-attention
    distillation). Terms with ``A^T = 0`` contribute 0 (:math:`0 \log 0 = 0`, as ``torch.xlogy``);
    ``log A^S`` is taken of ``max(A^S, eps)`` so a key the student ignores entirely gives a large, finite
    loss. Masked keys carry zero probability in both maps, so only the query positions need masking.

    Args:
        student_attention, teacher_attention: ``(B, H, S, S)`` attention probabilities.
        mask: optional 0/1 or boolean ``(B, S)``: query positions with 0 (padding) do not count.

    Returns:
        a float32 scalar tensor, 0 exactly when the maps agree.
    """
    mask = _check_attention(student_attention, teacher_attention, mask)
    teacher = teacher_attention.detach().float()
    student = student_attention.float()
    per_row = (torch.xlogy(teacher, teacher) - teacher * torch.log(student.clamp_min(eps))).sum(dim=-1)
    if mask is None:
        return per_row.mean()
    rows = mask[:, None, :].expand_as(per_row)
    return per_row[rows].mean()


def attention_mse_loss(
    student_attention: torch.Tensor, teacher_attention: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Mean squared error between attention maps, over the counted (query, key) pairs:

    .. math::

        \mathcal{L}_{\mathrm{att,MSE}} = \frac{1}{|Q| \, |P_b|}\sum_{(b,a,i) \in Q} \sum_{j \in P_b}
            \bigl(A^S_{b,a,i,j} - A^T_{b,a,i,j}\bigr)^2

    i.e. the mean over every entry whose query *and* key are unmasked (all entries without a mask).

    Args:
        student_attention, teacher_attention: ``(B, H, S, S)`` attention probabilities.
        mask: optional 0/1 or boolean ``(B, S)``.

    Returns:
        a float32 scalar tensor.
    """
    mask = _check_attention(student_attention, teacher_attention, mask)
    squared = (student_attention.float() - teacher_attention.detach().float()).pow(2)
    if mask is None:
        return squared.mean()
    pairs = (mask[:, :, None] & mask[:, None, :])[:, None].expand_as(squared)
    return squared[pairs].mean()


# ----------------------------------------------------------------------------------------------------
# layer maps


def uniform_layer_map(num_teacher_layers: int, num_student_layers: int, *, hidden_states: bool = True) -> dict[int, int]:
    r"""TinyBERT's uniform map ``g(m) = m \cdot L_T / L_S``: student layer ``m`` learns from teacher layer
    ``g(m)``, so the last learns from the last.

    With ``hidden_states=True`` the indices address ``output_hidden_states`` (0 = embeddings, which map to
    each other; ``m`` = output of layer ``m``). With ``hidden_states=False`` they address
    ``output_attentions`` (numbered from 0): student layer ``m`` maps to teacher layer ``(m+1) L_T / L_S - 1``.

    Example: a 6-layer teacher, a 3-layer student: hidden ``{0: 0, 1: 2, 2: 4, 3: 6}``, attention
    ``{0: 1, 1: 3, 2: 5}``.
    """
    for value, name in ((num_teacher_layers, "num_teacher_layers"), (num_student_layers, "num_student_layers")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if num_teacher_layers % num_student_layers:
        raise ValueError(
            f"a uniform map needs the teacher's depth ({num_teacher_layers}) to be a multiple of the "
            f"student's ({num_student_layers}); pass an explicit layer map instead"
        )
    step = num_teacher_layers // num_student_layers
    if hidden_states:
        return {m: m * step for m in range(num_student_layers + 1)}
    return {m: (m + 1) * step - 1 for m in range(num_student_layers)}


def _pairs(layer_map, num_student: int, num_teacher: int, what: str) -> list[tuple[int, int]]:
    if isinstance(layer_map, Mapping):
        pairs = list(layer_map.items())
    elif isinstance(layer_map, Sequence) and not isinstance(layer_map, str):
        pairs = [tuple(p) for p in layer_map]
    else:
        raise ValueError(f"layer_map must be a dict {{student: teacher}} or a list of (student, teacher) pairs, got {layer_map!r}")
    if not pairs:
        raise ValueError("layer_map is empty: map at least one student index to a teacher index")
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in pair):
            raise ValueError(f"each layer_map entry must be a (student, teacher) pair of integers, got {pair!r}")
        s, t = pair
        if not 0 <= s < num_student:
            raise ValueError(f"layer_map student index {s} is outside [0, {num_student - 1}] ({what} of the student)")
        if not 0 <= t < num_teacher:
            raise ValueError(f"layer_map teacher index {t} is outside [0, {num_teacher - 1}] ({what} of the teacher)")
    return pairs


def _as_tuple(states, name):
    if isinstance(states, torch.Tensor) or not isinstance(states, Sequence) or not states:
        raise ValueError(f"{name} must be a non-empty tuple/list of tensors (the model's output), got {type(states).__name__}")
    return states


def hidden_states_loss(
    student_hidden_states: Sequence[torch.Tensor],
    teacher_hidden_states: Sequence[torch.Tensor],
    layer_map,
    *,
    loss: str = "cosine",
    mask: torch.Tensor | None = None,
    projections: Sequence[Callable] | None = None,
) -> torch.Tensor:
    r"""Average hidden-state loss over the mapped layer pairs:
    :math:`\frac{1}{|M|} \sum_{(s, t) \in M} \mathcal{L}(H^S_s, H^T_t)`.

    Args:
        student_hidden_states, teacher_hidden_states: the ``hidden_states`` tuples of the two models
            (``output_hidden_states=True``; entry 0 is the embedding output).
        layer_map: ``{student_index: teacher_index}`` or ``[(s, t), ...]`` into those tuples.
        loss: ``"cosine"`` (:func:`hidden_cosine_loss`) or ``"mse"`` (:func:`hidden_mse_loss`).
        mask: optional ``(B, S)`` attention mask.
        projections: for ``"mse"`` with different widths, one projection per pair, in the map's order.
    """
    if loss not in HIDDEN_LOSSES:
        raise ValueError(f"loss must be one of {HIDDEN_LOSSES}, got {loss!r}")
    student_hidden_states = _as_tuple(student_hidden_states, "student_hidden_states")
    teacher_hidden_states = _as_tuple(teacher_hidden_states, "teacher_hidden_states")
    pairs = _pairs(layer_map, len(student_hidden_states), len(teacher_hidden_states), "hidden-state entries")
    if projections is not None and len(projections) != len(pairs):
        raise ValueError(f"{len(projections)} projections for {len(pairs)} layer pairs: give one per pair")
    if loss == "cosine" and projections is not None:
        raise ValueError("projections go with loss='mse'; the cosine loss needs equal widths")
    terms = []
    for k, (s, t) in enumerate(pairs):
        if loss == "cosine":
            terms.append(hidden_cosine_loss(student_hidden_states[s], teacher_hidden_states[t], mask))
        else:
            projection = projections[k] if projections is not None else None
            terms.append(hidden_mse_loss(student_hidden_states[s], teacher_hidden_states[t], projection, mask))
    return torch.stack(terms).mean()


def attention_maps_loss(
    student_attentions: Sequence[torch.Tensor],
    teacher_attentions: Sequence[torch.Tensor],
    layer_map,
    *,
    loss: str = "kl",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Average attention-map loss over the mapped layer pairs:
    :math:`\frac{1}{|M|} \sum_{(s, t) \in M} \mathcal{L}(A^S_s, A^T_t)`.

    Args:
        student_attentions, teacher_attentions: the ``attentions`` tuples of the two models
            (``output_attentions=True``, which needs ``attn_implementation="eager"``).
        layer_map: ``{student_layer: teacher_layer}`` or ``[(s, t), ...]``, layers numbered from 0.
        loss: ``"kl"`` (:func:`attention_kl_loss`) or ``"mse"`` (:func:`attention_mse_loss`).
        mask: optional ``(B, S)`` attention mask.
    """
    if loss not in ATTENTION_LOSSES:
        raise ValueError(f"loss must be one of {ATTENTION_LOSSES}, got {loss!r}")
    student_attentions = _as_tuple(student_attentions, "student_attentions")
    teacher_attentions = _as_tuple(teacher_attentions, "teacher_attentions")
    pairs = _pairs(layer_map, len(student_attentions), len(teacher_attentions), "attention layers")
    function = attention_kl_loss if loss == "kl" else attention_mse_loss
    return torch.stack([function(student_attentions[s], teacher_attentions[t], mask) for s, t in pairs]).mean()
