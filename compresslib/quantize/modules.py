"""Quantising a model's linear layers: k-bit weights stored packed, fake quantisation in place,
PyTorch's dynamic int8 with real int8 CPU kernels, and fp16 / bf16 casts.

Three ways to put a model's linear weights on a k-bit grid, for three questions:

* :func:`fake_quantize_linears` — *what does k bits cost in accuracy?* Each ``nn.Linear`` keeps its
  float weight, overwritten by its k-bit reading (:func:`~compresslib.quantize.uniform.fake_quantize`).
  Same kernels, same speed, same bytes as stored (the floats are still floats).
* :func:`quantize_linears` — *how many bytes at k bits?* Each ``nn.Linear`` becomes a
  :class:`QuantizedLinear` holding its codes packed k bits each plus the scales; it dequantises its
  weight at every forward pass (weight-only quantisation without integer kernels: bytes saved, time
  not). Its outputs equal the fake-quantised layer's.
* :func:`dynamic_int8` — *is int8 faster?* PyTorch's post-training dynamic quantisation
  (``torch.ao.quantization.quantize_dynamic``): int8 weights, activations quantised per batch at run
  time, int8 matrix products (fbgemm / x86 / qnnpack kernels) on the CPU only.

The word-embedding table, half of MiniLM's weights, is not a linear layer: :func:`quantize_word_embeddings`
stores it as a :class:`QuantizedEmbedding` (k-bit codes, one scale per row, rows read back at lookup),
and :func:`round_weights` rounds every weight to float16 / bfloat16 while computing in float32 (the
accuracy of 16-bit storage on a CPU whose 16-bit kernels are slow).

Which int8 path: in torch 2.13 ``torch.ao.quantization`` still works but warns that it is deprecated in
favour of ``torchao``. Measured on this kit's 2-core CPU (a shared machine) with the MiniLM teacher at
batch 32 and 64 tokens, best of 7 interleaved: fp32 1.17 s, ``torch.ao`` ``quantize_dynamic`` 0.40 s,
torchao 0.18.0 ``Int8DynamicActivationInt8WeightConfig`` 13.9 s (12x slower than fp32: without
``torch.compile`` its CPU path runs unfused reference ops). So the kit uses ``torch.ao`` and does not
depend on torchao; its deprecation warnings are silenced here.

Per channel or per tensor: per-output-channel int8 weights keep the encoder's outputs closer to fp32
(mean cosine 0.970 against 0.925 per tensor, on two reviews; weight-only 8 bits alone: 0.9996, so most
of the error comes from the activations, quantised per tensor at run time) for about 5% of the
speed-up (``bench/bench_int8.py``, batch 32 x 64 tokens, best of 15 interleaved, shared machine:
1.38x against 1.45x fp32). :func:`dynamic_int8` quantises per channel by default.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from compresslib.architecture import linear_names, replace_modules
from compresslib.quantize.packing import pack_codes, unpack_codes
from compresslib.quantize.uniform import (
    QuantizedTensor,
    check_bits,
    code_range,
    fake_quantize,
    quantize,
)

CAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class QuantizedLinear(nn.Module):
    r"""A linear layer whose weight is stored as k-bit codes packed into bytes, plus float32 scales
    (and uint8 zero points when asymmetric): :math:`y = x \hat W^\top + b` with :math:`\hat W` the
    weight read back (:func:`~compresslib.quantize.uniform.dequantize`) at each call.

    Buffers (in ``state_dict``): ``packed`` (uint8, ``ceil(out * in * k / 8)`` bytes), ``scale``
    (float32, ``()`` or ``(out,)``), ``zero_point`` (uint8, asymmetric only). The bias stays a float
    parameter. Build one with :meth:`from_linear`.
    """

    def __init__(self, quantized: QuantizedTensor, bias: torch.Tensor | None):
        super().__init__()
        if not isinstance(quantized, QuantizedTensor) or len(quantized.shape) != 2:
            raise ValueError("quantized must be the QuantizedTensor of a 2-D (out x in) weight")
        self.out_features, self.in_features = quantized.shape
        self.bits = quantized.bits
        self.symmetric = quantized.symmetric
        self._low = code_range(self.bits, self.symmetric)[0]
        self.register_buffer("packed", pack_codes(quantized.codes, self.bits, self._low))
        self.register_buffer("scale", quantized.scale.clone())
        self.register_buffer("zero_point", None if quantized.zero_point is None else quantized.zero_point.clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, bits: int, *, symmetric: bool = True, per_channel: bool = True) -> "QuantizedLinear":
        """The ``bits``-bit version of ``linear`` (its weight quantised by :func:`quantize`, its bias kept)."""
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        return cls(quantize(linear.weight, bits, symmetric=symmetric, per_channel=per_channel), linear.bias)

    @property
    def quantized(self) -> QuantizedTensor:
        """The stored weight as a :class:`QuantizedTensor` (codes unpacked)."""
        dtype = torch.int8 if self.symmetric else torch.uint8
        codes = unpack_codes(self.packed, self.bits, self._low, (self.out_features, self.in_features), dtype)
        return QuantizedTensor(codes, self.scale, self.zero_point, self.bits)

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.quantized.dequantize(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return nn.functional.linear(x, self.dequantized_weight(x.dtype), bias)

    def extra_repr(self) -> str:
        kind = ("symmetric" if self.symmetric else "asymmetric") + (", per channel" if self.scale.dim() else ", per tensor")
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, {kind}"


class QuantizedEmbedding(nn.Module):
    r"""A lookup table (V x H) stored as k-bit codes packed into bytes plus one float32 scale per row
    (a row is a token's vector; and one uint8 zero point per row when asymmetric): row :math:`i` is read
    back as :math:`\hat e_i = s_i\,q_i` (or :math:`s_i (q_i - z_i)`). Weight-only quantisation: the
    looked-up rows are read back in float32, so it saves bytes, not time.

    Buffers: ``packed`` (uint8, ``ceil(V * H * k / 8)`` bytes), ``scale`` (float32, ``(V,)``),
    ``zero_point`` (uint8, asymmetric only). When a row's codes fill whole bytes (``H * k`` divisible
    by 8) only the looked-up rows are unpacked; otherwise the table is read back whole at each call.
    Build one with :meth:`from_embedding`.
    """

    def __init__(self, quantized: QuantizedTensor, padding_idx: int | None = None):
        super().__init__()
        if not isinstance(quantized, QuantizedTensor) or len(quantized.shape) != 2 or not quantized.per_channel:
            raise ValueError("quantized must be the per-row QuantizedTensor of a 2-D (V x H) table")
        self.num_embeddings, self.embedding_dim = quantized.shape
        self.bits = quantized.bits
        self.symmetric = quantized.symmetric
        self.padding_idx = padding_idx
        self._low = code_range(self.bits, self.symmetric)[0]
        self.register_buffer("packed", pack_codes(quantized.codes, self.bits, self._low))
        self.register_buffer("scale", quantized.scale.clone())
        self.register_buffer("zero_point", None if quantized.zero_point is None else quantized.zero_point.clone())

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding, bits: int, *, symmetric: bool = True) -> "QuantizedEmbedding":
        """The ``bits``-bit version of ``embedding``: each row quantised with its own scale (:func:`quantize`
        per channel, the channels being the rows)."""
        if not isinstance(embedding, nn.Embedding):
            raise ValueError(f"embedding must be an nn.Embedding, got {type(embedding).__name__}")
        quantized = quantize(embedding.weight, bits, symmetric=symmetric, per_channel=True)
        return cls(quantized, embedding.padding_idx)

    @property
    def quantized(self) -> QuantizedTensor:
        """The stored table as a :class:`QuantizedTensor` (codes unpacked)."""
        codes = unpack_codes(self.packed, self.bits, self._low, (self.num_embeddings, self.embedding_dim), self._code_dtype)
        return QuantizedTensor(codes, self.scale, self.zero_point, self.bits)

    @property
    def _code_dtype(self) -> torch.dtype:
        return torch.int8 if self.symmetric else torch.uint8

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if (self.embedding_dim * self.bits) % 8:
            return nn.functional.embedding(input_ids, self.quantized.dequantize())
        ids = input_ids.reshape(-1)
        rows = self.packed.view(self.num_embeddings, -1)[ids].reshape(-1)
        codes = unpack_codes(rows, self.bits, self._low, (ids.numel(), self.embedding_dim), self._code_dtype).float()
        if self.zero_point is not None:
            codes = codes - self.zero_point[ids].float()[:, None]
        return (codes * self.scale[ids][:, None]).reshape(*input_ids.shape, self.embedding_dim)

    def extra_repr(self) -> str:
        kind = "symmetric" if self.symmetric else "asymmetric"
        return f"{self.num_embeddings}, {self.embedding_dim}, bits={self.bits}, {kind}, per row"


def _copy_unless(model: nn.Module, inplace: bool) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    return model if inplace else copy.deepcopy(model)


def quantize_linears(model: nn.Module, bits: int, *, symmetric: bool = True, per_channel: bool = True,
                     pattern: str | None = None, inplace: bool = False) -> nn.Module:
    """``model`` with each ``nn.Linear`` whose name matches ``pattern`` (``None``: all of them, the task
    head included) replaced by a :class:`QuantizedLinear` of ``bits`` bits. A copy unless ``inplace``;
    a layer shared across positions stays one shared module."""
    bits = check_bits(bits)
    names = linear_names(model, pattern)
    model = _copy_unless(model, inplace)
    replace_modules(model, names, lambda _, linear: QuantizedLinear.from_linear(
        linear, bits, symmetric=symmetric, per_channel=per_channel).to(linear.weight.device))
    return model


@torch.no_grad()
def fake_quantize_linears(model: nn.Module, bits: int, *, symmetric: bool = True, per_channel: bool = True,
                          pattern: str | None = None, inplace: bool = False,
                          quantizer: Callable[[torch.Tensor, int], torch.Tensor] | None = None) -> nn.Module:
    """``model`` with the weight of each ``nn.Linear`` matching ``pattern`` (``None``: all) overwritten by
    its ``bits``-bit reading, quantise-then-dequantise. A copy unless ``inplace``.

    ``quantizer(weight, bits) -> weight read back`` replaces the default
    ``fake_quantize(weight, bits, symmetric=..., per_channel=...)`` (a notebook passes the student's
    own); ``symmetric`` and ``per_channel`` configure only the default."""
    bits = check_bits(bits)
    if quantizer is not None and not (symmetric and per_channel):
        raise ValueError("pass either a quantizer or symmetric/per_channel for the default one, not both")
    quantizer = quantizer or partial(fake_quantize, symmetric=symmetric, per_channel=per_channel)
    names = linear_names(model, pattern)
    model = _copy_unless(model, inplace)
    for name in names:
        weight = model.get_submodule(name).weight
        read_back = quantizer(weight.detach().clone(), bits)
        if not isinstance(read_back, torch.Tensor) or read_back.shape != weight.shape:
            raise ValueError(f"quantizer must return a tensor of the weight's shape {tuple(weight.shape)} for {name}")
        weight.copy_(read_back.to(weight.dtype))
    return model


def dynamic_int8(model: nn.Module, *, per_channel: bool = True, pattern: str | None = None,
                 inplace: bool = False) -> nn.Module:
    """PyTorch's post-training dynamic int8 quantisation of the ``nn.Linear`` layers matching ``pattern``
    (``None``: all): int8 weights (symmetric, per tensor or per output channel, codes -128..127 with
    ``s = max|w| / 127.5``), activations quantised per batch at run time, int8 kernels. CPU only.

    A copy unless ``inplace``. Uses ``torch.ao.quantization.quantize_dynamic`` (see the module
    docstring for why, and for its silenced deprecation warnings)."""
    from torch.ao import quantization as tq

    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("dynamic int8 runs on the CPU only (fbgemm / x86 / qnnpack kernels): move the model to the CPU first")
    qconfig = tq.per_channel_dynamic_qconfig if per_channel else tq.default_dynamic_qconfig
    names = linear_names(model, pattern)
    spec = {nn.Linear: qconfig} if pattern is None else {name: qconfig for name in names}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=re.escape("torch.quantize_per_tensor, torch.quantize_per_channel"))
        return tq.quantize_dynamic(model, spec, dtype=torch.qint8, inplace=inplace)


def quantize_word_embeddings(model: nn.Module, bits: int, *, symmetric: bool = True, inplace: bool = False) -> nn.Module:
    """``model`` (a ``transformers`` model) whose input word embeddings are a :class:`QuantizedEmbedding` of
    ``bits`` bits, one scale per row. A copy unless ``inplace``. The position and token-type embeddings
    stay as they are (BERT-small's are 0.2M values against the word table's 11.7M)."""
    bits = check_bits(bits)
    if not hasattr(model, "get_input_embeddings"):
        raise ValueError(f"model must be a transformers model with get_input_embeddings, got {type(model).__name__}")
    embedding = model.get_input_embeddings()
    if not isinstance(embedding, nn.Embedding):
        raise ValueError(f"the model's input embeddings must be an nn.Embedding, got {type(embedding).__name__}")
    model = _copy_unless(model, inplace)
    model.set_input_embeddings(QuantizedEmbedding.from_embedding(model.get_input_embeddings(), bits, symmetric=symmetric))
    return model


@torch.no_grad()
def round_weights(model: nn.Module, dtype: torch.dtype, *, inplace: bool = False) -> nn.Module:
    """``model`` with every floating-point parameter rounded to ``dtype`` (float16 or bfloat16) and
    stored back in its own dtype: the values a :func:`cast` model holds, computed at the original
    precision ("fake casting"). What it measures is the rounding of the stored weights, not 16-bit
    arithmetic; it lets a CPU without fast 16-bit kernels measure the accuracy of 16-bit storage. A copy
    unless ``inplace``."""
    if dtype not in CAST_DTYPES:
        raise ValueError(f"dtype must be one of {CAST_DTYPES}, got {dtype!r}")
    model = _copy_unless(model, inplace)
    for param in model.parameters():
        if param.is_floating_point():
            param.copy_(param.to(dtype).to(param.dtype))
    return model


def cast(model: nn.Module, dtype: torch.dtype, *, inplace: bool = False) -> nn.Module:
    """``model`` with every floating-point parameter and buffer in ``dtype`` (float16 or bfloat16 halve
    the bytes; whether they save time depends on the hardware). A copy unless ``inplace``."""
    if dtype not in CAST_DTYPES:
        raise ValueError(f"dtype must be one of {CAST_DTYPES}, got {dtype!r}")
    return _copy_unless(model, inplace).to(dtype)

