r"""ALBERT's cross-layer parameter sharing, built from a pre-trained BERT encoder.

ALBERT (Lan et al., 2020) uses one set of layer weights at every depth: the encoder applies the same
layer L times. Here the encoder's ``ModuleList`` of layers holds *one module instance* per group of
consecutive layers, repeated at each position of the group:

.. code-block:: text

    groups=1            layer 0..5  ->  S  S  S  S  S  S          (ALBERT: all layers share)
    groups=3            layer 0..5  ->  A  A  B  B  C  C
    groups=[1, 2, 3]    layer 0..5  ->  A  B  B  C  C  C

Because the positions hold the same module, ``model.parameters()`` yields its tensors once (an
optimizer updates them once per step, with the gradient summed over every position that used them),
and the saving in parameters and bytes is real. The forward pass still runs L layers: sharing saves
memory, not multiply-adds or time.

The shared layer of a group starts from the teacher's layers of that group: ``init="mean"`` takes the
element-wise mean of each tensor over the group's layers, :math:`\theta_g = \frac{1}{|g|}\sum_{l \in g}\theta_l`;
``init=j`` takes the group's j-th layer (0 = its first). Either is then fine-tuned.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from numbers import Integral

import torch
from torch import nn

from compresslib.architecture import layer_container

MEAN = "mean"


def _group_sizes(groups, num_layers: int) -> list[int]:
    """The sizes of consecutive groups covering ``num_layers`` layers."""
    if isinstance(groups, bool):
        raise ValueError(f"groups must be a number of groups or a list of group sizes, got {groups!r}")
    if isinstance(groups, Integral):
        if not 1 <= groups <= num_layers or num_layers % groups:
            raise ValueError(
                f"groups={groups} must divide the {num_layers} layers into equal consecutive groups "
                f"(a divisor of {num_layers}); pass a list of sizes for unequal groups"
            )
        return [num_layers // int(groups)] * int(groups)
    if isinstance(groups, Sequence) and groups and all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in groups):
        if sum(groups) != num_layers:
            raise ValueError(f"group sizes {list(groups)} must add up to the {num_layers} layers, they add up to {sum(groups)}")
        return [int(s) for s in groups]
    raise ValueError(f"groups must be a number of groups or a list of positive group sizes, got {groups!r}")


def _check_init(init, sizes: list[int]):
    if init == MEAN:
        return init
    if isinstance(init, bool) or not isinstance(init, Integral) or not 0 <= init < min(sizes):
        raise ValueError(
            f"init must be 'mean' or the index of a layer within each group, 0..{min(sizes) - 1} "
            f"(group sizes {sizes}), got {init!r}"
        )
    return int(init)


@torch.no_grad()
def _mean_layer(members: list[nn.Module]) -> nn.Module:
    """A copy of ``members[0]`` whose every floating-point tensor is the mean of the members' tensors."""
    shared = copy.deepcopy(members[0])
    states = [m.state_dict() for m in members]
    for name, tensor in shared.state_dict().items():
        if tensor.is_floating_point():
            tensor.copy_(torch.stack([s[name] for s in states]).mean(dim=0))
    return shared


def share_layers(model: nn.Module, *, groups: int | Sequence[int] = 1, init: str | int = MEAN,
                 inplace: bool = False) -> nn.Module:
    """``model`` (a BERT-family encoder) with the layers of each group of consecutive layers replaced by
    one shared layer, repeated at each position of the group.

    ``groups``: a number of equal groups (1 = every layer shares, as in ALBERT; the number of layers =
    no sharing) or a list of group sizes adding up to the number of layers. ``init``: ``"mean"`` (the
    element-wise mean of the group's layers) or ``j``, the group's j-th layer. The shared layers are
    copies (the teacher is not changed). A copy of ``model`` unless ``inplace``;
    ``config.num_hidden_layers`` is unchanged (the encoder still applies that many layers)."""
    container_name, container = layer_container(model)
    sizes = _group_sizes(groups, len(container))
    init = _check_init(init, sizes)
    model = model if inplace else copy.deepcopy(model)
    layers = list(model.get_submodule(container_name))
    positions = []
    start = 0
    for size in sizes:
        members = layers[start:start + size]
        shared = _mean_layer(members) if init == MEAN else copy.deepcopy(members[init])
        positions += [shared] * size
        start += size
    model.set_submodule(container_name, nn.ModuleList(positions))
    return model


def layer_groups(model: nn.Module) -> list[list[int]]:
    """The positions of the encoder layers grouped by the module instance they hold, in order of first
    use: ``[[0], [1], ...]`` without sharing, ``[[0, 1, 2, 3, 4, 5]]`` when all share."""
    _, container = layer_container(model)
    groups: dict[int, list[int]] = {}
    for position, layer in enumerate(container):
        groups.setdefault(id(layer), []).append(position)
    return list(groups.values())
