"""Energon (TCAD'22): mix-precision multi-round filtering (MP-MRF).

Round 1 scores every valid pair with Q and K at ``bits1`` (2) bits and keeps the keys at or above
``mean + alpha1 * (max - mean)`` of the row's round-1 scores; round 2 re-scores the survivors at ``bits2`` (4)
bits and keeps those at or above ``mean + alpha2 * (max - mean)`` of the survivors' round-2 scores; the final
attention runs at full precision on what is left. Thresholds from the row mean and max are Energon's rule;
the ``alpha`` values are parameters (defaults chosen on SmolLM2 to land near 20-30% density, see docs/results.md).
Every row keeps its round-1 and round-2 maxima. No retraining.

Trace: prediction = ``bits1``-bit MACs on every valid pair and ``bits2``-bit MACs on round-1 survivors, plus
the mean/max reductions; selection = compares of both rounds; execution at ``formal_bits``. Extra DRAM
reads: round 2 fetches the further ``bits2 - bits1`` bits of the survivors' keys, once per tile of ``fetch_rows``
query rows (and the query heads of a GQA group) that needs them -- the hardware fetches a key for a query tile, not
for each (query, key) pair (:func:`tile_shared`; ``fetch_rows`` = 16, the profile's base tile and the finest query
tile of any bundled mapping, so no mapping fetches more often).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field, model_validator

from ..core.call import AttentionCall
from ..core.driver import RowBlock, Tally
from ..core.workload import Per, Workload
from .common import Baseline, BaselineParams, LowPrecision, keep_predicted_max
from .registry import Knob, register


class EnergonParams(BaselineParams):
    alpha1: float = Field(0.0, ge=-100, le=1, description="round-1 threshold: mean + alpha1*(max - mean)")
    alpha2: float = Field(0.3, ge=-100, le=1, description="round-2 threshold on survivors")
    bits1: int = Field(2, ge=2, le=16, description="round-1 width")
    bits2: int = Field(4, ge=2, le=16, description="round-2 width")
    fetch_rows: int = Field(16, ge=1, description="query rows sharing one fetch of a key's round-2 bits")

    @model_validator(mode="after")
    def _widths(self) -> EnergonParams:
        if self.bits2 < self.bits1:
            raise ValueError(f"bits2 ({self.bits2}) must be at least bits1 ({self.bits1})")
        return self


def tile_shared(mask: torch.Tensor, group_size: int, rows: int, row0: int = 0) -> float:
    """Keys fetched when every tile of ``rows`` query rows (counted from row 0; this block starts at ``row0``)
    and the ``group_size`` query heads of a KV group fetch each key they need once: ``mask [B, H, n, W]``."""
    b, h, n, w = mask.shape
    lead = row0 % rows
    padded = torch.nn.functional.pad(mask, (0, 0, lead, (-(n + lead)) % rows))
    tiles = padded.view(b, h // group_size, group_size, -1, rows, w).any(dim=4).any(dim=2)
    return float(tiles.sum(dtype=torch.float64))


def mean_max_keep(pred: torch.Tensor, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """Pairs of ``mask`` whose score is at least ``mean + alpha (max - mean)`` over the row's masked pairs."""
    n = mask.sum(dim=-1, keepdim=True).clamp(min=1)
    mean = pred.masked_fill(~mask, 0.0).sum(dim=-1, keepdim=True) / n
    mx = pred.masked_fill(~mask, float("-inf")).amax(dim=-1, keepdim=True)
    return mask & (pred >= mean + alpha * (mx - mean))


@dataclass
class _Rounds:
    round1: torch.Tensor  # predicted logits at bits1
    round2: torch.Tensor  # at bits2


@dataclass
class EnergonCounts:
    """What Energon's steps count: first-round survivors and second-round (query tile, key) fetches."""

    round1_survivors: float = 0.0
    round2_fetches: float = 0.0


@register("energon", EnergonParams, "Energon: 2-bit then 4-bit multi-round filtering by mean/max thresholds",
          (Knob("alpha2", -1.0, 0.9, "down", "linear", source="mean - (max - mean) to near the max"),
           Knob("alpha1", -1.0, 0.9, "down", "linear", grid=(-0.2, 0.0),
                source="round 1 at the default 0 and at the least aggressive setting of bench_baselines")))
class Energon(Baseline):
    counts = EnergonCounts

    def prepare(self, call: AttentionCall) -> tuple[LowPrecision, LowPrecision]:
        return LowPrecision.of(call, self.p.bits1), LowPrecision.of(call, self.p.bits2)

    def predict(self, low: tuple[LowPrecision, LowPrecision], block: RowBlock, tally: Tally[EnergonCounts]) -> _Rounds:
        return _Rounds(*(lp.logits(block.row0, block.rows, block.width) for lp in low))

    def select(self, low: object, block: RowBlock, pred: _Rounds, tally: Tally[EnergonCounts]) -> torch.Tensor:
        r1, r2, valid = pred.round1, pred.round2, block.valid
        keep1 = keep_predicted_max(mean_max_keep(r1, valid.expand_as(r1), self.p.alpha1), r1, valid)
        tally.add(round1_survivors=keep1.sum(),
                  round2_fetches=tile_shared(keep1, block.call.shape.group_size, self.p.fetch_rows, block.row0))
        keep2 = mean_max_keep(r2, keep1, self.p.alpha2)
        return keep_predicted_max(keep2, r2.masked_fill(~keep1, float("-inf")), keep1)

    def score(self, pred: _Rounds) -> torch.Tensor:
        return pred.round2

    def count_prediction(self, w: Workload, low: object, call: AttentionCall, tally: Tally[EnergonCounts]) -> None:
        shape, p = call.shape, self.p
        valid, survivors = float(shape.valid_pairs), tally["round1_survivors"]
        d = shape.head_dim
        w.add("predict", "mac", p.bits1, valid * d, Per.PAIR_DIM)
        w.add("predict", "mac", p.bits2, survivors * d, Per.PAIR_DIM)
        w.add("predict", "add", p.aux_bits, valid + survivors, Per.PAIR)  # row means
        w.add("select", "compare", p.aux_bits, 2 * (valid + survivors), Per.PAIR)  # row max and threshold
        w.add("select", "mul", p.aux_bits, 2 * float(shape.rows), Per.ROW)
        fetches = tally["round2_fetches"]  # (query tile, key) pairs: shared by the tile's rows and GQA heads
        w.add_read("round2_key_bits", fetches * d * (p.bits2 - p.bits1) / 8, Per.PAIR_DIM)
        w.meta.update(round1_survivors=survivors, round2_fetches=fetches)
