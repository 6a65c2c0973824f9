"""Bit-level numerics the papers build on: two's-complement bit planes (PADE's bit-serial keys) and
leading-zero / leading-one codes (SOFA's log-domain DLZS prediction).

All functions are vectorised over integer tensors and exact (no floating-point rounding: ``floor_log2``
goes through ``frexp`` in float64, exact for magnitudes below 2^53; we accept widths up to 32 bits).
"""

from __future__ import annotations

import torch

from .errors import InvalidInputError
from .quant import check_bits

INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
# elements of a key bit-plane PADE's GSAT AND tree reads at once: eight 8-element sub-groups (PADE section V-D)
PLANE_SLICE = 64


def _check_int(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in INT_DTYPES:
        raise InvalidInputError(f"{name} must have an integer dtype, got {x.dtype}")
    return x


def plane_weights(bits: int) -> torch.Tensor:
    """Weights of the planes of a ``bits``-bit two's-complement number, MSB first: ``[-2^(b-1), 2^(b-2), .., 1]``."""
    check_bits(bits, 2, 32)
    w = 2 ** torch.arange(bits - 1, -1, -1, dtype=torch.int64)
    w[0] = -w[0]
    return w


def bit_planes(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Decompose integers into ``bits`` two's-complement bit planes, MSB (the sign bit) first.

    Returns a ``uint8`` tensor ``[bits, *x.shape]`` of 0/1 with ``x == sum_i plane_weights(bits)[i] * planes[i]``.
    Values outside ``[-2^(b-1), 2^(b-1) - 1]`` are an error (they would wrap around).
    """
    _check_int("x", x)
    check_bits(bits, 2, 32)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    x64 = x.to(torch.int64)
    if x64.numel() and (int(x64.min()) < lo or int(x64.max()) > hi):
        raise InvalidInputError(
            f"x must lie in [{lo}, {hi}] for {bits}-bit planes, got [{int(x64.min())}, {int(x64.max())}]"
        )
    u = x64 & ((1 << bits) - 1)  # two's-complement code as an unsigned number
    shifts = torch.arange(bits - 1, -1, -1, dtype=torch.int64, device=x.device).view(-1, *([1] * x.dim()))
    return ((u.unsqueeze(0) >> shifts) & 1).to(torch.uint8)


def recompose(planes: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`bit_planes`: int64 tensor of ``planes.shape[1:]``."""
    _check_int("planes", planes)
    if planes.dim() < 1:
        raise InvalidInputError("planes must have a leading plane dimension")
    w = plane_weights(planes.shape[0]).to(planes.device).view(-1, *([1] * (planes.dim() - 1)))
    return (planes.to(torch.int64) * w).sum(dim=0)


def truncated_keys(x: torch.Tensor, bits: int, planes: int) -> torch.Tensor:
    """``x`` (``bits``-bit two's complement) with only its top ``planes`` bit planes, the rest zero, int64: an
    arithmetic shift ``floor(x / 2^(bits - planes)) * 2^(bits - planes)``. What a bit-serial reader knows of a key
    after ``planes`` MSB-first planes (PADE's rounds, SpAtten's MSB fetch)."""
    drop = bits - planes
    x64 = x.to(torch.int64)
    return (x64 >> drop) << drop


def floor_log2(x: torch.Tensor) -> torch.Tensor:
    """``floor(log2 |x|)`` for non-zero integers (int64); zero is an error (it has no leading one)."""
    _check_int("x", x)
    mag = x.to(torch.int64).abs()
    if bool((mag == 0).any()):
        raise InvalidInputError("floor_log2 is undefined for 0; mask zeros first (see leading_one)")
    if int(mag.max()) >= 2**32:
        raise InvalidInputError("floor_log2 supports magnitudes below 2^32")
    _, exponent = torch.frexp(mag.to(torch.float64))  # mag = m * 2^e with m in [0.5, 1)
    return exponent.to(torch.int64) - 1


def bit_length(x: torch.Tensor) -> torch.Tensor:
    """Number of significant bits of ``|x|`` (0 for 0), int64."""
    _check_int("x", x)
    mag = x.to(torch.int64).abs()
    safe = torch.where(mag == 0, torch.ones_like(mag), mag)
    return torch.where(mag == 0, torch.zeros_like(mag), floor_log2(safe) + 1)


def leading_zero_count(x: torch.Tensor, width: int) -> torch.Tensor:
    """Leading zeros of the unsigned ``width``-bit number ``x`` (``width`` for 0), int64.

    ``x`` must lie in ``[0, 2^width)``: for a signed value pass its magnitude, as a sign-magnitude leading-zero
    encoder (SOFA's LZE) does.
    """
    _check_int("x", x)
    check_bits(width, 1, 32, name="width")
    x64 = x.to(torch.int64)
    if x64.numel() and (int(x64.min()) < 0 or int(x64.max()) >= 2**width):
        raise InvalidInputError(f"x must lie in [0, 2^{width}) for a {width}-bit leading-zero count")
    return width - bit_length(x64)


def leading_one(x: torch.Tensor) -> torch.Tensor:
    """The leading-one (log-domain) code ``sign(x) * 2^floor(log2|x|)``, 0 for 0, int64.

    This is the "floor" snap of SOFA Fig. 7(c): 6 -> 4, 24 -> 16, -5 -> -4.
    """
    _check_int("x", x)
    x64 = x.to(torch.int64)
    safe = torch.where(x64 == 0, torch.ones_like(x64), x64)
    return torch.where(x64 == 0, torch.zeros_like(x64), torch.sign(x64) * (1 << floor_log2(safe)))
