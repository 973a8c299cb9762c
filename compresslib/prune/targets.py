"""Which weights are prunable.

Two named sets (:data:`PRUNABLE_SETS`, regular expressions on the parameter name):

* ``"encoder"`` (:data:`DEFAULT_PATTERN`, the default): the weights of the encoder's linear layers (query,
  key, value, attention output, FFN intermediate and output);
* ``"encoder+pooler"`` (:data:`CHEN_PATTERN`): those and the pooler's dense weight, the set Chen et al.
  (2020) prune in their code (BERT-Tickets ``LT_glue.py``, ``pruning_model``: 72 encoder linears of
  BERT-base plus ``bert.pooler.dense.weight``).

Embeddings, LayerNorms, biases and the task classifier are pruned by neither. Any other set: a regular
expression, or an explicit list of names.
"""

from __future__ import annotations

import re

from torch import nn

#: Weights of ``nn.Linear`` modules whose name has an ``encoder`` component (``bert.encoder.layer.0...``).
DEFAULT_PATTERN = r"(^|\.)encoder\."
#: ... and the pooler's (``bert.pooler.dense.weight``): Chen et al.'s prunable set.
CHEN_PATTERN = r"(^|\.)(encoder|pooler)\."
PRUNABLE_SETS = {"encoder": DEFAULT_PATTERN, "encoder+pooler": CHEN_PATTERN}


def prunable_names(model: nn.Module, *, pattern: str | None = DEFAULT_PATTERN, names=None) -> list[str]:
    """Names of the prunable weights of ``model``, in ``named_parameters`` order.

    ``names`` (an explicit list) wins over ``pattern``; every name is checked to exist. Otherwise the
    ``weight`` of each ``nn.Linear`` whose full parameter name matches ``pattern`` (``re.search``);
    ``pattern=None`` selects every linear layer's weight.
    """
    params = dict(model.named_parameters())
    if names is not None:
        names = list(names)
        unknown = [n for n in names if n not in params]
        if unknown:
            raise ValueError(f"unknown parameter names {unknown[:5]}; the model has e.g. {list(params)[:5]}")
        if len(set(names)) != len(names):
            raise ValueError("names lists a parameter more than once")
        return names
    regex = re.compile(pattern) if pattern is not None else None
    selected = []
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            name = f"{module_name}.weight" if module_name else "weight"
            if regex is None or regex.search(name):
                selected.append(name)
    order = {n: i for i, n in enumerate(params)}
    selected = sorted((n for n in selected if n in order), key=order.__getitem__)
    if not selected:
        raise ValueError(f"no nn.Linear weight of the model matches pattern {pattern!r}; pass pattern=None or names=[...]")
    return selected
