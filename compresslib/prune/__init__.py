"""Pruning: masks, magnitude and random pruning, IMP with rewinding, the BERT-ticket baselines, head pruning.

One module per idea: :mod:`~compresslib.prune.mask` (the ``Mask`` type), :mod:`~compresslib.prune.targets`
(which weights are prunable), :mod:`~compresslib.prune.magnitude` and :mod:`~compresslib.prune.random`
(choosing what to prune), :mod:`~compresslib.prune.apply` (keeping pruned weights at zero),
:mod:`~compresslib.prune.torch_prune` (``torch.nn.utils.prune`` interop), :mod:`~compresslib.prune.imp`
(iterative magnitude pruning with rewinding), :mod:`~compresslib.prune.baselines` (RP, θ'0, θ''0 and the
winning-ticket criterion) and :mod:`~compresslib.prune.heads` (structured head pruning).
"""

from compresslib.prune.apply import MaskEnforcer, apply_mask, check_mask_fits, keep_mask_applied
from compresslib.prune.baselines import highest_winning_sparsity, is_winning_ticket, reinitialize, shuffle_within_layers
from compresslib.prune.heads import count_heads, head_importance, heads_to_prune, prune_heads
from compresslib.prune.imp import (
    IMPResult,
    branch_from_round0,
    check_rewind,
    finished_rounds,
    iterative_magnitude_pruning,
    rewind_label,
    trainable_state,
)
from compresslib.prune.magnitude import lowest_k, magnitude_mask, mask_from_scores, prune_remaining
from compresslib.prune.mask import Mask
from compresslib.prune.random import random_mask
from compresslib.prune.targets import CHEN_PATTERN, DEFAULT_PATTERN, PRUNABLE_SETS, prunable_names
from compresslib.prune.torch_prune import export_to_torch_prune, import_from_torch_prune, make_permanent

__all__ = [
    "CHEN_PATTERN", "DEFAULT_PATTERN", "IMPResult", "PRUNABLE_SETS", "Mask", "MaskEnforcer", "apply_mask",
    "branch_from_round0", "check_mask_fits",
    "check_rewind", "count_heads", "export_to_torch_prune", "finished_rounds", "head_importance", "heads_to_prune",
    "highest_winning_sparsity", "import_from_torch_prune", "is_winning_ticket", "iterative_magnitude_pruning",
    "keep_mask_applied", "lowest_k", "magnitude_mask", "make_permanent", "mask_from_scores", "prunable_names",
    "prune_heads", "prune_remaining", "random_mask", "reinitialize", "rewind_label", "shuffle_within_layers",
    "trainable_state",
]
