"""Sanger (MICRO'21): 4-bit predicted attention, a global probability threshold, pack-and-split.

Q and K are quantised to ``bits`` (4) symmetric integers, the predicted scores are softmax-normalised per row,
and pairs whose predicted probability exceeds ``threshold`` (2e-3, the paper's SQuAD/CLOTH value; 2e-2 for
GLUE) are kept; every row keeps at least its predicted maximum. Training-free: Sanger fine-tunes the model
with quantisation-aware training so that the 4-bit prediction is sharp; we do not (documented substitute).

Pack and split turns the irregular mask into load-balanced work for the score-stationary array: each row's
kept pairs are *split* into sub-rows of at most ``subrow`` non-zeros, and sub-rows are *packed* into blocks
of ``block_rows``. The trace records the balance: sub-rows, blocks and the fraction of block slots filled.

Trace: prediction = ``bits``-bit MACs on every valid pair, an ``exp_bits`` (8) exp and an ``aux_bits`` (16) add per
valid pair and a divide per row (the approximate softmax); selection = one ``aux_bits`` compare per valid pair;
execution at ``formal_bits``.
Extra DRAM reads: the 4-bit copies of Q and K the predictor streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field

from ..core.call import AttentionCall
from ..core.driver import RowBlock, Tally
from ..core.workload import Per, Workload
from .common import Baseline, BaselineParams, LowPrecision, keep_predicted_max
from .registry import Knob, register


class SangerParams(BaselineParams):
    threshold: float = Field(2e-3, ge=0, lt=1, description="keep pairs whose predicted probability exceeds this")
    bits: int = Field(4, ge=2, le=16, description="predictor width of Q and K")
    exp_bits: int = Field(8, ge=2, le=32, description="width of the predictor's approximate exponential")
    granularity: Literal["tensor", "head", "token"] = Field("tensor", description="quantisation scale groups")
    subrow: int = Field(16, ge=1, description="split: at most this many kept pairs per sub-row")
    block_rows: int = Field(16, ge=1, description="pack: sub-rows per block")


@dataclass
class SangerCounts:
    """What Sanger's steps count: kept pairs and the sub-rows pack-and-split packs them into."""

    kept: float = 0.0
    subrows: float = 0.0


@register("sanger", SangerParams, "Sanger: 4-bit predicted softmax, global threshold, pack-and-split (MICRO'21)",
          (Knob("threshold", 1e-5, 0.05, "down", "log", source="predicted probabilities; Sanger's default 2e-3 "
                "mid-range in decades"),))
class Sanger(Baseline):
    counts = SangerCounts

    def prepare(self, call: AttentionCall) -> LowPrecision:
        return LowPrecision.of(call, self.p.bits, self.p.granularity)

    def predict(self, low: LowPrecision, block: RowBlock, tally: Tally[SangerCounts]) -> torch.Tensor:
        return low.block_logits(block)

    def select(self, low: LowPrecision, block: RowBlock, pred: torch.Tensor,
               tally: Tally[SangerCounts]) -> torch.Tensor:
        keep = keep_predicted_max(torch.softmax(pred, dim=-1) > self.p.threshold, pred, block.valid)
        nnz = keep.sum(dim=-1)
        tally.add(subrows=torch.div(nnz + self.p.subrow - 1, self.p.subrow, rounding_mode="floor").sum(),
                  kept=nnz.sum())
        return keep

    def count_prediction(self, w: Workload, low: LowPrecision, call: AttentionCall, tally: Tally[SangerCounts]) -> None:
        shape, p = call.shape, self.p
        valid = float(shape.valid_pairs)
        w.add("predict", "mac", p.bits, valid * shape.head_dim, Per.PAIR_DIM)
        w.add("predict", "exp", p.exp_bits, valid, Per.PAIR)
        w.add("predict", "add", p.aux_bits, valid, Per.PAIR)
        w.add("predict", "div", p.aux_bits, float(shape.rows), Per.ROW)
        w.add("select", "compare", p.aux_bits, valid, Per.PAIR)
        blocks = -(-tally["subrows"] // p.block_rows)
        w.meta["pack_split"] = {
            "subrows": tally["subrows"],
            "blocks": blocks,
            "slot_utilisation": tally["kept"] / (blocks * p.block_rows * p.subrow) if blocks else 1.0,
        }
        q_el = shape.batch * shape.heads * shape.q_len * shape.head_dim
        k_el = shape.batch * shape.kv_heads * shape.k_len * shape.head_dim
        w.add_read("predictor_q_k", (q_el + k_el) * p.bits / 8, Per.KEY_DIM)
        w.meta["note"] = "training-free: no quantisation-aware fine-tuning of the 4-bit predictor"
