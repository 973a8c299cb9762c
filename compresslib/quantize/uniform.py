r"""Uniform k-bit quantisation of a weight tensor (k = 2..8): symmetric or asymmetric, per tensor or per
output channel, and its inverse.

A weight :math:`w` is stored as an integer code :math:`q` and a real scale :math:`s` (and, when
asymmetric, an integer zero point :math:`z`); it is read back as :math:`\hat w = s\,q` or
:math:`\hat w = s\,(q - z)`.

**Symmetric** (codes centred on zero, :math:`q_{max} = 2^{k-1} - 1`):

.. math::  s = \frac{\max |w|}{q_{max}}, \qquad
           q = \operatorname{clamp}\!\big(\operatorname{round}(w / s),\, -q_{max},\, q_{max}\big), \qquad
           \hat w = s\,q.

It uses :math:`2^k - 1` of the :math:`2^k` codes (the most negative one, :math:`-2^{k-1}`, is left
out so that the grid is symmetric: at k = 8 codes lie in [-127, 127]; at k = 2 in {-1, 0, 1}).

**Asymmetric** (codes :math:`0 .. 2^k - 1` spread over the range, which is widened to include 0 so
that zero, e.g. a pruned weight, is stored exactly):

.. math::  lo = \min(\min w, 0), \quad hi = \max(\max w, 0), \quad s = \frac{hi - lo}{2^k - 1}, \quad
           z = \operatorname{clamp}(\operatorname{round}(-lo / s), 0, 2^k - 1),

.. math::  q = \operatorname{clamp}\!\big(\operatorname{round}(w / s) + z,\, 0,\, 2^k - 1\big), \qquad
           \hat w = s\,(q - z).

**Per tensor**, the max / min run over the whole tensor (one scale). **Per output channel**, over each
output row ``w[c]`` of a weight of shape (out, in, ...) (``out`` scales, one per row), so a row of
small weights is not rounded on the grid of the largest row.

**Rounding** is ``torch.round``: to the nearest integer, halves to even (``round(0.5) = 0``,
``round(1.5) = 2``). **Error bound**: every weight within the range is read back within half a step,
:math:`|w - \hat w| \le s / 2` (its own row's :math:`s` per channel).

A channel (or tensor) of zeros has no range: its scale would be 0 and :math:`w / s` undefined. It
gets :math:`s = 1` instead, so its codes are 0 (symmetric) or z = 0 (asymmetric) and it is read
back as exactly 0. A scale that is not positive and finite is refused wherever scales are taken
as input (:class:`QuantizedTensor`, :func:`dequantize_per_channel`).

Codes are kept as ``int8`` (symmetric) or ``uint8`` (asymmetric), one code per byte in memory;
:class:`~compresslib.quantize.QuantizedLinear` stores them packed k bits each
(:mod:`compresslib.quantize.packing`) with the float32 scales and uint8 zero points, and
:mod:`compresslib.ledger` counts those bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import torch

from compresslib.answers import reference_answer

MIN_BITS, MAX_BITS = 2, 8
SCALE_DTYPE = torch.float32
ZERO_POINT_DTYPE = torch.uint8


def check_bits(bits) -> int:
    """``bits`` as an int, or raise unless it is an integer in 2..8."""
    if isinstance(bits, bool) or not isinstance(bits, Integral) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer from {MIN_BITS} to {MAX_BITS} (k-bit codes), got {bits!r}")
    return int(bits)


def code_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """The smallest and largest code: ``(-(2^(k-1) - 1), 2^(k-1) - 1)`` symmetric, ``(0, 2^k - 1)`` asymmetric."""
    bits = check_bits(bits)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        return -qmax, qmax
    return 0, 2**bits - 1


def check_weight(weight: torch.Tensor, per_channel: bool, name: str = "weight") -> None:
    """Raise unless ``weight`` is a non-empty floating-point tensor with finite values (with an output
    dimension and at least one input per channel when ``per_channel``)."""
    if not isinstance(weight, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(weight).__name__}")
    if not weight.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (float32, float16 or bfloat16), got dtype {weight.dtype}")
    if weight.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(weight.shape)}")
    if per_channel and weight.dim() < 2:
        raise ValueError(
            f"per-channel quantisation needs a weight of shape (out, in, ...) with one scale per output row; "
            f"{name} has shape {tuple(weight.shape)} (quantise it per tensor instead)"
        )
    if not torch.isfinite(weight).all():
        raise ValueError(f"{name} holds NaN or infinite values; quantisation needs a finite range")


def _reduce_dims(weight: torch.Tensor, per_channel: bool) -> tuple[int, ...]:
    return tuple(range(1, weight.dim())) if per_channel else tuple(range(weight.dim()))


def _broadcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-channel values of shape (out,) as (out, 1, ..., 1) to broadcast against ``like``; a scalar as is."""
    return values.reshape(values.shape + (1,) * (like.dim() - values.dim())) if values.dim() == 1 else values


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    r"""A tensor stored as k-bit integer codes and scales: :math:`\hat w = s\,q` (symmetric) or
    :math:`\hat w = s\,(q - z)` (asymmetric; ``zero_point`` is ``None`` when symmetric).

    ``codes``: the weight's shape, ``int8`` (symmetric) or ``uint8`` (asymmetric), within
    :func:`code_range`. ``scale``: float32, shape ``()`` per tensor or ``(out,)`` per output channel,
    every entry positive and finite. ``zero_point``: ``uint8`` of the scale's shape, in 0..2^k-1.
    The invariants are checked on construction.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor | None
    bits: int

    def __post_init__(self):
        bits = check_bits(self.bits)
        symmetric = self.zero_point is None
        expected = torch.int8 if symmetric else torch.uint8
        if not isinstance(self.codes, torch.Tensor) or self.codes.dtype != expected:
            got = self.codes.dtype if isinstance(self.codes, torch.Tensor) else type(self.codes).__name__
            raise ValueError(f"codes must be a {expected} tensor ({'symmetric' if symmetric else 'asymmetric'}), got {got}")
        low, high = code_range(bits, symmetric)
        if self.codes.numel() and (int(self.codes.min()) < low or int(self.codes.max()) > high):
            raise ValueError(f"{bits}-bit codes must lie in [{low}, {high}], got [{int(self.codes.min())}, {int(self.codes.max())}]")
        _check_scales(self.scale, self.codes)
        if not symmetric:
            zp = self.zero_point
            if not isinstance(zp, torch.Tensor) or zp.dtype != ZERO_POINT_DTYPE or zp.shape != self.scale.shape:
                raise ValueError(f"zero_point must be a uint8 tensor of the scale's shape {tuple(self.scale.shape)}")
            if int(zp.max()) > high:
                raise ValueError(f"zero_point must lie in [0, {high}] for {bits} bits, got {int(zp.max())}")

    @property
    def symmetric(self) -> bool:
        return self.zero_point is None

    @property
    def per_channel(self) -> bool:
        return self.scale.dim() == 1

    @property
    def shape(self) -> torch.Size:
        return self.codes.shape

    def numel(self) -> int:
        return self.codes.numel()

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The weight read back, :math:`s q` or :math:`s (q - z)`, in ``dtype``."""
        return dequantize(self).to(dtype)

    def reads_zero(self) -> torch.Tensor:
        """Boolean map, the codes' shape, of the entries that read back as exactly 0 (code 0, or z when asymmetric)."""
        if self.symmetric:
            return self.codes == 0
        return self.codes == _broadcast(self.zero_point, self.codes)

    def to(self, device) -> "QuantizedTensor":
        zp = None if self.zero_point is None else self.zero_point.to(device)
        return QuantizedTensor(self.codes.to(device), self.scale.to(device), zp, self.bits)


def _check_scales(scale, codes: torch.Tensor, name: str = "scale") -> None:
    """Raise unless ``scale`` is a float tensor of shape () or (out,) for ``codes``, positive and finite."""
    if not isinstance(scale, torch.Tensor) or not scale.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {getattr(scale, 'dtype', type(scale).__name__)}")
    allowed = [()] + ([(codes.shape[0],)] if codes.dim() >= 2 else [])
    if tuple(scale.shape) not in allowed:
        raise ValueError(
            f"{name} must have shape {' or '.join(map(str, allowed))} (one per tensor, or one per output row) "
            f"for codes of shape {tuple(codes.shape)}, got {tuple(scale.shape)}"
        )
    if not bool(torch.isfinite(scale).all()) or bool((scale <= 0).any()):
        bad = scale[~(torch.isfinite(scale) & (scale > 0))].flatten()[:3].tolist() if scale.dim() else [scale.item()]
        raise ValueError(f"{name} must be positive and finite (a zero scale reads every code back as 0), got e.g. {bad}")


@reference_answer("04_precision_rank_sharing")
def quantize(weight: torch.Tensor, bits: int, *, symmetric: bool = True, per_channel: bool = True) -> QuantizedTensor:
    r"""Quantise ``weight`` to ``bits``-bit codes (the formulas in the module docstring).

    ``symmetric``: :math:`s = \max|w| / (2^{k-1}-1)`, :math:`q = \mathrm{clamp}(\mathrm{round}(w/s), \pm(2^{k-1}-1))`;
    otherwise asymmetric with a zero point over :math:`[\min(\min w, 0), \max(\max w, 0)]`.
    ``per_channel``: one scale per output row ``weight[c]`` (shape ``(out,)``); otherwise one scale
    (shape ``()``). Rounds half to even (``torch.round``); the error is at most ``s / 2``.
    The weight is quantised in float32 whatever its dtype (float32, float16, bfloat16).
    """
    bits = check_bits(bits)
    check_weight(weight, per_channel)
    w = weight.detach().float()
    dims = _reduce_dims(w, per_channel)
    low, high = code_range(bits, symmetric)
    if symmetric:
        scale = w.abs().amax(dim=dims) / high
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        codes = torch.clamp(torch.round(w / _broadcast(scale, w)), low, high)
        return QuantizedTensor(codes.to(torch.int8), scale.to(SCALE_DTYPE), None, bits)
    lo = w.amin(dim=dims).clamp(max=0)
    hi = w.amax(dim=dims).clamp(min=0)
    scale = (hi - lo) / high
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = torch.clamp(torch.round(-lo / scale), low, high)
    codes = torch.clamp(torch.round(w / _broadcast(scale, w)) + _broadcast(zero_point, w), low, high)
    return QuantizedTensor(codes.to(torch.uint8), scale.to(SCALE_DTYPE), zero_point.to(ZERO_POINT_DTYPE), bits)


@reference_answer("04_precision_rank_sharing")
def dequantize(quantized: QuantizedTensor) -> torch.Tensor:
    r"""The float32 weight read back from ``quantized``: :math:`\hat w = s\,q` (symmetric) or
    :math:`s\,(q - z)` (asymmetric), the scale of each output row applied to that row."""
    if not isinstance(quantized, QuantizedTensor):
        raise ValueError(f"quantized must be a QuantizedTensor (from quantize), got {type(quantized).__name__}")
    codes = quantized.codes.float()
    if quantized.zero_point is not None:
        codes = codes - _broadcast(quantized.zero_point.float(), codes)
    return codes * _broadcast(quantized.scale.float(), codes)


@reference_answer("04_precision_rank_sharing")
def quantize_per_channel(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Symmetric per-output-channel ``bits``-bit quantisation of ``weight`` (out x in):
    :math:`s_c = \max_j |w_{cj}| / (2^{k-1}-1)`, :math:`q_{cj} = \mathrm{clamp}(\mathrm{round}(w_{cj} / s_c), -(2^{k-1}-1), 2^{k-1}-1)`.

    Returns ``(codes, scales)``: ``codes`` int8 of the weight's shape, ``scales`` float32 of shape (out,).
    A row of zeros gets scale 1 (codes 0). Rounds half to even; :math:`|w_{cj} - s_c q_{cj}| \le s_c / 2`."""
    quantized = quantize(weight, bits, symmetric=True, per_channel=True)
    return quantized.codes, quantized.scale


@reference_answer("04_precision_rank_sharing")
def dequantize_per_channel(codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    r"""The float32 weight read back from symmetric per-channel codes: :math:`\hat w_{cj} = s_c\, q_{cj}`.

    ``codes``: an integer tensor of shape (out, in, ...); ``scales``: (out,), positive and finite."""
    if not isinstance(codes, torch.Tensor) or codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise ValueError(f"codes must be an integer tensor, got {getattr(codes, 'dtype', type(codes).__name__)}")
    if codes.dim() < 2:
        raise ValueError(f"codes must have shape (out, in, ...) with one row per output channel, got {tuple(codes.shape)}")
    if not isinstance(scales, torch.Tensor) or scales.dim() != 1:
        raise ValueError(f"scales must be a 1-D tensor with one scale per output row, got {getattr(scales, 'shape', scales)!r}")
    _check_scales(scales, codes, "scales")
    return codes.float() * _broadcast(scales.float(), codes)


@reference_answer("04_precision_rank_sharing")
def fake_quantize(weight: torch.Tensor, bits: int, *, symmetric: bool = True, per_channel: bool = True) -> torch.Tensor:
    """Quantise then dequantise ("fake quantisation"): ``weight`` rounded onto its k-bit grid, in its own
    dtype, to measure what k bits cost in accuracy without integer kernels."""
    return dequantize(quantize(weight, bits, symmetric=symmetric, per_channel=per_channel)).to(weight.dtype)
