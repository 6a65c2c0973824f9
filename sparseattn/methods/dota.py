"""DOTA (ASPLOS'22): a low-rank, low-precision detector of the strong query-key connections.

Q and K are projected to rank ``rank`` by a random ternary matrix ``P = sqrt(3/rank) * {-1, 0, +1}^(d x rank)``
(entries +-1 with probability 1/6 each, 0 with 2/3, so ``E[P P^T] = I`` and ``Q P (K P)^T`` estimates
``Q K^T``), the projections are quantised to ``bits`` (INT4), and each row keeps the ``keep`` fraction of its
valid keys with the largest estimates (at least ``min_keys``, as our top-k oracle does). DOTA *learns* the
projection jointly with the model; by default ours is the untrained random one (fixed ``seed``), a documented
training-free substitute that makes the detector weaker. A layer's projection trained by
:mod:`sparseattn.train` (DOTA's detection loss) arrives as ``side.detector`` ``[head_dim, rank]`` and replaces it.

Trace: prediction = the projection (one ``aux_bits`` add per non-zero of ``P`` per Q/K row and a scale multiply
per output), ``bits``-bit MACs of rank ``rank`` on every valid pair; selection = a streaming top-k per row
(``aux_bits`` compares); execution at ``formal_bits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pydantic import Field

from ..core.call import AttentionCall
from ..core.driver import RowBlock, Tally
from ..core.errors import InvalidInputError
from ..core.quant import QuantizedTensor, quantize_symmetric
from ..core.shape import ceil_count
from ..core.workload import Per, Workload
from .common import NEG_INF, Baseline, BaselineParams, grouped_int_logits, keep_top_counts, streaming_topk_compares
from .registry import Knob, register


class DotaParams(BaselineParams):
    keep: float = Field(0.2, gt=0, le=1, description="fraction of each row's valid keys kept")
    rank: int = Field(16, ge=1, description="rank of the random projection")
    bits: int = Field(4, ge=2, le=16, description="width of the projected Q and K")
    min_keys: int = Field(16, ge=1, description="rows keep at least this many keys (all of a shorter row)")
    seed: int = Field(0, ge=0, description="seed of the random ternary projection")


def ternary_projection(d: int, rank: int, seed: int) -> torch.Tensor:
    """``sqrt(3/rank) * {-1, 0, +1}`` with probabilities 1/6, 2/3, 1/6 (Achlioptas), float32 ``[d, rank]``."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(d, rank, generator=g)
    signs = torch.where(u < 1 / 6, -1.0, torch.where(u > 5 / 6, 1.0, 0.0))
    return signs * math.sqrt(3 / rank)


@dataclass
class _Detector:
    proj: torch.Tensor  # [d, rank]
    learned: bool  # a trained projection (side.detector), not the random ternary one
    q: QuantizedTensor  # projected, quantised queries
    k: QuantizedTensor
    nvalid: torch.Tensor  # valid keys per row
    counts: torch.Tensor  # keys kept per row


@register("dota", DotaParams, "DOTA: random ternary low-rank INT4 detector, per-row top fraction (ASPLOS'22)",
          (Knob("keep", 0.01, 1.0, "up", "log", source="the parameter's range (0, 1]"),))
class Dota(Baseline):
    def prepare(self, call: AttentionCall) -> _Detector:
        shape, p = call.shape, self.p
        learned = call.side.detector if call.side is not None else None
        if learned is not None and tuple(learned.shape) != (shape.head_dim, p.rank):
            raise InvalidInputError(f"the learned DOTA detector is {tuple(learned.shape)}, expected [head_dim, rank] = "
                                    f"[{shape.head_dim}, {p.rank}] (train it with the same rank)")
        if learned is not None:
            proj = learned.detach().to(device=call.q.device, dtype=torch.float32)
        else:
            proj = ternary_projection(shape.head_dim, p.rank, p.seed).to(call.q.device)
        nvalid = shape.valid_keys_per_row(call.q.device)
        counts = torch.minimum(torch.clamp(ceil_count(nvalid, p.keep), min=p.min_keys), nvalid)
        qp = quantize_symmetric(call.q.float() @ proj, p.bits)
        kp = quantize_symmetric(call.k.float() @ proj, p.bits)
        return _Detector(proj, learned is not None, qp, kp, nvalid, counts)

    def predict(self, det: _Detector, block: RowBlock, tally: Tally) -> torch.Tensor:
        heads, scale = block.call.shape.heads, block.call.scale
        pred = grouped_int_logits(det.q, det.k, block.row0, block.rows, block.width, heads, scale)
        return pred.masked_fill(~block.valid, NEG_INF)

    def select(self, det: _Detector, block: RowBlock, pred: torch.Tensor, tally: Tally) -> torch.Tensor:
        return keep_top_counts(pred, det.counts[block.row0 : block.row1])

    def count_prediction(self, w: Workload, det: _Detector, call: AttentionCall, tally: Tally) -> None:
        shape, p = call.shape, self.p
        nnz = float((det.proj != 0).sum())
        q_rows = shape.batch * shape.heads * shape.q_len
        k_rows = shape.batch * shape.kv_heads * shape.k_len
        w.add("predict", "add", p.aux_bits, (q_rows + k_rows) * nnz, Per.ROW_DIM)  # projections of Q and K rows
        w.add("predict", "mul", p.aux_bits, (q_rows + k_rows) * p.rank, Per.ROW)
        w.add("predict", "mac", p.bits, float(shape.valid_pairs) * p.rank, Per.PAIR)
        per_row = streaming_topk_compares(det.nvalid, det.counts).sum() * shape.batch * shape.heads
        w.add("select", "compare", p.aux_bits, float(per_row), Per.PAIR)
        w.meta["note"] = ("learned projection (sparseattn.train, DOTA's detection loss)" if det.learned else
                          "untrained random projection (DOTA learns it jointly with the model)")
