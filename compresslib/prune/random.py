"""Random pruning (the RP baseline): the same selection as magnitude pruning with random scores.

``scope="global"`` draws one uniform score per weight across all tensors (each layer's sparsity then
varies around the target); ``scope="layer"`` prunes exactly ``sparsity`` of each tensor. A seed or a
``torch.Generator`` makes the mask reproducible.
"""

from __future__ import annotations

import torch

from compresslib._checks import check_fraction
from compresslib.prune.magnitude import _weights, mask_from_scores
from compresslib.prune.mask import Mask


def random_mask(
    model_or_tensors,
    sparsity: float,
    *,
    scope: str = "global",
    names=None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    previous: Mask | None = None,
) -> Mask:
    """A mask pruning ``sparsity`` of the weights chosen uniformly at random (exact count)."""
    sparsity = check_fraction(sparsity, "sparsity", high_inclusive=False)
    if generator is None:
        generator = torch.Generator()
        generator.manual_seed(0 if seed is None else int(seed))
    tensors = _weights(model_or_tensors, names)
    scores = {n: torch.rand(t.shape, generator=generator) for n, t in tensors.items()}
    return mask_from_scores(scores, sparsity, scope=scope, of="all", previous=previous)
