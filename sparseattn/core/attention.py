"""Exact attention arithmetic shared by the reference methods: grouped scores, masked softmax, and the trace
of the formal (exact) computation on a set of kept pairs.

GQA is handled by viewing the query heads of one KV group as extra rows (``[B, Hkv, g*Nq, D]``), so keys and
values are never copied per query head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .shape import Shape
from .workload import Per, SparsityProfile, Workload


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Arithmetic dtype of the references: float64 stays float64, everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def grouped_scores(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """Scaled logits ``scale * q k^T`` as ``[B, H, Nq, Nk]`` in the compute dtype (GQA by grouping)."""
    b, h, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    dt = compute_dtype(q.dtype)
    qg = q.to(dt).reshape(b, hkv, (h // hkv) * nq, d)
    s = torch.matmul(qg, k.to(dt).transpose(-1, -2))
    s.mul_(scale)
    return s.view(b, h, nq, nk)


def grouped_pv(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``p @ v`` for probabilities ``[B, H, Nq, Nk]`` and values ``[B, Hkv, Nk, D]`` -> ``[B, H, Nq, D]``."""
    b, h, nq, nk = p.shape
    hkv, d = v.shape[1], v.shape[3]
    out = torch.matmul(p.reshape(b, hkv, (h // hkv) * nq, nk), v.to(p.dtype))
    return out.view(b, h, nq, d)


def masked_softmax_(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax of ``scores`` over the last dim restricted to ``keep`` (broadcastable bool mask), in place when no
    gradient is being recorded (out of place otherwise, so autograd can differentiate it).

    Every row must keep at least one pair; dropped pairs get probability exactly 0.
    """
    if scores.requires_grad:
        masked = scores.masked_fill(~keep, float("-inf"))
        return torch.softmax(masked, dim=-1)
    scores.masked_fill_(~keep, float("-inf"))
    scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()
    return scores.div_(scores.sum(dim=-1, keepdim=True))


def attend_kept(scores: torch.Tensor, keep: torch.Tensor, v: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    """Softmax over the kept pairs of ``scores`` (consumed in place), times ``v``, cast to ``out_dtype``."""
    p = masked_softmax_(scores, keep)
    return grouped_pv(p, v).to(out_dtype)


def exact_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shape: Shape, scale: float, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Dense attention through PyTorch's fused SDPA kernel, in the compute dtype, returned in ``q``'s dtype.

    Causal attention with ``q_len < k_len`` passes the bottom-right-aligned mask of :func:`valid_mask`
    (``valid`` when the caller has it; SDPA's own ``is_causal`` is top-left aligned).
    """
    dt = compute_dtype(q.dtype)
    causal_square = shape.causal and shape.q_len == shape.k_len and shape.window is None
    mask = None
    if shape.causal and not causal_square:
        mask = valid if valid is not None else shape.valid_mask(q.device)
    out = F.scaled_dot_product_attention(
        q.to(dt),
        k.to(dt),
        v.to(dt),
        attn_mask=mask,
        is_causal=causal_square,
        scale=scale,
        enable_gqa=shape.group_size > 1,
    )
    return out.to(q.dtype)


def valid_mask_4d(shape: Shape, device: torch.device) -> torch.Tensor:
    """The valid-pair mask as a ``[1, 1, Nq, Nk]`` view (broadcasts over batch and heads)."""
    return shape.valid_mask(device)[None, None]


def add_formal_work(w: Workload, kept: float, bits: int) -> Workload:
    """Add exact attention on ``kept`` pairs to ``w``: QK MACs, softmax and PV (``rows``, ``D`` from its shape).

    Counts: ``qk/mac = kept*D``; ``softmax/compare = kept`` (row max); ``softmax/add = 2*kept`` (subtract max, sum);
    ``softmax/exp = kept``; ``softmax/div = rows`` (one reciprocal per row); ``pv/mac = kept*D``;
    ``pv/mul = rows*D`` (normalisation).
    """
    rows, d = float(w.shape.rows), w.shape.head_dim
    w.add("qk", "mac", bits, kept * d, Per.PAIR_DIM)
    w.add("softmax", "compare", bits, kept, Per.PAIR)
    w.add("softmax", "add", bits, 2 * kept, Per.PAIR)
    w.add("softmax", "exp", bits, kept, Per.PAIR)
    w.add("softmax", "div", bits, rows, Per.ROW)
    w.add("pv", "mac", bits, kept * d, Per.PAIR_DIM)
    w.add("pv", "mul", bits, rows * d, Per.ROW_DIM)
    return w


def formal_workload(
    shape: Shape, keep: torch.Tensor, bits: int, method: str, params: dict | None = None, **meta: object
) -> Workload:
    """Trace of exact attention restricted to ``keep`` (:func:`add_formal_work`); the sparsity profile is taken
    from ``keep``."""
    profile = SparsityProfile.from_keep(keep, shape)
    w = Workload(shape=shape, profile=profile, meta={"method": method, "params": dict(params or {}), **meta})
    return add_formal_work(w, float(profile.kept_pairs), bits)
