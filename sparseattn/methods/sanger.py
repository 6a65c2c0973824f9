"""Sanger (MICRO'21): 4-bit predicted attention, a global probability threshold, pack-and-split.

Q and K are quantised to ``bits`` (4) symmetric integers, the predicted scores are softmax-normalised per row,
and pairs whose predicted probability exceeds ``threshold`` (2e-3, the paper's SQuAD/CLOTH value; 2e-2 for
GLUE) are kept; every row keeps at least its predicted maximum. Training-free: Sanger fine-tunes the model
with quantisation-aware training so that the 4-bit prediction is sharp; we do not (documented substitute).

Pack and split turns the irregular mask into load-balanced work for the score-stationary array: each row's
kept pairs are *split* into sub-rows of at most ``subrow`` non-zeros, and sub-rows are *packed* into blocks
of ``block_rows``. The trace records the balance: sub-rows, blocks and the fraction of block slots filled.

Trace: prediction = 4-bit MACs on every valid pair, an 8-bit exp and a 16-bit add per valid pair and a divide
per row (the approximate softmax); selection = one compare per valid pair; execution at ``formal_bits``.
Extra DRAM reads: the 4-bit copies of Q and K the predictor streams.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from ..core.result import SparseResult
from ..core.workload import Per
from .common import LowPrecision, keep_predicted_max, run_selector
from .registry import AttentionCall, MethodParams, register


class SangerParams(MethodParams):
    threshold: float = Field(2e-3, ge=0, lt=1, description="keep pairs whose predicted probability exceeds this")
    bits: int = Field(4, ge=2, le=16, description="predictor width of Q and K")
    granularity: Literal["tensor", "head", "token"] = Field("tensor", description="quantisation scale groups")
    subrow: int = Field(16, ge=1, description="split: at most this many kept pairs per sub-row")
    block_rows: int = Field(16, ge=1, description="pack: sub-rows per block")
    formal_bits: int = Field(16, ge=4, le=32, description="operand width of the execution phase")


@register("sanger", SangerParams, "Sanger: 4-bit predicted softmax, global threshold, pack-and-split (MICRO'21)")
def sanger(call: AttentionCall, p: SangerParams) -> SparseResult:
    low = LowPrecision.of(call, p.bits, p.granularity)
    stats = {"subrows": 0.0, "kept": 0.0}

    def select(scores: torch.Tensor, valid: torch.Tensor, row0: int) -> torch.Tensor:
        pred = low.logits(row0, valid.shape[0], valid.shape[1]).masked_fill(~valid, float("-inf"))
        prob = torch.softmax(pred, dim=-1)
        keep = keep_predicted_max(prob > p.threshold, pred, valid)
        nnz = keep.sum(dim=-1)
        stats["subrows"] += float(torch.div(nnz + p.subrow - 1, p.subrow, rounding_mode="floor").sum())
        stats["kept"] += float(nnz.sum())
        return keep

    result, w = run_selector(call, select, "sanger", p, p.formal_bits)
    shape = call.shape
    valid = float(shape.valid_pairs)
    w.add("predict", "mac", p.bits, valid * shape.head_dim, Per.PAIR_DIM)
    w.add("predict", "exp", 8, valid, Per.PAIR)
    w.add("predict", "add", 16, valid, Per.PAIR)
    w.add("predict", "div", 16, float(shape.rows), Per.ROW)
    w.add("select", "compare", 16, valid, Per.PAIR)
    blocks = -(-stats["subrows"] // p.block_rows)
    w.meta["pack_split"] = {
        "subrows": stats["subrows"],
        "blocks": blocks,
        "slot_utilisation": stats["kept"] / (blocks * p.block_rows * p.subrow) if blocks else 1.0,
    }
    q_el = shape.batch * shape.heads * shape.q_len * shape.head_dim
    k_el = shape.batch * shape.kv_heads * shape.k_len * shape.head_dim
    w.add_read("predictor_q_k", (q_el + k_el) * p.bits / 8, Per.KEY_DIM)
    w.meta["note"] = "training-free: no quantisation-aware fine-tuning of the 4-bit predictor"
    return result
