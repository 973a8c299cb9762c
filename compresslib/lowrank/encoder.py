r"""Factorising chosen linear layers of a BERT encoder, and their singular-value spectra.

Layers are chosen by a regular expression on their module name (``re.search``), e.g.
:data:`FFN_PATTERN` (``intermediate.dense`` and ``output.dense`` of each layer: 2/3 of an encoder
layer's weights) or :data:`ATTENTION_PATTERN` (query, key, value and the attention output).

Why BERT's FFN matrices compress less well than their parameter count suggests: a 384 x 1536 FFN
matrix factorised at rank r saves parameters only while r < 307 (:func:`break_even_rank`), but its
singular values decay slowly, so keeping most of its energy takes a large share of its 384 ranks
(see :func:`energy_ranks` and the spectra from :func:`singular_value_spectra`). A matrix that is
approximately low-rank, by contrast, concentrates its energy in a few leading singular values.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from compresslib.architecture import linear_names, replace_modules
from compresslib.lowrank.factorize import LowRankLinear, factorize_linear
from compresslib.svd import check_rank, rank_for_energy, singular_values

FFN_PATTERN = r"encoder\.layer\.\d+\.(intermediate|output)\.dense$"
"""The feed-forward matrices of each encoder layer: ``intermediate.dense`` (H -> 4H) and ``output.dense`` (4H -> H)."""

ATTENTION_PATTERN = r"encoder\.layer\.\d+\.attention\.(self\.(query|key|value)|output\.dense)$"
"""The attention projections of each encoder layer: query, key, value (H -> H) and the output (H -> H)."""

ENCODER_PATTERN = f"({FFN_PATTERN})|({ATTENTION_PATTERN})"
"""Every linear layer inside the encoder layers (not the pooler or the task head)."""


def factorize_linears(model: nn.Module, *, rank: int | None = None, energy: float | None = None,
                      pattern: str = FFN_PATTERN, inplace: bool = False,
                      factorizer: Callable[[nn.Linear, int], nn.Module] | None = None) -> nn.Module:
    """``model`` with each ``nn.Linear`` whose name matches ``pattern`` replaced by its
    :func:`~compresslib.lowrank.factorize.factorize_linear` at ``rank`` (the same for every layer) or at
    the smallest rank keeping ``energy`` of that layer's squared singular values. A copy unless
    ``inplace``; :func:`factorized_ranks` lists the ranks chosen (of :class:`LowRankLinear` layers). The
    result fine-tunes like any model (``compresslib.training.fit``).

    ``factorizer(linear, rank) -> module`` replaces the default ``factorize_linear`` (a notebook passes
    the student's own); with ``energy``, each layer's rank is chosen here and handed to it."""
    if (rank is None) == (energy is None):
        raise ValueError(f"give exactly one of rank or energy, got rank={rank!r}, energy={energy!r}")
    names = linear_names(model, pattern)
    if rank is not None:  # check the rank against every layer before replacing any
        for name in names:
            layer = model.get_submodule(name)
            check_rank(rank, (layer.out_features, layer.in_features), name=f"rank (for {name})")
    model = model if inplace else copy.deepcopy(model)
    if factorizer is None:
        replace_modules(model, names, lambda _, linear: factorize_linear(linear, rank, energy=energy))
    else:
        def build(name: str, linear: nn.Linear) -> nn.Module:
            chosen = rank if rank is not None else rank_for_energy(singular_values(linear.weight), energy)
            with torch.no_grad():
                layer = factorizer(linear, chosen)
            if not isinstance(layer, nn.Module):
                raise ValueError(f"factorizer must return an nn.Module for {name}, got {type(layer).__name__}")
            return layer

        replace_modules(model, names, build)
    return model


def factorized_ranks(model: nn.Module) -> dict[str, int]:
    """``{module name: rank}`` of the :class:`LowRankLinear` layers of ``model`` (shared ones once)."""
    return {name: module.rank for name, module in model.named_modules() if isinstance(module, LowRankLinear)}


@torch.no_grad()
def singular_value_spectra(model: nn.Module, pattern: str = ENCODER_PATTERN) -> dict[str, torch.Tensor]:
    r"""``{module name: singular values}`` (float64, decreasing) of the weight of each ``nn.Linear``
    matching ``pattern``: the spectrum that says how much a rank-r factorisation keeps
    (:math:`\sum_{i \le r}\sigma_i^2 / \sum_i \sigma_i^2`, :func:`compresslib.svd.retained_energy`)."""
    return {name: singular_values(model.get_submodule(name).weight) for name in linear_names(model, pattern)}


def energy_ranks(model: nn.Module, energy: float, pattern: str = ENCODER_PATTERN) -> dict[str, int]:
    """``{module name: the smallest rank keeping energy of its squared singular values}`` for each
    ``nn.Linear`` matching ``pattern``."""
    return {name: rank_for_energy(values, energy) for name, values in singular_value_spectra(model, pattern).items()}
