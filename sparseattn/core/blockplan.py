"""The block plan of block-sparse STAR attention, shared by the ``star_block`` reference
(:mod:`sparseattn.methods.blocksparse`, where the method and its parameters are described) and the Triton
kernels of ``star_gpu`` (:mod:`sparseattn.kernels.star`), which must select the same blocks pair for pair.

* :class:`StarBlockParams` / :class:`StarGpuParams` -- the parameters (validated pydantic models);
* :class:`BlockPlan` / :func:`plan_blocks` -- what the selection knows from the shape alone;
* :class:`BlockCodes` / :func:`block_codes` -- the predictor's integer operands (pooling, quantisation, the
  log-domain snap of ``dlzs``);
* :func:`count_prediction` -- the prologue, prediction and selection work a call adds to its trace.

It lives in ``core`` so that kernels import no method (DESIGN.md, "Rooms and doors").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, model_validator

from .call import AttentionCall
from .params import MethodParams
from .shape import Shape, ceil_count
from .workload import Per, Workload

DEFAULT_RATIO = 0.3


class StarBlockParams(MethodParams):
    predictor: Literal["dlzs", "pooled", "pade"] = Field(
        "dlzs", description="block predictor (see sparseattn.methods.blocksparse)")
    block_q: int = Field(128, ge=1, le=1024, description="query block size in tokens")
    block_k: int = Field(64, ge=1, le=1024, description="key block size in tokens")
    ratio: float | None = Field(
        None, gt=0, le=1, description=f"fraction of each query block's valid key blocks to keep (default "
        f"{DEFAULT_RATIO} unless mass is given)"
    )
    mass: float | None = Field(
        None, gt=0, le=1, description="instead of ratio: keep top blocks until their softmax mass of predicted "
        "scores reaches this"
    )
    segments: int = Field(1, ge=1, le=64, description="SADS sub-segments of the key-block row (ratio mode)")
    keep_first: bool = Field(True, description="always keep the first key block (attention sink)")
    keep_diagonal: bool = Field(True, description="always keep the key blocks holding the query block's positions")
    local_blocks: int = Field(6, ge=0, description="also keep this many key blocks before the diagonal")
    group_shared: bool = Field(True, description="one selection per KV head (max of its query heads' scores)")
    bits: int = Field(8, ge=2, le=8, description="width of the pooled query codes and the key codes")
    planes: int = Field(4, ge=1, le=8, description="pade: high bit planes of the key codes read")

    @model_validator(mode="after")
    def _consistent(self) -> StarBlockParams:
        if self.ratio is not None and self.mass is not None:
            raise ValueError("give either ratio or mass, not both")
        if self.mass is not None and self.segments > 1:
            raise ValueError("segments > 1 needs ratio mode (a per-segment mass budget is not defined)")
        if self.planes > self.bits:
            raise ValueError(f"planes ({self.planes}) must not exceed bits ({self.bits})")
        return self

    @property
    def effective_ratio(self) -> float | None:
        if self.mass is not None:
            return None
        return DEFAULT_RATIO if self.ratio is None else self.ratio


class StarGpuParams(StarBlockParams):
    debug_rescales: bool = Field(False, description="count online-softmax rescales per row (slower)")
    order: Literal["score", "index"] = Field("score", description="visit kept blocks by predicted score (SU-FA) "
                                             "or by key index")
    splits: int | None = Field(None, ge=1, le=256, description="split the kept blocks of a row over this many "
                               "programs (flash-decoding; default: automatic for decode, 1 for prefill)")


# ------------------------------------------------------------------------------------------------- the plan
@dataclass
class BlockPlan:
    """What the selection knows from the shape alone (per query block ``a``): the keys it may see, its valid key
    blocks (a prefix ``0 .. n_valid - 1``), the forced window ``[wlo, whi]`` and the non-forced picks per segment."""

    block_q: int
    block_k: int
    tq: int
    tk: int
    seg_len: int  # key blocks per SADS sub-segment
    last_pos: torch.Tensor  # int64 [Tq]: last key position any query of the block may see
    n_valid: torch.Tensor  # int64 [Tq]
    wlo: torch.Tensor  # int64 [Tq]: forced window (empty when wlo > whi)
    whi: torch.Tensor  # int64 [Tq]
    keep_first: bool
    picks: torch.Tensor | None  # int64 [Tq, segments]: non-forced blocks each segment keeps (None: mass mode)

    @property
    def segments(self) -> int:
        return math.ceil(self.tk / self.seg_len)

    def forced(self, a0: int = 0, a1: int | None = None) -> torch.Tensor:
        """bool ``[a1 - a0, Tk]``: blocks kept whatever their score (first, diagonal, local), valid ones only."""
        a1 = self.tq if a1 is None else a1
        c = torch.arange(self.tk, device=self.n_valid.device)[None, :]
        lo, hi = self.wlo[a0:a1, None], self.whi[a0:a1, None]
        forced = (c >= lo) & (c <= hi)
        if self.keep_first:
            forced |= c == 0
        return forced & (c < self.n_valid[a0:a1, None])


def plan_blocks(shape: Shape, p: StarBlockParams, device: torch.device | str = "cpu") -> BlockPlan:
    """The :class:`BlockPlan` of a call (queries are the last ``q_len`` positions, as in ``block_topk``)."""
    bq, bk = p.block_q, p.block_k
    tq, tk = math.ceil(shape.q_len / bq), math.ceil(shape.k_len / bk)
    offset = shape.k_len - shape.q_len
    a = torch.arange(tq, device=device)
    first = offset + a * bq
    last = offset + torch.clamp((a + 1) * bq, max=shape.q_len) - 1
    last_pos = last if shape.causal else torch.full_like(last, shape.k_len - 1)
    n_valid = torch.clamp(last_pos // bk + 1, max=tk)
    lo, hi = first // bk, last // bk
    wlo = torch.clamp(lo - p.local_blocks, min=0)
    if p.keep_diagonal:
        whi = hi
    elif p.local_blocks:
        whi = lo - 1
    else:  # no window
        wlo, whi = torch.ones_like(lo), torch.zeros_like(lo)
    seg_len = math.ceil(tk / p.segments)
    plan = BlockPlan(bq, bk, tq, tk, seg_len, last_pos, n_valid, wlo, whi, p.keep_first, None)
    ratio = p.effective_ratio
    if ratio is not None:
        plan.picks = _segment_picks(plan, ratio)
    return plan


def _segment_picks(plan: BlockPlan, ratio: float) -> torch.Tensor:
    """Non-forced blocks kept per (query block, segment): ``max(ceil(ratio * valid), forced) - forced``, capped at
    the segment's valid blocks."""
    c = torch.arange(plan.tk, device=plan.n_valid.device)
    valid = c[None, :] < plan.n_valid[:, None]
    forced = plan.forced()
    seg = torch.nn.functional.one_hot(c // plan.seg_len, plan.segments).to(torch.int64)  # [Tk, S]
    n_valid = valid.to(torch.int64) @ seg
    n_forced = forced.to(torch.int64) @ seg
    budget = torch.minimum(torch.maximum(ceil_count(n_valid, ratio), n_forced), n_valid)
    return budget - n_forced


# ------------------------------------------------------------------------------------------------- prediction
@dataclass
class BlockCodes:
    """The predictor's integer operands: pooled query codes ``q`` int8 ``[B, H, Tq, D]`` (log-domain for dlzs),
    key codes ``k`` int8 (``[B, Hkv, Nk, D]`` per token, ``[B, Hkv, Tk, D]`` pooled), the float32 factor per
    head that turns integer scores into scaled logits, and pade's interval bonus int32 ``[B, H, Tq]``."""

    predictor: str
    q: torch.Tensor
    k: torch.Tensor
    factor: torch.Tensor  # float32 [B, H]
    bonus: torch.Tensor  # int32 [B, H, Tq] (zeros unless pade)
    drop: int  # pade: low bit planes not read

    @property
    def per_token(self) -> bool:
        return self.predictor != "pooled"


def block_means(x: torch.Tensor, block: int) -> torch.Tensor:
    """Means over consecutive blocks of the sequence dim, float32 ``[B, H, ceil(N / block), D]`` (a partial last
    block is averaged over its own length). Accumulates in float32 without an upcast copy of ``x``."""
    b, h, n, d = x.shape
    full = n // block
    parts = []
    if full:
        parts.append(x[:, :, : full * block].reshape(b, h, full, block, d).sum(dim=3, dtype=torch.float32) / block)
    if n > full * block:
        parts.append(x[:, :, full * block :].sum(dim=2, keepdim=True, dtype=torch.float32) / (n - full * block))
    return torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]


def quantize_codes(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric ``bits``-bit codes (int8) with one float32 scale per ``[N, D]`` matrix: ``x ~= codes * scale``,
    ``scale = amax / (2^(bits-1) - 1)`` (1 for an all-zero matrix), round half to even."""
    qmax = 2 ** (bits - 1) - 1
    amax = x.abs().amax(dim=(-2, -1), keepdim=True).to(torch.float32)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    codes = torch.round(x.to(torch.float32) / scale).clamp_(-qmax, qmax).to(torch.int8)
    return codes, scale[..., 0, 0]


def block_codes(call: AttentionCall, p: StarBlockParams) -> BlockCodes:
    """Pool and quantise Q (and K) for ``p.predictor`` -- the prologue shared by the reference and the kernels."""
    qc, sq = quantize_codes(block_means(call.q, p.block_q), p.bits)
    g = call.shape.group_size
    drop = p.bits - p.planes if p.predictor == "pade" else 0
    if p.predictor == "pooled":
        kc, sk = quantize_codes(block_means(call.k, p.block_k), p.bits)
    else:
        kc, sk = quantize_codes(call.k, p.bits)
    factor = (sq * sk.repeat_interleave(g, dim=1) * call.scale).to(torch.float32)
    bonus = torch.zeros(qc.shape[:3], dtype=torch.int32, device=qc.device)
    if p.predictor == "dlzs":
        qc = log_codes(qc)
    elif p.predictor == "pade":
        bonus = (qc.to(torch.int32).clamp(min=0) * (2**drop - 1)).sum(dim=-1, dtype=torch.int32)
    return BlockCodes(p.predictor, qc, kc, factor, bonus, drop)


def log_codes(codes: torch.Tensor) -> torch.Tensor:
    """SOFA's leading-one (floor) snap of integer codes: ``sign(c) * 2^floor(log2|c|)``, 0 for 0, same dtype
    (:func:`sparseattn.core.bits.leading_one` without its data-dependent checks, so ``torch.compile`` traces it)."""
    x = codes.to(torch.float32)
    _, e = torch.frexp(x.abs())  # |x| = m * 2^e, m in [0.5, 1)
    snapped = torch.sign(x) * torch.ldexp(torch.ones_like(x), e - 1)
    return torch.where(codes == 0, torch.zeros_like(x), snapped).to(codes.dtype)


# ------------------------------------------------------------------------------------------------- the trace
def count_prediction(w: Workload, shape: Shape, p: StarBlockParams, plan: BlockPlan, in_bits: int) -> None:
    """Add the prologue, prediction and selection work of ``p`` on ``shape`` (inputs ``in_bits`` wide) to ``w``
    (shared with ``star_gpu``)."""
    bh, d, g = shape.batch * shape.heads, shape.head_dim, shape.group_size
    reach = float(torch.clamp(plan.last_pos + 1, max=shape.k_len).sum())  # keys seen, summed over query blocks
    blocks = float(plan.n_valid.sum())
    w.add("predict", "add", in_bits, bh * shape.q_len * d, Per.ROW_DIM)  # pooling the queries
    w.add("quantize", "mul", 32, bh * plan.tq * d, Per.ROW_DIM)
    kv = shape.batch * shape.kv_heads
    if p.predictor == "pooled":
        w.add("predict", "add", in_bits, kv * shape.k_len * d, Per.KEY_DIM)
        w.add("quantize", "mul", 32, kv * plan.tk * d, Per.KEY_DIM)
        w.add("predict", "mac", p.bits, bh * blocks * d, Per.PAIR_DIM)
    else:
        w.add("quantize", "mul", 32, kv * shape.k_len * d, Per.KEY_DIM)
        acc = p.bits + (p.bits - 2) + max(1, math.ceil(math.log2(d)))
        if p.predictor == "dlzs":
            w.add("predict", "lzc", p.bits, bh * plan.tq * d, Per.ROW_DIM)
            w.add("predict", "shift", p.bits, bh * reach * d, Per.PAIR_DIM)
            w.add("predict", "add", acc, bh * reach * d, Per.PAIR_DIM)
        else:
            w.add("predict", "mac", p.planes, bh * reach * d, Per.PAIR_DIM)
            w.add("predict", "add", acc, bh * plan.tq * d, Per.ROW_DIM)
        w.add("predict", "compare", acc, bh * reach, Per.PAIR)  # max over each block's keys
    if p.group_shared and g > 1:
        w.add("select", "compare", 32, kv * (g - 1) * blocks, Per.PAIR)
    rows = (kv if p.group_shared else bh) * plan.tq
    width = 1 << max(1, math.ceil(math.log2(plan.tk)))
    stages = math.log2(width)
    w.add("select", "compare", 32, rows * width / 2 * stages * (stages + 1) / 2, Per.PAIR_LOG)
    if p.mass is not None:
        w.add("select", "exp", 32, rows / plan.tq * blocks, Per.PAIR)
        w.add("select", "add", 64, 2 * rows / plan.tq * blocks, Per.PAIR)
