r"""Running an unstructured-pruned model on sparse kernels, to measure what they buy.

A mask multiplied into dense weight matrices leaves the matrix products the same size: the zeros are
multiplied like any other number. :func:`to_sparse_kernels` stores each masked ``nn.Linear`` weight as a
``torch.sparse_csr_tensor`` instead (compressed sparse rows: the kept values, their column indices and
one pointer per row) and computes :math:`y = x W^\top + b` with PyTorch's sparse-dense product, which
skips the pruned entries. Whether that is faster depends on the sparsity and the kernel: on a CPU a CSR
product pays for its index traffic and irregular memory access, so it beats the dense product only at
high sparsity (the reference run measures where). Semi-structured 2:4 sparsity (two of every four
consecutive weights kept) runs on the sparse tensor cores of recent NVIDIA GPUs only
(``torch.sparse.to_sparse_semi_structured``); it is not measured on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from compresslib.prune.apply import check_mask_fits
from compresslib.prune.mask import Mask


class CSRLinear(nn.Module):
    """``nn.Linear`` whose weight ``[out, in]`` is stored in CSR: ``forward(x) = x @ W.T + b`` for ``x`` of shape
    ``[..., in]``, computed by ``torch.nn.functional.linear`` on the sparse weight."""

    def __init__(self, linear: nn.Linear, keep: torch.Tensor):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"CSRLinear wraps an nn.Linear, got {type(linear).__name__}")
        if tuple(keep.shape) != tuple(linear.weight.shape):
            raise ValueError(f"keep has shape {tuple(keep.shape)}, the weight {tuple(linear.weight.shape)}")
        with torch.no_grad():
            dense = linear.weight.detach() * keep.to(linear.weight.device, linear.weight.dtype)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", dense.to_sparse_csr())
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.weight.values().numel()}"


@torch.no_grad()
def to_sparse_kernels(model: nn.Module, mask: Mask) -> nn.Module:
    """Replace, in place, every ``nn.Linear`` whose ``weight`` the mask names by a :class:`CSRLinear` holding its
    kept entries (a pruned entry is dropped even if the weight there is not zero). Returns ``model``."""
    check_mask_fits(model, mask)
    modules = dict(model.named_modules())
    for name in mask:
        module_name, _, attribute = name.rpartition(".")
        linear = modules.get(module_name)
        if attribute != "weight" or not isinstance(linear, nn.Linear):
            raise ValueError(f"to_sparse_kernels converts nn.Linear weights only; {name!r} is not one")
        parent_name, _, child = module_name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, CSRLinear(linear, mask[name]))
    return model
