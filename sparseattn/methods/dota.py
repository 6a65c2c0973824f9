"""DOTA (ASPLOS'22): a low-rank, low-precision detector of the strong query-key connections.

Q and K are projected to rank ``rank`` by a random ternary matrix ``P = sqrt(3/rank) * {-1, 0, +1}^(d x rank)``
(entries +-1 with probability 1/6 each, 0 with 2/3, so ``E[P P^T] = I`` and ``Q P (K P)^T`` estimates
``Q K^T``), the projections are quantised to ``bits`` (INT4), and each row keeps the ``keep`` fraction of its
valid keys with the largest estimates (at least ``min_keys``, as our top-k oracle does). DOTA *learns* the
projection jointly with the model; ours is the untrained random one (fixed ``seed``), a documented
training-free substitute that makes the detector weaker.

Trace: prediction = the projection (one 16-bit add per non-zero of ``P`` per Q/K row and a scale multiply per
output), ``bits``-bit MACs of rank ``rank`` on every valid pair; selection = a streaming top-k per row;
execution at ``formal_bits``.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from ..core.quant import quantize_symmetric
from ..core.result import SparseResult
from ..core.shape import ceil_count, valid_keys_per_row
from ..core.workload import Per
from .common import grouped_int_logits, run_selector, streaming_topk_compares
from .oracle import keep_top_counts
from .registry import AttentionCall, MethodParams, register


class DotaParams(MethodParams):
    keep: float = Field(0.2, gt=0, le=1, description="fraction of each row's valid keys kept")
    rank: int = Field(16, ge=1, description="rank of the random projection")
    bits: int = Field(4, ge=2, le=16, description="width of the projected Q and K")
    min_keys: int = Field(16, ge=1, description="rows keep at least this many keys (all of a shorter row)")
    seed: int = Field(0, ge=0, description="seed of the random ternary projection")
    formal_bits: int = Field(16, ge=4, le=32, description="operand width of the execution phase")


def ternary_projection(d: int, rank: int, seed: int) -> torch.Tensor:
    """``sqrt(3/rank) * {-1, 0, +1}`` with probabilities 1/6, 2/3, 1/6 (Achlioptas), float32 ``[d, rank]``."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(d, rank, generator=g)
    signs = torch.where(u < 1 / 6, -1.0, torch.where(u > 5 / 6, 1.0, 0.0))
    return signs * math.sqrt(3 / rank)


@register("dota", DotaParams, "DOTA: random ternary low-rank INT4 detector, per-row top fraction (ASPLOS'22)")
def dota(call: AttentionCall, p: DotaParams) -> SparseResult:
    shape = call.shape
    proj = ternary_projection(shape.head_dim, p.rank, p.seed).to(call.q.device)
    qp = quantize_symmetric(call.q.float() @ proj, p.bits)
    kp = quantize_symmetric(call.k.float() @ proj, p.bits)
    nvalid = valid_keys_per_row(shape.q_len, shape.k_len, shape.causal, call.q.device)
    counts = torch.minimum(torch.clamp(ceil_count(nvalid, p.keep), min=p.min_keys), nvalid)

    def select(scores: torch.Tensor, valid: torch.Tensor, row0: int) -> torch.Tensor:
        rows, width = valid.shape
        pred = grouped_int_logits(qp, kp, row0, rows, width, shape.heads, call.scale)
        return keep_top_counts(pred.masked_fill(~valid, float("-inf")), counts[row0 : row0 + rows])

    result, w = run_selector(call, select, "dota", p, p.formal_bits)
    valid = float(shape.valid_pairs)
    nnz = float((proj != 0).sum())
    q_rows = shape.batch * shape.heads * shape.q_len
    k_rows = shape.batch * shape.kv_heads * shape.k_len
    w.add("predict", "add", 16, (q_rows + k_rows) * nnz, Per.ROW_DIM)  # projections of Q and K rows
    w.add("predict", "mul", 16, (q_rows + k_rows) * p.rank, Per.ROW)
    w.add("predict", "mac", p.bits, valid * p.rank, Per.PAIR)
    per_row = streaming_topk_compares(nvalid, counts).sum() * shape.batch * shape.heads
    w.add("select", "compare", 16, float(per_row), Per.PAIR)
    w.meta["note"] = "untrained random projection (DOTA learns it jointly with the model)"
    return result
