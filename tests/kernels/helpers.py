"""Shared builders of the kernel tests: small random inputs and the reference pieces at the same parameters."""

from __future__ import annotations

import torch

from sparseattn.core.call import AttentionCall
from sparseattn.core.validation import validate_qkv
from sparseattn.methods.blocksparse import StarBlockParams, block_codes, plan_blocks

TOL = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 2e-2}


def qkv(b: int, h: int, hkv: int, nq: int, nk: int, d: int = 64, dtype=torch.float32, seed: int = 0,
        device: str = "cpu"):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, nq, d, generator=g)
    k = torch.randn(b, hkv, nk, d, generator=g)
    v = torch.randn(b, hkv, nk, d, generator=g)
    return q.to(device, dtype), k.to(device, dtype), v.to(device, dtype)


def reference_parts(q, k, causal: bool, **params):
    """``(call, params, plan, codes)`` of the ``star_block`` reference."""
    shape, scale = validate_qkv(q, k, k, causal)
    call = AttentionCall(q=q, k=k, v=k, shape=shape, scale=scale)
    p = StarBlockParams(**params)
    return call, p, plan_blocks(shape, p, q.device), block_codes(call, p)
