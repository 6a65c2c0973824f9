"""Small input builders shared by the tests."""

from __future__ import annotations

import torch


def random_qkv(
    b: int = 1,
    h: int = 4,
    hkv: int = 2,
    nq: int = 64,
    nk: int = 64,
    d: int = 32,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    spread: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, nq, d, generator=g) * spread
    k = torch.randn(b, hkv, nk, d, generator=g) * spread
    v = torch.randn(b, hkv, nk, d, generator=g)
    return q.to(dtype), k.to(dtype), v.to(dtype)
