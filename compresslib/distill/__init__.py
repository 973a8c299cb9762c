"""Knowledge distillation: soft targets, the distillation losses and the training step."""

from compresslib.distill.losses import (
    CombinedLoss,
    combined_loss,
    combined_loss_parts,
    distillation_loss,
    softmax_with_temperature,
)
from compresslib.distill.step import kd_step, logits_of

__all__ = [
    "CombinedLoss",
    "combined_loss",
    "combined_loss_parts",
    "distillation_loss",
    "kd_step",
    "logits_of",
    "softmax_with_temperature",
]
