"""Low-rank factorisation: a linear layer W (out x in) replaced by V_r (r x in) then U_r (out x r) from
its truncated SVD, at a given rank or energy; applied to chosen layers of a BERT encoder; parameter and
multiply-add counts; singular-value spectra.

:mod:`~compresslib.lowrank.factorize` (one layer and its counts), :mod:`~compresslib.lowrank.encoder`
(chosen layers of a model, spectra). The SVD itself: :mod:`compresslib.svd`.
"""

from compresslib.lowrank.encoder import (
    ATTENTION_PATTERN,
    ENCODER_PATTERN,
    FFN_PATTERN,
    energy_ranks,
    factorize_linears,
    factorized_ranks,
    singular_value_spectra,
)
from compresslib.lowrank.factorize import (
    LowRankLinear,
    break_even_rank,
    factorize_linear,
    linear_parameter_count,
    low_rank_multiply_adds,
    low_rank_parameter_count,
)
from compresslib.svd import low_rank_factors, rank_for_energy, retained_energy, singular_values

__all__ = [
    "ATTENTION_PATTERN", "ENCODER_PATTERN", "FFN_PATTERN", "LowRankLinear", "break_even_rank", "energy_ranks",
    "factorize_linear", "factorize_linears", "factorized_ranks", "linear_parameter_count", "low_rank_factors",
    "low_rank_multiply_adds", "low_rank_parameter_count", "rank_for_energy", "retained_energy", "singular_value_spectra",
    "singular_values",
]
