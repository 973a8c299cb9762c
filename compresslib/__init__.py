"""compresslib: the reference library of the model-compression course kit.

Distillation (``compresslib.distill``), pruning (``compresslib.prune``), reduced precision
(``compresslib.quantize``), low-rank factorisation (``compresslib.lowrank``), weight sharing
(``compresslib.share``), one cost ledger for all of them (``compresslib.ledger``), the embedded default
data and teacher (``compresslib.data``, ``compresslib.models``), the reference runs
(``compresslib.runs``) and what the graded notebooks' tests call (``compresslib.grading``).

The losses below are imported on first use, so that importing a light module (the course's Jupyter
server extension, ``compresslib.profiles``) does not import torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {name: "compresslib.distill" for name in ("combined_loss", "distillation_loss", "kd_step",
                                                 "softmax_with_temperature")}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'compresslib' has no attribute {name!r}")
