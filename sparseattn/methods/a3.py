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

Trace: prediction = per iteration one multiply and one add (``aux_bits``); selection = heap operations (``2 log2 d``
compares per iteration) and one compare per candidate; the exact scores of candidates that are then dropped are
extra ``formal_bits`` QK MACs; execution at ``formal_bits``. The offline column sort
(``d Nk log2 Nk`` compares per KV head) is in ``meta["offline_sort_compares"]``, not in the per-call ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pydantic import Field

from ..core.call import AttentionCall
from ..core.driver import RowBlock, Tally
from ..core.shape import ceil_count
from ..core.workload import Per, Workload
from .common import NEG_INF, Baseline, BaselineParams
from .registry import Knob, register


class A3Params(BaselineParams):
    m_ratio: float = Field(1.0, gt=0, le=64, description="greedy iterations per row, as a multiple of its keys")
    delta: float = Field(5.0, ge=0, description="post-scoring threshold below the best candidate (logits)")
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


@dataclass
class _Search:
    touched: torch.Tensor  # keys with a product taken [B, H, rows, W]
    partial: torch.Tensor  # sum of their taken products


@dataclass
class A3Counts:
    """What A3's steps count: the candidates its greedy search scores exactly."""

    candidates: float = 0.0


@register("a3", A3Params, "A3: greedy candidate search over sorted key columns, exact scores, threshold",
          (Knob("delta", 0.5, 20.0, "up", "linear", source="logit gaps, as the threshold oracle's delta"),))
class A3(Baseline):
    counts = A3Counts

    def block_rows(self, call: AttentionCall) -> int:
        return self.p.chunk_rows

    def memory_parts(self, call: AttentionCall) -> dict[str, float]:
        """Besides the common parts, the greedy search's products ``[B, H, rows, Nk, D]`` and their top-k."""
        s = call.shape
        parts = super().memory_parts(call)
        parts["greedy products"] = 3.0 * s.batch * s.heads * min(self.p.chunk_rows, s.q_len) * s.k_len * s.head_dim * 4
        return parts

    def prepare(self, call: AttentionCall) -> torch.Tensor:
        """Greedy iterations per row, ``M = ceil(m_ratio * valid keys)``."""
        s = call.shape
        return ceil_count(s.valid_keys_per_row(call.q.device), self.p.m_ratio)

    def predict(self, m: torch.Tensor, block: RowBlock, tally: Tally[A3Counts]) -> _Search:
        k = block.k.float().repeat_interleave(block.call.shape.group_size, dim=1)
        return _Search(*greedy_search(block.q.float(), k, block.valid, m[block.row0 : block.row1]))

    def select(self, m: torch.Tensor, block: RowBlock, found: _Search, tally: Tally[A3Counts]) -> torch.Tensor:
        best = found.partial.masked_fill(~block.valid, NEG_INF).argmax(dim=-1, keepdim=True)
        cand = (block.valid & found.touched).scatter(-1, best, True)
        tally.add(candidates=cand.sum())
        top = block.scores.masked_fill(~cand, NEG_INF).amax(dim=-1, keepdim=True)
        return cand & (block.scores >= top - self.p.delta)

    def score(self, found: _Search) -> torch.Tensor:
        return found.partial

    def count_prediction(self, w: Workload, m: torch.Tensor, call: AttentionCall, tally: Tally[A3Counts]) -> None:
        shape, p = call.shape, self.p
        iters = float(m.sum()) * shape.batch * shape.heads
        d = shape.head_dim
        kept = w.profile.kept_pairs
        w.add("predict", "mul", p.aux_bits, iters, Per.PAIR)
        w.add("predict", "add", p.aux_bits, iters, Per.PAIR)
        w.add("select", "compare", p.aux_bits, iters * 2 * math.log2(max(d, 2)) + tally["candidates"], Per.PAIR)
        w.add("qk", "mac", p.formal_bits, (tally["candidates"] - kept) * d, Per.PAIR_DIM)
        w.meta["candidates"] = tally["candidates"]
        sorts = shape.batch * shape.kv_heads * d * shape.k_len * math.log2(max(shape.k_len, 2))
        w.meta["offline_sort_compares"] = sorts
