r"""A linear layer factorised into two by its truncated SVD, and what that saves.

A dense layer :math:`y = W x + b` with :math:`W` of shape (out x in) becomes two layers,
:math:`V_r` (r x in, no bias) then :math:`U_r` (out x r, with :math:`W`'s bias):

.. math::  y = U_r (V_r x) + b, \qquad U_r = U_{:, :r} \Sigma_{:r}^{1/2}, \quad V_r = \Sigma_{:r}^{1/2} V_{:, :r}^\top,

the square roots of the singular values on each side (:func:`compresslib.svd.low_rank_factors`), so
:math:`U_r V_r = W_r` is the best rank-r approximation of :math:`W`.

Counts per token (the bias adds ``out`` parameters to both and no multiply-add):

============  =================  ==================
              parameters         multiply-adds
============  =================  ==================
dense         in * out + out     in * out
rank r        r (in + out) + out r (in + out)
============  =================  ==================

The factorised layer is smaller only while :math:`r (in + out) < in \cdot out`, i.e. up to the
break-even rank :math:`\lceil in \cdot out / (in + out) \rceil - 1` (307 for BERT-small's 384 x 1536
FFN matrices, 191 for its 384 x 384 attention projections).
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from compresslib.answers import reference_answer
from compresslib.svd import check_rank, low_rank_factors, rank_for_energy, singular_values


def _check_size(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class LowRankLinear(nn.Module):
    r"""Two linear layers in a row, :math:`y = U_r (V_r x) + b`: ``v`` (in -> rank, no bias) then
    ``u`` (rank -> out, with the bias). ``in_features``, ``out_features`` and ``rank`` say its shape."""

    def __init__(self, in_features: int, out_features: int, rank: int, *, bias: bool = True):
        super().__init__()
        self.in_features = _check_size(in_features, "in_features")
        self.out_features = _check_size(out_features, "out_features")
        self.rank = check_rank(rank, (self.out_features, self.in_features))
        self.v = nn.Linear(self.in_features, self.rank, bias=False)
        self.u = nn.Linear(self.rank, self.out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.u(self.v(x))

    def weight_product(self) -> torch.Tensor:
        """:math:`U_r V_r`, the (out x in) matrix the two layers apply."""
        return self.u.weight @ self.v.weight

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def _choose_rank(weight: torch.Tensor, rank, energy) -> int:
    if (rank is None) == (energy is None):
        raise ValueError(f"give exactly one of rank or energy, got rank={rank!r}, energy={energy!r}")
    if rank is not None:
        return check_rank(rank, tuple(weight.shape))
    return rank_for_energy(singular_values(weight), energy)


@torch.no_grad()
@reference_answer("04_precision_rank_sharing")
def factorize_linear(linear: nn.Linear, rank: int | None = None, *, energy: float | None = None) -> LowRankLinear:
    r"""``linear`` (W: out x in, bias b) as a :class:`LowRankLinear` from W's truncated SVD:
    ``v.weight`` = :math:`V_r = \Sigma_{:r}^{1/2} V_{:, :r}^\top` (r x in), ``u.weight`` =
    :math:`U_r = U_{:, :r} \Sigma_{:r}^{1/2}` (out x r), ``u.bias`` = b.

    Give ``rank`` (1..min(out, in)) or ``energy`` in (0, 1]: the smallest rank keeping that share of
    the squared singular values (:func:`compresslib.svd.rank_for_energy`). At full rank the result
    computes the same function as ``linear`` (up to rounding). Same dtype and device as ``linear``."""
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    weight = linear.weight
    rank = _choose_rank(weight, rank, energy)
    u_r, v_r = low_rank_factors(weight, rank)
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
    layer = layer.to(device=weight.device, dtype=weight.dtype)
    layer.v.weight.copy_(v_r)
    layer.u.weight.copy_(u_r)
    if linear.bias is not None:
        layer.u.bias.copy_(linear.bias)
    return layer


def linear_parameter_count(in_features: int, out_features: int, *, bias: bool = True) -> int:
    """Parameters of a dense (out x in) linear layer: ``in * out`` (+ ``out`` with a bias)."""
    in_features, out_features = _check_size(in_features, "in_features"), _check_size(out_features, "out_features")
    return in_features * out_features + (out_features if bias else 0)


@reference_answer("04_precision_rank_sharing")
def low_rank_parameter_count(in_features: int, out_features: int, rank: int, *, bias: bool = True) -> int:
    """Parameters of the rank-r factorisation of an (out x in) linear layer: ``r * (in + out)`` for
    :math:`V_r` (r x in) and :math:`U_r` (out x r), plus ``out`` for the bias when it has one."""
    in_features, out_features = _check_size(in_features, "in_features"), _check_size(out_features, "out_features")
    rank = check_rank(rank, (out_features, in_features))
    return rank * (in_features + out_features) + (out_features if bias else 0)


def low_rank_multiply_adds(in_features: int, out_features: int, rank: int) -> int:
    """Multiply-adds per input vector (token) of the rank-r factorisation: ``r * (in + out)``
    (a dense layer takes ``in * out``)."""
    return low_rank_parameter_count(in_features, out_features, rank, bias=False)


def break_even_rank(in_features: int, out_features: int) -> int:
    """The largest rank whose factorisation is still smaller than the dense layer:
    the largest r with ``r * (in + out) < in * out``, i.e. ``ceil(in * out / (in + out)) - 1``
    (0 when no rank saves anything, as for an (n x 1) layer)."""
    in_features, out_features = _check_size(in_features, "in_features"), _check_size(out_features, "out_features")
    return (in_features * out_features - 1) // (in_features + out_features)
