"""Reduced precision: uniform k-bit quantisation of weights (k = 2..8), fake quantisation, k-bit weights
stored packed, PyTorch's dynamic int8 with int8 CPU kernels, and fp16 / bf16 casts.

:mod:`~compresslib.quantize.uniform` (the math: quantise, dequantise, the typed result),
:mod:`~compresslib.quantize.packing` (k bits a code as stored) and
:mod:`~compresslib.quantize.modules` (a model's linear layers).
"""

from compresslib.quantize.modules import (
    CAST_DTYPES,
    QuantizedEmbedding,
    QuantizedLinear,
    cast,
    dynamic_int8,
    fake_quantize_linears,
    quantize_linears,
    quantize_word_embeddings,
    round_weights,
)
from compresslib.quantize.packing import pack_codes, unpack_codes
from compresslib.quantize.uniform import (
    MAX_BITS,
    MIN_BITS,
    QuantizedTensor,
    check_bits,
    code_range,
    dequantize,
    dequantize_per_channel,
    fake_quantize,
    quantize,
    quantize_per_channel,
)

__all__ = [
    "CAST_DTYPES", "MAX_BITS", "MIN_BITS", "QuantizedEmbedding", "QuantizedLinear", "QuantizedTensor", "cast", "check_bits", "code_range",
    "dequantize", "dequantize_per_channel", "dynamic_int8", "fake_quantize", "fake_quantize_linears", "pack_codes",
    "quantize", "quantize_linears", "quantize_per_channel", "quantize_word_embeddings", "round_weights",
    "unpack_codes",
]
