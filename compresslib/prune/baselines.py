r"""The BERT-ticket baselines (Chen et al., 2020, Table 2) and the winning-ticket criterion.

- :math:`f(x; m_{IMP} \odot \theta_0)`: the IMP mask on the pre-trained weights (IMP itself);
- :math:`f(x; m_{RP} \odot \theta_0)`: a random mask of the same sparsity (:func:`random_mask`);
- :math:`f(x; m_{IMP} \odot \theta'_0)`: the IMP mask on randomly re-initialised weights
  (:func:`reinitialize`);
- :math:`f(x; m_{IMP} \odot \theta''_0)`: the IMP mask on the pre-trained weights shuffled within
  each layer (:func:`shuffle_within_layers`).

A subnetwork is a winning ticket when its mean accuracy over seeds is within one standard deviation
of the full model's: :math:`\bar a_{sub} \ge \bar a_{full} - \sigma_{full}` (:func:`is_winning_ticket`).
"""

from __future__ import annotations

import torch
from torch import nn

from compresslib import stats
from compresslib.prune.mask import _named_tensors


@torch.no_grad()
def reinitialize(model: nn.Module, names, *, seed: int = 0, std: float | None = None,
                 zero_biases: bool = False) -> nn.Module:
    r""":math:`\theta'_0`: draw the named weights afresh from :math:`\mathcal N(0, \sigma^2)` (BERT's
    initialiser, :math:`\sigma` = ``config.initializer_range``, 0.02, unless ``std``), in place.

    As in Chen et al. (2020), only the named weights change: biases, embeddings, LayerNorms and the
    classifier keep their values. ``zero_biases=True`` also zeroes the biases of the named weights'
    modules (what a freshly built BERT layer holds; an earlier version of the kit did this)."""
    if std is None:
        std = float(getattr(getattr(model, "config", None), "initializer_range", 0.02))
    if not isinstance(zero_biases, bool):
        raise ValueError(f"zero_biases must be True or False, got {zero_biases!r}")
    generator = torch.Generator().manual_seed(int(seed))
    modules = dict(model.named_modules())
    for name, param in _named_tensors(model, names).items():
        param.copy_(torch.randn(param.shape, generator=generator).to(param.device, param.dtype) * std)
        bias = getattr(modules.get(name.rpartition(".")[0]), "bias", None)
        if zero_biases and isinstance(bias, torch.Tensor):
            bias.zero_()
    return model


@torch.no_grad()
def shuffle_within_layers(model: nn.Module, names, *, seed: int = 0) -> nn.Module:
    r""":math:`\theta''_0`: randomly permute the entries of each named weight tensor, in place (each
    layer keeps its own multiset of values, so its magnitude distribution is unchanged)."""
    generator = torch.Generator().manual_seed(int(seed))
    for _, param in _named_tensors(model, names).items():
        flat = param.detach().flatten()
        perm = torch.randperm(flat.numel(), generator=generator).to(flat.device)
        param.copy_(flat[perm].view_as(param))
    return model


def is_winning_ticket(full_accuracies, subnetwork_accuracies) -> dict:
    """The criterion of Chen et al.: mean subnetwork accuracy >= mean full accuracy - one (sample)
    standard deviation of the full model over seeds. Returns the verdict with the numbers it used."""
    if len(full_accuracies) == 0 or len(subnetwork_accuracies) == 0:
        raise ValueError("need at least one accuracy for the full model and for the subnetwork")
    full, sub = stats.summarize(full_accuracies), stats.summarize(subnetwork_accuracies)
    full_std = full.std or 0.0  # one seed: no spread to allow for
    bar = full.mean - full_std
    return {
        "winning": bool(sub.mean >= bar),
        "subnetwork_mean": sub.mean,
        "full_mean": full.mean,
        "full_std": full_std,
        "threshold": bar,
        "criterion": "mean accuracy over seeds >= full-model mean - 1 std (Chen et al., 2020)",
    }


def highest_winning_sparsity(full_accuracies, by_sparsity: dict) -> dict:
    """The highest sparsity whose accuracies (``{sparsity: [acc per seed]}``) pass :func:`is_winning_ticket`."""
    best = None
    verdicts = {}
    for sparsity in sorted(by_sparsity, key=float):
        verdict = is_winning_ticket(full_accuracies, by_sparsity[sparsity])
        verdicts[str(sparsity)] = verdict
        if verdict["winning"]:
            best = float(sparsity)
    return {"sparsity": best, "verdicts": verdicts}
