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


def cast(model: nn.Module, dtype: torch.dtype, *, inplace: bool = False) -> nn.Module:
    """``model`` with every floating-point parameter and buffer in ``dtype`` (float16 or bfloat16 halve
    the bytes; whether they save time depends on the hardware). A copy unless ``inplace``."""
    if dtype not in CAST_DTYPES:
        raise ValueError(f"dtype must be one of {CAST_DTYPES}, got {dtype!r}")
    return _copy_unless(model, inplace).to(dtype)

