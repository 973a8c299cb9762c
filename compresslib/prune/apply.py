"""Applying a mask so that pruned weights stay exactly zero.

Multiplying the weights by the mask once is not enough: AdamW's momentum (``exp_avg``) of a pruned
weight is non-zero from earlier steps, so the next step moves it off zero again. The mask is therefore
enforced twice per step by :class:`MaskEnforcer`: a gradient hook zeroes the pruned gradients (so the
optimizer's moments of pruned weights stay zero from then on) and ``after_step`` re-multiplies the
weights after every optimizer step (which also undoes any update from stale moments). Zeros are
ordinary tensor values, so they survive ``state_dict`` save/load and ``deepcopy``.
"""

from __future__ import annotations

import torch
from torch import nn

from compresslib.answers import reference_answer
from compresslib.prune.mask import Mask


def check_mask_fits(model: nn.Module, mask: Mask) -> dict[str, nn.Parameter]:
    """The model's parameters named in ``mask``; raise on unknown names or shape mismatches."""
    if not isinstance(mask, Mask):
        raise ValueError(f"mask must be a compresslib.prune.Mask, got {type(mask).__name__}")
    params = dict(model.named_parameters())
    unknown = [n for n in mask if n not in params]
    if unknown:
        raise ValueError(f"mask names parameters the model does not have: {unknown[:5]}")
    for name in mask:
        if tuple(mask[name].shape) != tuple(params[name].shape):
            raise ValueError(f"mask[{name!r}] has shape {tuple(mask[name].shape)} but the parameter has {tuple(params[name].shape)}")
    return {n: params[n] for n in mask}


@torch.no_grad()
@reference_answer("03_lottery_tickets")
def apply_mask(model: nn.Module, mask: Mask) -> nn.Module:
    """Set the pruned weights of ``model`` to zero in place: ``w <- m * w`` for each masked parameter."""
    for name, param in check_mask_fits(model, mask).items():
        param.mul_(mask[name].to(device=param.device, dtype=param.dtype))
    return model


class MaskEnforcer:
    """Keeps ``mask`` applied to ``model`` during training.

    On creation it applies the mask and registers gradient hooks that zero pruned gradients; call it
    (``enforcer(model)``) after every optimizer step — it is ``fit(after_step=...)``'s callback — to
    re-zero the pruned weights. :meth:`remove` takes the hooks off. Also a context manager.
    """

    def __init__(self, model: nn.Module, mask: Mask):
        self.model = model
        self.mask = mask
        self._params = check_mask_fits(model, mask)
        self._device_masks = {}
        apply_mask(model, mask)
        self._handles = []
        for name, param in self._params.items():
            m = mask[name].to(device=param.device, dtype=param.dtype)
            self._device_masks[name] = m
            self._handles.append(param.register_hook(lambda grad, m=m: grad * m.to(grad.dtype)))

    @torch.no_grad()
    @reference_answer("03_lottery_tickets")
    def __call__(self, model: nn.Module | None = None) -> None:
        for name, param in self._params.items():
            param.mul_(self._device_masks[name])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def keep_mask_applied(model: nn.Module, mask: Mask) -> MaskEnforcer:
    """Apply ``mask`` and return the ``after_step`` callback that keeps it applied (see :class:`MaskEnforcer`)."""
    return MaskEnforcer(model, mask)
