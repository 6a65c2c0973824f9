"""Building blocks shared by the predict-then-select baselines (Sanger, DOTA, Energon, ELSA, A3, SpAtten).

Every baseline has the same three phases (as each paper describes its design): a cheap **prediction** of the
scores, a **selection** of the pairs to keep, and the **execution** of exact attention on them -- the driver's
predict / select / attend steps (:mod:`sparseattn.core.driver`). The helpers here do the parts they share:
low-precision integer scores with GQA grouping, top-k by row, a per-row guard that keeps the predicted maximum,
the streaming top-k cost model, and :class:`Baseline`, whose trace is the execution phase on the kept pairs plus
the prediction and selection work each method adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field

from ..core.attention import formal_workload
from ..core.call import AttentionCall
from ..core.driver import Method, RowBlock, Tally
from ..core.quant import QuantizedTensor, quantize_symmetric
from ..core.workload import Workload
from .registry import MethodParams

NEG_INF = float("-inf")


class BaselineParams(MethodParams):
    """Operand widths every predict-then-select baseline names."""

    formal_bits: int = Field(16, ge=4, le=32, description="operand width of the execution phase")
    aux_bits: int = Field(16, ge=4, le=32, description="width of the predictor's and selector's bookkeeping "
                          "arithmetic (sums, scales, thresholds, compares)")


@dataclass
class LowPrecision:
    """Q and K quantised to ``bits`` for a predictor, with their scales (GQA-aware chunked scoring)."""

    q: QuantizedTensor
    k: QuantizedTensor
    heads: int
    scale: float

    @classmethod
    def of(cls, call: AttentionCall, bits: int, granularity: str = "tensor") -> LowPrecision:
        return cls(
            quantize_symmetric(call.q, bits, granularity),
            quantize_symmetric(call.k, bits, granularity),
            call.shape.heads,
            call.scale,
        )

    def logits(self, row0: int, rows: int, width: int) -> torch.Tensor:
        """Predicted logits ``s_q s_k scale (Q_b K_b^T)`` of rows ``row0 .. row0+rows`` over keys ``:width``."""
        return grouped_int_logits(self.q, self.k, row0, rows, width, self.heads, self.scale)

    def block_logits(self, block: RowBlock) -> torch.Tensor:
        """Predicted logits of a block's rows over its keys, ``-inf`` where a pair is not valid."""
        return self.logits(block.row0, block.rows, block.width).masked_fill(~block.valid, NEG_INF)


def grouped_int_logits(
    q: QuantizedTensor, k: QuantizedTensor, row0: int, rows: int, width: int, heads: int, scale: float
) -> torch.Tensor:
    """Scaled logits of integer Q and K for a chunk of rows, ``[B, H, rows, width]`` float32 (exact products)."""
    b, hkv = k.values.shape[0], k.values.shape[1]
    g = heads // hkv
    d = q.values.shape[-1]
    dt = torch.float32 if max(q.bits, k.bits) <= 8 else torch.float64
    qi = q.values[:, :, row0 : row0 + rows].to(dt).reshape(b, hkv, g * rows, d)
    s = torch.matmul(qi, k.values[:, :, :width].to(dt).transpose(-1, -2))
    qs = q.scale.expand(b, heads, q.values.shape[2], 1)[:, :, row0 : row0 + rows].reshape(b, hkv, g * rows, 1)
    ks = k.scale.expand(b, hkv, k.values.shape[2], 1)[:, :, :width].transpose(-1, -2)
    return (s * qs.to(dt) * ks.to(dt) * scale).to(torch.float32).view(b, heads, rows, width)


def keep_top_counts(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the ``counts[row]`` largest entries of each row of ``scores [..., R, C]``.

    ``counts`` is int64 ``[R]`` (shared by the leading dims); each must be >= 1 and at most the number of
    finite entries of its row (invalid entries are -inf and are then never chosen).
    """
    kmax = int(counts.max())
    _, idx = torch.topk(scores, kmax, dim=-1, sorted=True)
    chosen = torch.arange(kmax, device=scores.device) < counts[:, None]
    keep = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    return keep.scatter_(-1, idx, chosen.expand(idx.shape))


def keep_predicted_max(keep: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Guard: every row keeps (at least) the key with its largest *predicted* score."""
    top = pred.masked_fill(~valid, float("-inf")).argmax(dim=-1, keepdim=True)
    return keep.scatter(-1, top, True) & valid


class Baseline(Method):
    """A predict-then-select accelerator's algorithm: exact attention on the kept pairs (the driver's default
    attend); the trace is that execution at ``formal_bits`` plus what :meth:`count_prediction` adds."""

    def count(self, ctx: Any, call: AttentionCall, keep: torch.Tensor, tally: Tally) -> Workload:
        w = formal_workload(call.shape, keep, self.p.formal_bits, self.name, self.p.model_dump())
        self.count_prediction(w, ctx, call, tally)
        return w

    def count_prediction(self, w: Workload, ctx: Any, call: AttentionCall, tally: Tally) -> None:
        """Add the prediction and selection work to the trace ``w``."""
        raise NotImplementedError


def streaming_topk_compares(n: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Comparisons of a streaming top-k over ``n`` values with a ``k``-entry heap: ``n * ceil(log2(k + 1))``
    (the model we use for the top-k engines of DOTA and SpAtten; quick-select would be about ``2n``)."""
    return n.double() * torch.ceil(torch.log2(k.double() + 1))
