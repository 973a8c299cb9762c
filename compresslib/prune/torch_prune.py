"""Interoperating with ``torch.nn.utils.prune`` and its ``weight_orig`` / ``weight_mask`` convention.

``torch.nn.utils.prune`` re-parametrises a module's ``weight`` as ``weight_orig * weight_mask`` (a
parameter and a buffer) recomputed by a forward pre-hook. :func:`export_to_torch_prune` installs a
:class:`~compresslib.prune.Mask` that way, :func:`import_from_torch_prune` reads the ``weight_mask``
buffers back into a ``Mask`` (named ``<module>.weight``), and :func:`make_permanent` folds the masks
into plain ``weight`` parameters (``prune.remove``), leaving zeros where weights were pruned.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import prune

from compresslib.prune.mask import Mask


def _split(name: str) -> tuple[str, str]:
    module_name, _, attr = name.rpartition(".")
    return module_name, attr


def export_to_torch_prune(model: nn.Module, mask: Mask) -> nn.Module:
    """Re-parametrise every masked parameter of ``model`` with ``prune.custom_from_mask``."""
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    for name in mask:
        module_name, attr = _split(name)
        if name not in params or module_name not in modules:
            raise ValueError(f"mask names {name!r}, which is not a parameter of the model")
        if tuple(params[name].shape) != tuple(mask[name].shape):
            raise ValueError(f"mask[{name!r}] has shape {tuple(mask[name].shape)}, the parameter {tuple(params[name].shape)}")
        prune.custom_from_mask(modules[module_name], attr, mask[name].to(params[name].device).float())
    return model


def import_from_torch_prune(model: nn.Module) -> Mask:
    """A ``Mask`` of every ``<attr>_mask`` buffer that ``torch.nn.utils.prune`` put on ``model``."""
    out = {}
    for module_name, module in model.named_modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                hooks = hook._pruning_methods if isinstance(hook, prune.PruningContainer) else (hook,)
                attr = hooks[0]._tensor_name
                prefix = f"{module_name}." if module_name else ""
                out[prefix + attr] = getattr(module, attr + "_mask")
    if not out:
        raise ValueError("the model has no torch.nn.utils.prune re-parametrisation (no weight_mask buffers)")
    return Mask(out)


def make_permanent(model: nn.Module) -> nn.Module:
    """``prune.remove`` on every pruned parameter: ``weight = weight_orig * weight_mask`` as a plain parameter."""
    for module in list(model.modules()):
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                hooks = hook._pruning_methods if isinstance(hook, prune.PruningContainer) else (hook,)
                prune.remove(module, hooks[0]._tensor_name)
    return model
