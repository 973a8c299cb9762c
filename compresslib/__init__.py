"""compresslib: the reference library of the model-compression course kit.

Distillation (``compresslib.distill``), pruning (``compresslib.prune``), reduced precision
(``compresslib.quantize``), low-rank factorisation (``compresslib.lowrank``), weight sharing
(``compresslib.share``), one cost ledger for all of them (``compresslib.ledger``), the embedded default
data and teacher (``compresslib.data``, ``compresslib.models``), the reference runs
(``compresslib.runs``) and what the graded notebooks' tests call (``compresslib.grading``).
"""

from compresslib.distill import combined_loss, distillation_loss, kd_step, softmax_with_temperature

__version__ = "0.1.0"

__all__ = ["combined_loss", "distillation_loss", "kd_step", "softmax_with_temperature", "__version__"]
