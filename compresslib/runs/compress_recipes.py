"""The compressions of the reference run ``compress``: which variants of a fine-tuned model it measures,
and how each is built from the model (recovery fine-tuning is the run's business, not this module's).

Every variant is applied the same way to the large model (the teacher) and to the small one (the
student):

=====================  ============================================================================
variant                how it is built
=====================  ============================================================================
fp32                   the fine-tuned model as it is
int8                   PyTorch's dynamic int8 (``torch.ao`` ``quantize_dynamic``, per-channel weights,
                       int8 CPU kernels) on every linear layer; with ``quantize_embeddings`` the word
                       table too, 8 bits per value and one scale per row (weight-only)
4-bit                  every linear layer's weight as 4-bit codes, symmetric, one scale per output
                       row (:class:`~compresslib.quantize.QuantizedLinear`: packed codes, read back in
                       float32 at each call); the word table likewise with ``quantize_embeddings``.
                       Accuracy is measured on the fake-quantised model, whose outputs are the stored
                       model's (checked on a batch); bytes and latency on the stored model
fp16, bf16             every floating-point tensor cast (:func:`~compresslib.quantize.cast`); accuracy
                       of the cast model, or with ``half_eval="weights"`` of the weights rounded to 16
                       bits and float32 arithmetic (:func:`~compresslib.quantize.round_weights`)
pruned s               global magnitude pruning of the encoder's linear weights (the BERT-ticket set,
                       :func:`~compresslib.prune.prunable_names`) to sparsity s, starting from the
                       previous sparsity's fine-tuned model (gradual), then a short fine-tune with the
                       mask enforced; stored dense or in CSR, whichever is smaller
pruned s + int8        the pruned model, then the int8 recipe (pruned weights stay exact zero codes)
low-rank FFN r         both FFN matrices of every encoder layer replaced by their rank-r truncated SVD
                       (:func:`~compresslib.lowrank.factorize_linears`), without and with a short fine-tune
shared layers          ALBERT's cross-layer sharing (:func:`~compresslib.share.share_layers`: ``groups``
                       groups, each layer the mean of its group's layers or one of them), fine-tuned
=====================  ============================================================================
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from compresslib.lowrank import FFN_PATTERN, factorize_linears
from compresslib.prune import Mask, apply_mask, magnitude_mask
from compresslib.quantize import (
    cast,
    dynamic_int8,
    fake_quantize_linears,
    quantize_linears,
    quantize_word_embeddings,
    round_weights,
)
from compresslib.share import share_layers

UNCOMPRESSED, PRECISION, PRUNING, PRUNING_INT8 = "uncompressed", "precision", "pruning", "pruning + int8"
LOW_RANK, LOW_RANK_FT, SHARING = "low-rank", "low-rank + fine-tune", "sharing + fine-tune"
KINDS = (UNCOMPRESSED, PRECISION, PRUNING, PRUNING_INT8, LOW_RANK, LOW_RANK_FT, SHARING)
CAST_NAMES = {"float16": ("fp16", torch.float16), "bfloat16": ("bf16", torch.bfloat16)}
FOUR_BITS = 4


@dataclass(frozen=True)
class Variant:
    """One compression of a model: its ``name`` (a row of the ledger, after the model's role), its
    ``kind`` (one of :data:`KINDS`) and the setting that distinguishes it."""

    name: str
    kind: str
    dtype: str | None = None
    sparsity: float | None = None
    rank: int | None = None
    finetune: bool = False


def sparsity_label(sparsity: float) -> str:
    """``0.875`` -> ``"87.5%"``."""
    return f"{100 * sparsity:g}%"


def variants(profile) -> list[Variant]:
    """The variants a profile measures, in the ledger's order; the pruned ones by increasing sparsity
    (each starts from the one before)."""
    out = [Variant("fp32", UNCOMPRESSED), Variant("int8", PRECISION), Variant(f"{FOUR_BITS}-bit", PRECISION)]
    for dtype in profile.casts:
        if dtype not in CAST_NAMES:
            raise ValueError(f"casts must name float16 or bfloat16, got {dtype!r}")
        out.append(Variant(CAST_NAMES[dtype][0], PRECISION, dtype=dtype))
    sparsities = list(profile.sparsities)
    if sparsities != sorted(set(sparsities)) or not all(0 < s < 1 for s in sparsities):
        raise ValueError(f"sparsities must increase strictly within (0, 1), got {profile.sparsities}")
    for s in sparsities:
        out.append(Variant(f"pruned {sparsity_label(s)}", PRUNING, sparsity=s, finetune=profile.recovery_steps > 0))
        out.append(Variant(f"pruned {sparsity_label(s)} + int8", PRUNING_INT8, sparsity=s))
    for r in profile.ranks:
        out.append(Variant(f"low-rank FFN r={r}", LOW_RANK, rank=r))
        if profile.recovery_steps > 0:
            out.append(Variant(f"low-rank FFN r={r} + FT", LOW_RANK_FT, rank=r, finetune=True))
    if profile.recovery_steps > 0:
        out.append(Variant(f"shared layers ({profile.share_groups} group{'s' * (profile.share_groups != 1)}) + FT",
                           SHARING, finetune=True))
    return out


def equal_bytes_candidates(variant: Variant, others: list[Variant]) -> list[Variant]:
    """The variants of the other model that a ``variant`` is compared with at equal bytes: those
    "compressed the same way" (its precision family with the uncompressed model; its pruning family with
    the uncompressed model; pruned + int8 with int8). Empty for kinds not compared at equal bytes."""
    families = {
        PRECISION: (UNCOMPRESSED, PRECISION),
        PRUNING: (UNCOMPRESSED, PRUNING),
        PRUNING_INT8: (PRUNING_INT8,),
    }
    if variant.kind not in families:
        return []
    chosen = [v for v in others if v.kind in families[variant.kind]]
    if variant.kind == PRUNING_INT8:
        chosen = [v for v in others if v.name == "int8"] + chosen
    return chosen


# ------------------------------------------------------------------------------------------ building


def int8_model(model: nn.Module, *, quantize_embeddings: bool) -> nn.Module:
    """The int8 recipe, on the CPU (its kernels are CPU kernels): a new model."""
    model = copy.deepcopy(model).cpu().eval()
    if quantize_embeddings:
        quantize_word_embeddings(model, 8, inplace=True)
    return dynamic_int8(model, inplace=True)


def four_bit_models(model: nn.Module, *, quantize_embeddings: bool) -> tuple[nn.Module, nn.Module]:
    """``(fake-quantised, stored)``: the same 4-bit weights as float32 tensors in ``nn.Linear`` layers (fast to
    evaluate) and as packed codes in :class:`~compresslib.quantize.QuantizedLinear` layers (what is stored)."""
    base = copy.deepcopy(model).eval()
    if quantize_embeddings:
        quantize_word_embeddings(base, FOUR_BITS, inplace=True)
    return fake_quantize_linears(base, FOUR_BITS), quantize_linears(base, FOUR_BITS, inplace=True)


def half_models(model: nn.Module, dtype: str, *, native: bool) -> tuple[nn.Module, nn.Module]:
    """``(evaluated, stored)`` for a 16-bit cast: the cast model twice, or (``native=False``) the model with its
    weights rounded to 16 bits (float32 arithmetic) and the cast model."""
    torch_dtype = CAST_NAMES[dtype][1]
    stored = cast(model, torch_dtype).eval()
    return (stored if native else round_weights(model, torch_dtype).eval()), stored


def pruned_in_place(model: nn.Module, sparsity: float, previous: Mask | None) -> Mask:
    """Global magnitude pruning of ``model``'s encoder linear weights to ``sparsity`` (of all of them),
    keeping every weight ``previous`` pruned pruned; the mask is applied and returned."""
    mask = magnitude_mask(model, sparsity, scope="global", previous=previous)
    apply_mask(model, mask)
    return mask


def low_rank_model(model: nn.Module, rank: int) -> nn.Module:
    """Both FFN matrices of every encoder layer at rank ``rank`` (a new model)."""
    return factorize_linears(model, rank=rank, pattern=FFN_PATTERN)


def shared_model(model: nn.Module, *, groups: int, init) -> nn.Module:
    """The encoder's layers shared in ``groups`` groups, each initialised by ``init`` (a new model)."""
    return share_layers(model, groups=groups, init=int(init) if str(init).isdigit() else init)


@torch.no_grad()
def max_output_difference(a: nn.Module, b: nn.Module, batch: dict) -> float:
    """The largest absolute difference between the logits of two models on one batch (each on its device)."""
    outputs = []
    for model in (a, b):
        device = next(model.parameters()).device
        outputs.append(model.eval()(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu())
    return float((outputs[0] - outputs[1]).abs().max())
