"""A3 (HPCA'20): approximate candidate search over per-dimension sorted keys, then exact scores.

Offline, each of the ``d`` key dimensions is sorted. For a query, A3 walks the sorted columns greedily: a
max-heap over the ``d`` column pointers yields the largest products ``q_d k_jd`` first (for ``q_d < 0`` the
column is walked from the other end). The keys touched in ``M`` iterations are the candidates (each with a
partial score, the sum of its products taken; the best one is always a candidate); their exact scores are
computed and a post-scoring threshold keeps the candidates within ``delta`` (scaled-logit units) of the best
exact candidate. (A3 also runs a min-heap over the most negative products to refine the estimate; the
estimate only ranks the guard candidate here, so we leave it out.)

The greedy walk over sorted columns takes the products in descending order, so after ``M`` iterations it has
taken exactly the ``M`` largest positive products of the row: that is how the reference computes it,
vectorised. ``M = ceil(m_ratio * valid keys)`` per row.

Trace: prediction = per iteration one multiply and one add; selection = heap operations (``2 log2 d``
compares per iteration) and one compare per candidate; the exact scores of candidates that are then
dropped are extra 16-bit QK MACs; execution at ``formal_bits``. The offline column sort
(``d Nk log2 Nk`` compares per KV head) is in ``meta["offline_sort_compares"]``, not in the per-call ops.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from ..core.result import SparseResult
from ..core.shape import ceil_count, valid_keys_per_row
from ..core.workload import Per
from .common import run_selector
from .registry import AttentionCall, MethodParams, register


class A3Params(MethodParams):
    m_ratio: float = Field(1.0, gt=0, le=64, description="greedy iterations per row, as a multiple of its keys")
    delta: float = Field(5.0, ge=0, description="post-scoring threshold below the best candidate (logits)")
    formal_bits: int = Field(16, ge=4, le=32, description="operand width of candidate scoring and execution")
    chunk_rows: int = Field(16, ge=1, description="rows searched at once (memory: rows x keys x head_dim)")


def greedy_search(
    q: torch.Tensor, k: torch.Tensor, valid: torch.Tensor, m: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """After ``m[row]`` greedy iterations: ``(touched, partial)``, each ``[B, H, rows, W]``: the keys that had a
    product taken and the sum of their taken products. ``q [B, H, rows, D]``, ``k [B, H, W, D]`` (GQA-expanded).
    """
    prod = (q.unsqueeze(-2) * k.unsqueeze(2)).masked_fill(~valid[None, None, :, :, None], 0.0)  # [B, H, rows, W, D]
    flat = prod.flatten(-2).clamp_(min=0)  # the max-heap walks positive products only
    vals, idx = torch.topk(flat, min(int(m.max()), flat.shape[-1]), dim=-1)
    taken = (torch.arange(vals.shape[-1], device=q.device) < m[:, None]) & (vals > 0)
    key = torch.div(idx, prod.shape[-1], rounding_mode="floor")
    partial = torch.zeros(prod.shape[:-1], dtype=prod.dtype, device=prod.device).scatter_add_(-1, key, vals * taken)
    return partial > 0, partial  # taken products are positive: a key was touched iff its partial is positive


@register("a3", A3Params, "A3: greedy candidate search over sorted key columns, exact scores, threshold")
def a3(call: AttentionCall, p: A3Params) -> SparseResult:
    shape = call.shape
    g = shape.group_size
    nvalid = valid_keys_per_row(shape.q_len, shape.k_len, shape.causal, call.q.device)
    m_all = ceil_count(nvalid, p.m_ratio)
    counts = {"candidates": 0.0}

    def select(scores: torch.Tensor, valid: torch.Tensor, row0: int) -> torch.Tensor:
        rows, width = valid.shape
        q = call.q[:, :, row0 : row0 + rows].float()
        k = call.k[:, :, :width].float().repeat_interleave(g, dim=1)
        touched, partial = greedy_search(q, k, valid, m_all[row0 : row0 + rows])
        cand = valid & touched
        best = partial.masked_fill(~valid, float("-inf")).argmax(dim=-1, keepdim=True)
        cand = cand.scatter(-1, best, True)
        counts["candidates"] += float(cand.sum())
        top = scores.masked_fill(~cand, float("-inf")).amax(dim=-1, keepdim=True)
        return cand & (scores >= top - p.delta)

    result, w = run_selector(call, select, "a3", p, p.formal_bits, chunk_rows=p.chunk_rows)
    heads_rows = shape.batch * shape.heads
    iters = float(m_all.sum()) * heads_rows
    d = shape.head_dim
    w.add("predict", "mul", 16, iters, Per.PAIR)
    w.add("predict", "add", 16, iters, Per.PAIR)
    w.add("select", "compare", 16, iters * 2 * math.log2(max(d, 2)) + counts["candidates"], Per.PAIR)
    w.add("qk", "mac", p.formal_bits, (counts["candidates"] - result.kept_pairs) * d, Per.PAIR_DIM)
    w.meta["candidates"] = counts["candidates"]
    w.meta["offline_sort_compares"] = shape.batch * shape.kv_heads * d * shape.k_len * math.log2(max(shape.k_len, 2))
    return result
