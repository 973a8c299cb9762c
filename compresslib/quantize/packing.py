"""Packing k-bit codes into bytes, so that a k-bit weight takes k bits as stored.

Format: the codes of a tensor, in row-major order, are shifted to unsigned values
``u = q - q_min`` in 0..2^k-1 and written as one little-endian bit stream, k bits per code (least
significant bit first), padded with zero bits to a whole byte: ``ceil(n * k / 8)`` bytes for n codes.
At k = 8, 4 and 2 no code straddles a byte; at k = 3, 5, 6, 7 codes run across byte boundaries.
"""

from __future__ import annotations

import math

import torch

from compresslib.quantize.uniform import check_bits


def _packed_size(numel: int, bits: int) -> int:
    return math.ceil(numel * bits / 8)


def pack_codes(codes: torch.Tensor, bits: int, low: int) -> torch.Tensor:
    """The codes (any integer dtype, values in ``low .. low + 2^bits - 1``) as a 1-D ``uint8`` stream of
    ``ceil(numel * bits / 8)`` bytes."""
    bits = check_bits(bits)
    if codes.is_floating_point() or codes.dtype == torch.bool:
        raise ValueError(f"codes must be an integer tensor, got {codes.dtype}")
    unsigned = codes.reshape(-1).to(torch.int16) - low
    if unsigned.numel() and (int(unsigned.min()) < 0 or int(unsigned.max()) >= 2**bits):
        raise ValueError(f"codes must lie in [{low}, {low + 2 ** bits - 1}] to pack into {bits} bits")
    if 8 % bits == 0:  # whole codes per byte: 8 / bits codes side by side
        per_byte = 8 // bits
        unsigned = torch.cat([unsigned, unsigned.new_zeros((-unsigned.numel()) % per_byte)])
        shifts = torch.arange(0, 8, bits, dtype=torch.int16, device=codes.device)
        return (unsigned.reshape(-1, per_byte) << shifts).sum(dim=1).to(torch.uint8)
    shifts = torch.arange(bits, dtype=torch.int16, device=codes.device)
    stream = ((unsigned[:, None] >> shifts) & 1).to(torch.uint8).reshape(-1)
    stream = torch.cat([stream, stream.new_zeros((-stream.numel()) % 8)])
    weights = torch.tensor([1 << i for i in range(8)], dtype=torch.int16, device=codes.device)
    return (stream.reshape(-1, 8) * weights).sum(dim=1).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, low: int, shape, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: the codes of ``shape`` in ``dtype`` from the ``uint8`` stream."""
    bits = check_bits(bits)
    numel = math.prod(shape)
    if packed.dtype != torch.uint8 or packed.dim() != 1 or packed.numel() != _packed_size(numel, bits):
        raise ValueError(f"packed must be a 1-D uint8 stream of {_packed_size(numel, bits)} bytes for {numel} codes of {bits} bits")
    if 8 % bits == 0:
        fields = [(packed >> shift) & (2**bits - 1) for shift in range(0, 8, bits)]
        unsigned = torch.stack(fields, dim=1).reshape(-1)[:numel]
    else:
        shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
        stream = ((packed[:, None] >> shifts) & 1).reshape(-1)[: numel * bits].reshape(numel, bits).to(torch.int16)
        unsigned = (stream << torch.arange(bits, dtype=torch.int16, device=packed.device)).sum(dim=1)
    return (unsigned.to(torch.int16) + low).to(dtype).reshape(shape)
