"""Where things are in a ``transformers`` encoder: its list of layers and its linear layers by name.

Shared by the technique packages that rebuild parts of a model (``distill`` keeps some layers,
``quantize`` and ``lowrank`` replace linear layers, ``share`` repeats one layer), so that each finds
them the same way.
"""

from __future__ import annotations

import re

from torch import nn

LAYER_CONTAINERS = ("encoder.layer", "transformer.layer")
"""Where BERT-family models keep their encoder layers: ``<base>.encoder.layer`` (BERT, RoBERTa,
MiniLM, ...) or ``<base>.transformer.layer`` (DistilBERT)."""


def layer_container(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The qualified name and the ``ModuleList`` of the encoder layers of a BERT-family model."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and any(name == c or name.endswith("." + c) for c in LAYER_CONTAINERS):
            return name, module
    raise ValueError(
        f"the model must be a BERT-family transformers model (BERT, RoBERTa, DistilBERT, ...) whose layers "
        f"are in '<base>.encoder.layer' or '<base>.transformer.layer'; {type(model).__name__} has neither"
    )


def linear_names(model: nn.Module, pattern: str | None = None) -> list[str]:
    """Qualified names of the ``nn.Linear`` modules of ``model`` whose name matches ``pattern``
    (``re.search``; ``None`` selects every linear layer), in ``named_modules`` order, each once.

    Raises when nothing matches, naming a few of the model's linear layers."""
    regex = re.compile(pattern) if pattern is not None else None
    all_linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    selected = [name for name in all_linear if regex is None or regex.search(name)]
    if not selected:
        raise ValueError(
            f"no nn.Linear of the model matches pattern {pattern!r}; its linear layers are e.g. {all_linear[:4]}"
        )
    return selected


def replace_modules(model: nn.Module, names, build) -> dict[str, nn.Module]:
    """Replace each module named in ``names`` by ``build(name, module)``, wherever it occurs.

    A module reachable under several names (a layer shared across positions, as in ALBERT) is built
    once and the one replacement put at every occurrence, so sharing survives. Returns
    ``{name: replacement}``."""
    names = list(names)
    targets = {id(model.get_submodule(name)): name for name in names}
    occurrences = [
        (parent, child_name, child)
        for _, parent in model.named_modules(remove_duplicate=False)
        for child_name, child in parent._modules.items()  # not named_children(): it skips repeated children
        if child is not None and id(child) in targets
    ]
    built: dict[int, nn.Module] = {}
    for parent, child_name, child in occurrences:
        if id(child) not in built:
            built[id(child)] = build(targets[id(child)], child)
        setattr(parent, child_name, built[id(child)])
    return {targets[key]: module for key, module in built.items()}
