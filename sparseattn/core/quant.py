"""Symmetric integer quantisation, as the papers' accelerators run it (INT8 keys for PADE, 4-bit predictors
for Sanger/DOTA, INT16 queries for SOFA's DLZS).

``x ≈ values * scale`` with ``values`` in ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` (the symmetric range: the most
negative code ``-2^(b-1)`` is never produced) and ``scale = max|x| / (2^(b-1) - 1)`` over the granularity's
group. Rounding is round-half-to-even (``torch.round``). A group whose values are all zero gets scale 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .errors import InvalidParameterError
from .validation import check_tensor

Granularity = Literal["tensor", "head", "token"]
GRANULARITIES: tuple[str, ...] = ("tensor", "head", "token")


@dataclass
class QuantizedTensor:
    """Integer codes, their scale (broadcastable to ``values``) and the bit width."""

    values: torch.Tensor
    scale: torch.Tensor
    bits: int

    def dequantize(self) -> torch.Tensor:
        return self.values.to(self.scale.dtype) * self.scale

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1


def int_dtype(bits: int) -> torch.dtype:
    """Smallest signed integer dtype that holds ``bits``-bit two's-complement codes."""
    if bits <= 8:
        return torch.int8
    if bits <= 16:
        return torch.int16
    return torch.int32


def _reduce_dims(x: torch.Tensor, granularity: str) -> tuple[int, ...]:
    if granularity == "tensor":
        return tuple(range(x.dim()))
    if granularity == "token":  # one scale per vector along the last dim: [..., N, 1]
        if x.dim() < 2:
            raise InvalidParameterError("per-token quantisation needs a tensor of rank >= 2")
        return (x.dim() - 1,)
    if granularity == "head":  # one scale per [N, D] matrix: [B, H, 1, 1]
        if x.dim() < 3:
            raise InvalidParameterError("per-head quantisation needs a tensor of rank >= 3")
        return (x.dim() - 2, x.dim() - 1)
    raise InvalidParameterError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")


def check_bits(bits: object, low: int = 2, high: int = 16, name: str = "bits") -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not low <= bits <= high:
        raise InvalidParameterError(f"{name} must be an int in {low}..{high}, got {bits!r}")
    return bits


def quantize_symmetric(x: torch.Tensor, bits: int = 8, granularity: Granularity = "tensor") -> QuantizedTensor:
    """Quantise ``x`` to symmetric ``bits``-bit integers with one scale per tensor, head or token.

    ``granularity="head"`` takes one scale per ``[seq, head_dim]`` matrix (the last two dims),
    ``"token"`` one per vector along the last dim. The scale is float32 (float64 for float64 input).
    """
    check_tensor("x", x)
    check_bits(bits)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(compute)
    qmax = 2 ** (bits - 1) - 1
    amax = xf.abs().amax(dim=_reduce_dims(xf, granularity), keepdim=True)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    values = torch.round(xf / scale).clamp_(-qmax, qmax).to(int_dtype(bits))
    return QuantizedTensor(values=values, scale=scale, bits=bits)
