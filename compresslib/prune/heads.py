r"""Structured pruning of attention heads, with a real speed-up.

Unstructured masks leave the weight matrices dense (zeros are still multiplied), so they do not make
inference faster. Removing whole heads shrinks the query/key/value projections (rows) and the
attention output projection (columns), so every forward pass does less work.

Importance (Michel et al., 2019, "Are Sixteen Heads Really Better than One?"): with a gate
:math:`\xi_h` on head ``h``'s context vectors :math:`O_h`, :math:`I_h = \mathbb E_x
|\partial \mathcal L / \partial \xi_h| = \mathbb E_x |\sum_t \langle \partial\mathcal L/\partial O_{h,t}, O_{h,t}\rangle|`,
computed here from the input of each layer's attention output projection and its gradient.

transformers 5 removed ``PreTrainedModel.prune_heads``; :func:`prune_heads` does the same surgery with
``transformers.pytorch_utils.prune_linear_layer`` on BERT-style self-attention blocks
(``attention.self.{query,key,value}`` and ``attention.output.dense``).
"""

from __future__ import annotations

import torch
from torch import nn

from compresslib._checks import check_fraction
from compresslib.batches import LABELS_KEY, logits_of, model_inputs


def _encoder_layers(model: nn.Module):
    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    encoder = getattr(base, "encoder", None)
    if encoder is None or not hasattr(encoder, "layer"):
        raise ValueError("head pruning needs a BERT-style model with .encoder.layer[i].attention.{self,output}")
    return list(encoder.layer)


def head_importance(model: nn.Module, loader, *, max_batches: int | None = None, device=None) -> torch.Tensor:
    """``[num_layers, num_heads]`` importance scores :math:`I_h` averaged over the examples of ``loader``."""
    device = device or next(model.parameters()).device
    layers = _encoder_layers(model)
    contexts: dict[int, torch.Tensor] = {}
    handles = []
    for i, layer in enumerate(layers):
        def hook(module, args, i=i):
            args[0].retain_grad()
            contexts[i] = args[0]
        handles.append(layer.attention.output.dense.register_forward_pre_hook(hook))
    scores = None
    count = 0
    was_training = model.training
    model.eval()
    try:
        for b, batch in enumerate(loader):
            if max_batches is not None and b >= max_batches:
                break
            batch = {k: v.to(device) for k, v in batch.items()}
            contexts.clear()
            model.zero_grad(set_to_none=True)
            logits = logits_of(model(**model_inputs(batch)))
            nn.functional.cross_entropy(logits.float(), batch[LABELS_KEY], reduction="sum").backward()
            rows = []
            for i, layer in enumerate(layers):
                ctx = contexts[i]
                sa = layer.attention.self
                heads, size = sa.num_attention_heads, sa.attention_head_size
                per_head = (ctx * ctx.grad).view(*ctx.shape[:-1], heads, size).sum(-1)  # [B, T, H]
                rows.append(per_head.sum(1).abs().sum(0).detach().float().cpu())  # sum_t, |.|, sum over examples
            batch_scores = torch.stack(rows)
            scores = batch_scores if scores is None else scores + batch_scores
            count += batch[LABELS_KEY].shape[0]
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if scores is None:
        raise ValueError("loader yielded no batches")
    return scores / count


def heads_to_prune(importance: torch.Tensor, fraction: float, *, keep_per_layer: int = 1) -> dict[int, list[int]]:
    """The ``round(fraction * num_heads_total)`` least important heads (ties by position), never leaving a
    layer with fewer than ``keep_per_layer`` heads. Returns ``{layer: [head, ...]}``."""
    fraction = check_fraction(fraction, "fraction", high_inclusive=False)
    if importance.dim() != 2:
        raise ValueError(f"importance must be [layers, heads], got shape {tuple(importance.shape)}")
    layers, heads = importance.shape
    k = int(round(fraction * importance.numel()))
    order = torch.sort(importance.flatten().float(), stable=True).indices.tolist()
    chosen: dict[int, list[int]] = {}
    left = {l: heads for l in range(layers)}
    for idx in order:
        if k == 0:
            break
        l, h = divmod(idx, heads)
        if left[l] > keep_per_layer:
            chosen.setdefault(l, []).append(h)
            left[l] -= 1
            k -= 1
    return {l: sorted(hs) for l, hs in sorted(chosen.items())}


@torch.no_grad()
def prune_heads(model: nn.Module, heads: dict[int, list[int]]) -> nn.Module:
    """Physically remove ``heads`` (``{layer: [head indices in the current layer]}``) in place."""
    from transformers.pytorch_utils import prune_linear_layer

    layers = _encoder_layers(model)
    for l, hs in heads.items():
        if not 0 <= l < len(layers):
            raise ValueError(f"layer {l} out of range (model has {len(layers)} layers)")
        sa = layers[l].attention.self
        n, size = sa.num_attention_heads, sa.attention_head_size
        hs = sorted(set(hs))
        if any(not 0 <= h < n for h in hs):
            raise ValueError(f"layer {l} has {n} heads, cannot prune {hs}")
        if len(hs) >= n:
            raise ValueError(f"pruning heads {hs} would leave layer {l} with no head")
        if not hs:
            continue
        keep = torch.ones(n, size, dtype=torch.bool)
        keep[hs] = False
        index = keep.flatten().nonzero().squeeze(1)
        sa.query = prune_linear_layer(sa.query, index)
        sa.key = prune_linear_layer(sa.key, index)
        sa.value = prune_linear_layer(sa.value, index)
        out = layers[l].attention.output
        out.dense = prune_linear_layer(out.dense, index, dim=1)
        sa.num_attention_heads = n - len(hs)
        sa.all_head_size = sa.num_attention_heads * size
    return model


def count_heads(model: nn.Module) -> list[int]:
    return [layer.attention.self.num_attention_heads for layer in _encoder_layers(model)]
