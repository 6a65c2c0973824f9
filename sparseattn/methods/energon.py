"""Energon (TCAD'22): mix-precision multi-round filtering (MP-MRF).

Round 1 scores every valid pair with Q and K at ``bits1`` (2) bits and keeps the keys at or above
``mean + alpha1 * (max - mean)`` of the row's round-1 scores; round 2 re-scores the survivors at ``bits2`` (4)
bits and keeps those at or above ``mean + alpha2 * (max - mean)`` of the survivors' round-2 scores; the final
attention runs at full precision on what is left. Thresholds from the row mean and max are Energon's rule;
the ``alpha`` values are parameters (defaults chosen on SmolLM2 to land near 20-30% density, see the README).
Every row keeps its round-1 and round-2 maxima. No retraining.

Trace: prediction = ``bits1``-bit MACs on every valid pair and ``bits2``-bit MACs on round-1 survivors, plus
the mean/max reductions; selection = compares of both rounds; execution at ``formal_bits``. Extra DRAM
reads: round 2 fetches the further ``bits2 - bits1`` bits of the survivors' keys.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from ..core.result import SparseResult
from ..core.workload import Per
from .common import LowPrecision, keep_predicted_max, run_selector
from .registry import AttentionCall, MethodParams, register


class EnergonParams(MethodParams):
    alpha1: float = Field(0.0, ge=-100, le=1, description="round-1 threshold: mean + alpha1*(max - mean)")
    alpha2: float = Field(0.3, ge=-100, le=1, description="round-2 threshold on survivors")
    bits1: int = Field(2, ge=2, le=16, description="round-1 width")
    bits2: int = Field(4, ge=2, le=16, description="round-2 width")
    formal_bits: int = Field(16, ge=4, le=32, description="operand width of the execution phase")

    @model_validator(mode="after")
    def _widths(self) -> EnergonParams:
        if self.bits2 < self.bits1:
            raise ValueError(f"bits2 ({self.bits2}) must be at least bits1 ({self.bits1})")
        return self


def mean_max_keep(pred: torch.Tensor, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """Pairs of ``mask`` whose score is at least ``mean + alpha (max - mean)`` over the row's masked pairs."""
    n = mask.sum(dim=-1, keepdim=True).clamp(min=1)
    mean = pred.masked_fill(~mask, 0.0).sum(dim=-1, keepdim=True) / n
    mx = pred.masked_fill(~mask, float("-inf")).amax(dim=-1, keepdim=True)
    return mask & (pred >= mean + alpha * (mx - mean))


@register("energon", EnergonParams, "Energon: 2-bit then 4-bit multi-round filtering by mean/max thresholds")
def energon(call: AttentionCall, p: EnergonParams) -> SparseResult:
    low1, low2 = LowPrecision.of(call, p.bits1), LowPrecision.of(call, p.bits2)
    survivors1 = [0.0]

    def select(scores: torch.Tensor, valid: torch.Tensor, row0: int) -> torch.Tensor:
        rows, width = valid.shape
        pred1 = low1.logits(row0, rows, width)
        keep1 = keep_predicted_max(mean_max_keep(pred1, valid.expand_as(pred1), p.alpha1), pred1, valid)
        survivors1[0] += float(keep1.sum())
        pred2 = low2.logits(row0, rows, width)
        keep2 = mean_max_keep(pred2, keep1, p.alpha2)
        return keep_predicted_max(keep2, pred2.masked_fill(~keep1, float("-inf")), keep1)

    result, w = run_selector(call, select, "energon", p, p.formal_bits)
    shape = call.shape
    valid = float(shape.valid_pairs)
    d = shape.head_dim
    w.add("predict", "mac", p.bits1, valid * d, Per.PAIR_DIM)
    w.add("predict", "mac", p.bits2, survivors1[0] * d, Per.PAIR_DIM)
    w.add("predict", "add", 16, valid + survivors1[0], Per.PAIR)  # row means
    w.add("select", "compare", 16, 2 * (valid + survivors1[0]), Per.PAIR)  # row max and threshold, both rounds
    w.add("select", "mul", 16, 2 * float(shape.rows), Per.ROW)
    w.add_read("round2_key_bits", survivors1[0] * d * (p.bits2 - p.bits1) / 8, Per.PAIR_DIM)
    w.meta["round1_survivors"] = survivors1[0]
    return result
