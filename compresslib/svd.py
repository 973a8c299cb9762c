r"""Truncated SVD: the rank-r factors of a matrix and the rank that keeps a share of its energy.

Shared by :mod:`compresslib.lowrank` (factorised linear layers) and :mod:`compresslib.share`
(ALBERT's factorised embedding), which may not import each other.

For :math:`W \in \mathbb{R}^{m \times n}` with SVD :math:`W = U \Sigma V^\top`
(:math:`\sigma_1 \ge \sigma_2 \ge \dots \ge 0`), the rank-r truncation
:math:`W_r = U_{:, :r} \Sigma_{:r} V_{:, :r}^\top` is the best rank-r approximation in the Frobenius
norm (Eckart-Young): :math:`\|W - W_r\|_F^2 = \sum_{i > r} \sigma_i^2`. It is split into two factors
with the square roots of the singular values on each side (balanced factors, so that neither carries
all the scale when both are fine-tuned):

.. math::  A = U_{:, :r} \, \Sigma_{:r}^{1/2} \quad (m \times r), \qquad
           B = \Sigma_{:r}^{1/2} \, V_{:, :r}^\top \quad (r \times n), \qquad A B = W_r.

Each column of :math:`U` (with the matching row of :math:`V^\top`) is defined up to a common sign, so
the factors are unique only up to those signs; their product :math:`W_r` is unique when
:math:`\sigma_r > \sigma_{r+1}`. The SVD is computed in float64 and the factors are returned in the
matrix's dtype.
"""

from __future__ import annotations

from numbers import Integral

import torch

from compresslib._checks import check_fraction
from compresslib.answers import reference_answer


def check_matrix(matrix: torch.Tensor, name: str = "weight") -> None:
    """Raise unless ``matrix`` is a 2-D floating-point tensor with finite values."""
    if not isinstance(matrix, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(matrix).__name__}")
    if not matrix.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {matrix.dtype}")
    if matrix.dim() != 2:
        raise ValueError(f"{name} must be a matrix (out x in), got shape {tuple(matrix.shape)}")
    if matrix.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(matrix.shape)}")
    if not torch.isfinite(matrix).all():
        raise ValueError(f"{name} holds NaN or infinite values")


def check_rank(rank, shape: tuple[int, int], name: str = "rank") -> int:
    """``rank`` as an int, or raise unless ``1 <= rank <= min(shape)``."""
    if isinstance(rank, bool) or not isinstance(rank, Integral):
        raise ValueError(f"{name} must be an integer, got {rank!r}")
    limit = min(shape)
    if not 1 <= rank <= limit:
        raise ValueError(f"{name} must lie in [1, {limit}] = [1, min(out, in)] for a {shape[0]} x {shape[1]} matrix, got {rank}")
    return int(rank)


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    r"""The singular values :math:`\sigma_1 \ge \dots \ge \sigma_{\min(m, n)}` of an m x n matrix
    (float64, on the CPU)."""
    check_matrix(matrix)
    return torch.linalg.svdvals(matrix.detach().double().cpu())


@reference_answer("04_precision_rank_sharing")
def low_rank_factors(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The rank-r factors ``(A, B)`` of ``matrix`` (m x n) from its truncated SVD, with
    :math:`\sqrt{\sigma}` on each side: ``A = U[:, :r] diag(sqrt(S[:r]))`` (m x r) and
    ``B = diag(sqrt(S[:r])) Vh[:r]`` (r x n), so that ``A @ B`` is the best rank-r approximation of
    ``matrix`` (Frobenius error squared = the sum of the dropped :math:`\sigma_i^2`).

    ``1 <= rank <= min(m, n)``; at full rank ``A @ B`` equals ``matrix`` up to rounding."""
    check_matrix(matrix)
    rank = check_rank(rank, tuple(matrix.shape))
    u, s, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    a = u[:, :rank] * root
    b = root[:, None] * vh[:rank]
    return a.to(matrix.dtype).contiguous(), b.to(matrix.dtype).contiguous()


def rank_for_energy(values: torch.Tensor, energy: float) -> int:
    r"""The smallest rank r whose leading singular values keep a share ``energy`` of the squared ones:
    :math:`\min \{ r : \sum_{i \le r} \sigma_i^2 \ge \text{energy} \cdot \sum_i \sigma_i^2 \}`.

    ``values``: singular values in decreasing order (as :func:`singular_values` returns them);
    ``energy`` in (0, 1]. Shares are compared in float64 with a relative slack of 1e-12, so that an
    energy met exactly in exact arithmetic is not missed by rounding."""
    energy = check_fraction(energy, "energy", low_inclusive=False)
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.numel() == 0:
        raise ValueError("values must be a non-empty 1-D tensor of singular values")
    squares = values.detach().double().cpu() ** 2
    if bool((values[:-1] < values[1:]).any()) or bool((squares < 0).any()) or not bool(torch.isfinite(squares).all()):
        raise ValueError("values must be finite singular values in decreasing order (as singular_values returns them)")
    total = squares.sum()
    if total == 0:
        raise ValueError("all singular values are zero: the matrix is zero and no rank keeps a share of nothing")
    kept = torch.cumsum(squares, 0) / total
    return int(torch.searchsorted(kept, torch.tensor(energy * (1 - 1e-12), dtype=torch.float64)).item()) + 1


def retained_energy(values: torch.Tensor) -> torch.Tensor:
    r"""The share of squared singular values kept at each rank r = 1..k:
    :math:`\sum_{i \le r} \sigma_i^2 / \sum_i \sigma_i^2` (float64; the last entry is 1)."""
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.numel() == 0:
        raise ValueError("values must be a non-empty 1-D tensor of singular values")
    squares = values.detach().double().cpu() ** 2
    return torch.cumsum(squares, 0) / squares.sum()
