"""Knowledge distillation: soft targets, the distillation losses, the training step, hidden-state and
attention losses, and students initialised from their teacher by layer skipping."""

from compresslib.distill.losses import (
    CombinedLoss,
    combined_loss,
    combined_loss_parts,
    distillation_loss,
    softmax_with_temperature,
)
from compresslib.distill.intermediate import (
    attention_kl_loss,
    attention_maps_loss,
    attention_mse_loss,
    hidden_cosine_loss,
    hidden_mse_loss,
    hidden_states_loss,
    make_projections,
    uniform_layer_map,
)
from compresslib.distill.step import cached_kd_hidden_step, cached_kd_step, cached_transfer_kd_step, kd_step
from compresslib.distill.student import (
    init_student_from_teacher,
    init_student_with_random_layers,
    num_layers_of,
    select_layers,
)

__all__ = [
    "CombinedLoss",
    "combined_loss",
    "combined_loss_parts",
    "distillation_loss",
    "kd_step",
    "cached_kd_step",
    "cached_transfer_kd_step",
    "cached_kd_hidden_step",
    "softmax_with_temperature",
    "attention_kl_loss",
    "attention_maps_loss",
    "attention_mse_loss",
    "hidden_cosine_loss",
    "hidden_mse_loss",
    "hidden_states_loss",
    "make_projections",
    "uniform_layer_map",
    "init_student_from_teacher",
    "init_student_with_random_layers",
    "num_layers_of",
    "select_layers",
]
