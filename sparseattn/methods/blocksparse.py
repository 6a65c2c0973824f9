"""Block-sparse STAR-style attention: SOFA/STAR's predict -> distributed top-k -> sorted updating, at the block
granularity a GPU runs (``shared/research/sofa_star.md`` §2.3-2.5, §5; ``anchors.md`` §1.1 for the block peers).

This module is the CPU reference (``star_block``) and the truth the Triton kernels of :mod:`sparseattn.kernels`
are tested against, pair for pair; ``star_gpu`` has the same parameters and runs those kernels (its selection is
this module's, so ``sparseattn.select(..., method="star_gpu")`` is the reference selection).

**Predict** (one score per (query block, key block), in scaled-logit units). Every query block is represented by
the mean of its queries (pooled in float32), quantised symmetrically to ``bits``-bit codes with one scale per
(batch, head); integer products are exact in float32, so a kernel reproduces the scores bit for bit:

* ``dlzs`` -- SOFA's differential leading-zero scheme (§2.3, Fig. 7(c) floor snap): the pooled query code goes to
  the log domain (``sign * 2^floor(log2|q|)``: a shift amount), keys stay linear ``bits``-bit codes; the score of a
  key block is the largest shift-add estimate ``sum_d sign(q_d) (|k_d| << e(q_d))`` over its keys the block may
  see. Add-only on an accelerator; a GPU evaluates the same integers with INT8 tensor-core MACs.
* ``pooled`` -- mean-pooled Q and K blocks at ``bits`` bits, one dot product per block pair (MInference's
  block-sparse estimate, SpargeAttn's stage 1): ``Tq x Tk`` MACs per head instead of ``Tq x Nk``.
* ``pade`` -- PADE's bit-serial view (HPCA'26, BUI): the top ``planes`` bit planes of the INT8 keys with the
  uncertainty interval of the planes not read; the block score is the interval's *upper* bound
  ``q . k_hi + sum_d max(q_d, 0) (2^(bits - planes) - 1)`` maximised over the block's keys -- the optimistic score
  PADE's guard compares, so a block is dropped only when even its bound ranks low.

Default ``dlzs``, by measurement: recall of the exact block top-k (blocks ranked by their largest exact logit, the
same budget, no forced blocks, GQA-shared) over the 30 layers of SmolLM2-135M on 2048 tokens of moby-dick:

=============  ===========  ========  ========  ========
keep ratio     block q x k  dlzs      pooled    pade
=============  ===========  ========  ========  ========
0.25           128 x 64     **0.69**  0.64      0.67
0.25           64 x 64      **0.72**  0.61      0.68
0.10           128 x 64     0.53      **0.66**  0.52
0.10           64 x 64      **0.64**  0.62      0.62
=============  ===========  ========  ========  ========

Cost per head: ``dlzs``/``pade`` ``Tq x Nk x D`` INT8 operations, ``1 / (2 block_q)`` of dense attention's MACs
(0.4% at 128-query blocks); ``pooled`` ``Tq x Tk x D``, ``block_k`` times less. ``pooled`` is the choice at very low
budgets or when prediction time must vanish; ``dlzs`` ranks best at the budgets that keep accuracy.

Default budget (``ratio=0.3``, ``local_blocks=6``), by SmolLM2-135M perplexity on 4096 tokens of moby-dick
(dense 43.78; causal, 128 x 64 blocks, dlzs): ratio 0.25 with 1 local block +4.4% at density 0.24, with 3 local
blocks +2.9% (0.26); ratio 0.4 +2.6% (0.40); **ratio 0.3 with 6 local blocks +1.6% (0.33)**; mass 0.9 with 3 local
+1.8% (0.38); mass 0.95 +1.5% (0.46), with 4 local +1.1% (0.48); mass 0.97 with 2 local +1.05% (0.54). The recent
window buys the most accuracy per kept block; ``ratio`` keeps the speed predictable.

With ``group_shared`` (default) the query heads of one GQA group share one selection: their block scores are
maximised over the group (as NSA shares selected blocks over a group), so a kernel loads each kept KV block
once per group.

**Select** (per query block): ``ratio`` keeps ``ceil(ratio * valid key blocks)`` blocks (default 0.3), or
``mass`` keeps the fewest top-scoring blocks whose softmax mass of predicted scores reaches ``mass`` (FlexPrefill's
gamma, XAttention's tau). The first block (attention sink), the diagonal blocks and ``local_blocks`` blocks before
the diagonal are always kept and count towards the budget. With ``segments > 1`` the key-block row is cut into
SADS sub-segments of ``ceil(Tk / segments)`` blocks aligned at block 0, each keeping its own ``ratio`` of its valid
blocks (SOFA's distributed sorting, §2.4; ratio mode only). The kept blocks are listed in descending predicted
score, ties by block index (SU-FA's visiting order, §2.5), then the unkept ones in the same order.

**Attend**: exact softmax over every valid pair of the kept blocks (causal masking inside blocks). A row with no
kept valid pair (possible only with both ``keep_first`` and ``keep_diagonal`` off) outputs zeros.

**Count**: the formal work on the kept pairs, the prediction (pooling, quantisation, scoring at its width) and
selection work (a bitonic sort per selection row, group maxima, softmax of block scores in ``mass`` mode), and,
in ``meta``, the online-softmax rescales a flash kernel visiting the kept key blocks in descending predicted score
needs versus visiting them in key order -- what sorted updating saves (the kernels count the same in debug mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..core.attention import attend_kept, formal_workload
from ..core.driver import Method, RowBlock, Tally
from ..core.errors import InvalidInputError
from ..core.shape import Shape, ceil_count
from ..core.validation import dtype_bits
from ..core.workload import Per, Workload
from .registry import AttentionCall, MethodParams, register

PREDICTORS = ("dlzs", "pooled", "pade")
DEFAULT_RATIO = 0.3
NEG_INF = float("-inf")


class StarBlockParams(MethodParams):
    predictor: Literal["dlzs", "pooled", "pade"] = Field("dlzs", description="block predictor (see module doc)")
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


def _int_products(qc: torch.Tensor, kc: torch.Tensor) -> torch.Tensor:
    """``qc [B, H, t, D] . kc [B, Hkv, n, D]`` -> float32 ``[B, H, t, n]``, exact (integers below 2^24)."""
    b, h, t, d = qc.shape
    hkv, n = kc.shape[1], kc.shape[2]
    qg = qc.to(torch.float32).reshape(b, hkv, (h // hkv) * t, d)
    return torch.matmul(qg, kc.to(torch.float32).transpose(-1, -2)).view(b, h, t, n)


def predict_block_scores(codes: BlockCodes, plan: BlockPlan, a0: int, a1: int, group_shared: bool) -> torch.Tensor:
    """Predicted scores of query blocks ``a0 .. a1 - 1`` over all key blocks, float32 ``[B, Hs, a1 - a0, Tk]``
    (``Hs`` = KV heads when ``group_shared``, else query heads); ``-inf`` for blocks the query block cannot see."""
    qc = codes.q[:, :, a0:a1]
    bk, tk = plan.block_k, plan.tk
    if codes.per_token:
        width = int(plan.last_pos[a1 - 1]) + 1
        kc = codes.k[:, :, :width]
        if codes.drop:
            kc = (kc >> codes.drop) << codes.drop
        dots = _int_products(qc, kc)
        seen = torch.arange(width, device=qc.device)[None, :] <= plan.last_pos[a0:a1, None]
        dots = dots.masked_fill(~seen, NEG_INF)
        tl_ = math.ceil(width / bk)
        dots = torch.nn.functional.pad(dots, (0, tl_ * bk - width), value=NEG_INF)
        best = dots.view(*dots.shape[:3], tl_, bk).amax(dim=-1) + codes.bonus[:, :, a0:a1, None].to(torch.float32)
        best = torch.nn.functional.pad(best, (0, tk - tl_), value=NEG_INF)
    else:
        best = _int_products(qc, codes.k)
        valid = torch.arange(tk, device=qc.device)[None, :] < plan.n_valid[a0:a1, None]
        best = best.masked_fill(~valid, NEG_INF)
    scores = best * codes.factor[:, :, None, None]
    if group_shared:
        b, h = scores.shape[:2]
        hkv = codes.k.shape[1]
        scores = scores.view(b, hkv, h // hkv, *scores.shape[2:]).amax(dim=2)
    return scores


# ------------------------------------------------------------------------------------------------- selection
def select_blocks(
    scores: torch.Tensor, plan: BlockPlan, a0: int, mass: float | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Select key blocks for query blocks ``a0 ..`` from predicted ``scores [B, Hs, t, Tk]``.

    Returns ``(kept bool [B, Hs, t, Tk], num int64 [B, Hs, t], order int64 [B, Hs, t, Tk])``: ``order`` lists the
    kept blocks first, by descending score (ties: lower index first), then the others in the same order.
    """
    t = scores.shape[2]
    a1 = a0 + t
    ranked = scores + 0.0  # -0.0 -> +0.0, as the kernel's integer sort key does
    srt, idx = torch.sort(ranked, dim=-1, descending=True, stable=True)
    valid = idx < plan.n_valid[a0:a1, None]
    forced = plan.forced(a0, a1).expand(*scores.shape[:2], t, plan.tk).gather(-1, idx)
    kept = forced & valid
    if mass is None:
        free = valid & ~forced
        seg = idx // plan.seg_len
        for s in range(plan.segments):
            m = free & (seg == s)
            kept |= m & (torch.cumsum(m.to(torch.int64), dim=-1) <= plan.picks[a0:a1, s, None])
    else:
        prob = torch.where(valid, torch.exp(srt - srt[..., :1]), torch.zeros_like(srt)).to(torch.float64)
        before = torch.cumsum(prob, dim=-1) - prob
        kept |= valid & (before < mass * prob.sum(dim=-1, keepdim=True))
    order = idx.gather(-1, torch.argsort((~kept).to(torch.int8), dim=-1, stable=True))
    mask = torch.zeros_like(kept).scatter_(-1, idx, kept)
    return mask, kept.sum(dim=-1), order


# ------------------------------------------------------------------------------------------------- rescales
def visit_rescales(tile_max: torch.Tensor, order: torch.Tensor | None) -> torch.Tensor:
    """Online-softmax rescales per row when a flash kernel visits key tiles in ``order``.

    ``tile_max [..., rows, T]``: each row's largest kept logit in each tile (``-inf``: nothing kept there);
    ``order [..., rows, T]`` the visiting order (``None``: tile index order). A rescale happens when a tile raises
    a row's running maximum after the first tile that set it. Returns int64 ``[..., rows]``.
    """
    seq = tile_max if order is None else tile_max.gather(-1, order)
    run = torch.cummax(seq, dim=-1).values
    prev = torch.nn.functional.pad(run[..., :-1], (1, 0), value=NEG_INF)
    return ((seq > prev) & (prev > NEG_INF)).sum(dim=-1)


def _tile_max(scores: torch.Tensor, keep: torch.Tensor, bk: int) -> torch.Tensor:
    """Largest kept score of each row per key tile ``[..., rows, ceil(width / bk)]``."""
    w = scores.shape[-1]
    t = math.ceil(w / bk)
    s = torch.nn.functional.pad(scores.masked_fill(~keep, NEG_INF), (0, t * bk - w), value=NEG_INF)
    return s.view(*s.shape[:-1], t, bk).amax(dim=-1)


# ------------------------------------------------------------------------------------------------- the method
@dataclass
class BlockChoice:
    """A row block's selection: the kept pairs (what the driver reads) and the block-level lists."""

    keep: torch.Tensor  # bool [B, H, rows, width]
    blocks: torch.Tensor  # bool [B, Hs, t, Tk]
    order: torch.Tensor  # int64 [B, Hs, t, Tk] (kept first, by score)


@dataclass
class BlockScores:
    """A row block's prediction: block scores ``[B, Hs, t, Tk]`` and how they map to its pairs."""

    scores: torch.Tensor
    heads: int
    rows: int
    width: int
    block_q: int
    block_k: int

    def pairs(self) -> torch.Tensor:
        """The scores expanded to pairs ``[B, heads, rows, width]`` (each pair gets its block's score)."""
        return expand_blocks(self.scores, self.heads, self.block_q, self.block_k, self.rows, self.width)


@dataclass
class _Ctx:
    plan: BlockPlan
    codes: BlockCodes


def expand_blocks(blocks: torch.Tensor, heads: int, bq: int, bk: int, rows: int, width: int) -> torch.Tensor:
    """Block-level ``[B, Hs, t, T]`` -> pairs ``[B, heads, rows, width]`` (GQA groups share their KV head's)."""
    x = blocks.repeat_interleave(heads // blocks.shape[1], dim=1)
    x = x.repeat_interleave(bq, dim=2)[:, :, :rows].repeat_interleave(bk, dim=3)
    return x[..., :width]


@register("star_block", StarBlockParams, "block-sparse STAR: DLZS/pooled/PADE block prediction, segment top-k, SU-FA")
class StarBlock(Method):
    """The CPU reference of block-sparse STAR attention (see the module docstring)."""

    def block_rows(self, call: AttentionCall) -> int:
        return self.p.block_q * max(1, 128 // self.p.block_q)

    def prepare(self, call: AttentionCall) -> _Ctx:
        return _Ctx(plan_blocks(call.shape, self.p, call.q.device), block_codes(call, self.p))

    def _span(self, block: RowBlock) -> tuple[int, int]:
        bq = self.p.block_q
        return block.row0 // bq, math.ceil(block.row1 / bq)

    def predict(self, ctx: _Ctx, block: RowBlock, tally: Tally) -> BlockScores:
        a0, a1 = self._span(block)
        scores = predict_block_scores(ctx.codes, ctx.plan, a0, a1, self.p.group_shared)
        return BlockScores(scores, block.call.shape.heads, block.rows, block.width, self.p.block_q, self.p.block_k)

    def select(self, ctx: _Ctx, block: RowBlock, prediction: BlockScores, tally: Tally) -> BlockChoice:
        a0, _ = self._span(block)
        blocks, num, order = select_blocks(prediction.scores, ctx.plan, a0, self.p.mass)
        tally.add(kept_blocks=float(num.sum()))
        keep = expand_blocks(blocks, block.call.shape.heads, self.p.block_q, self.p.block_k, block.rows, block.width)
        return BlockChoice(keep & block.valid, blocks, order)

    def score(self, prediction: BlockScores) -> torch.Tensor:
        """Each pair's block score (what :meth:`Selection.blocks` orders the kept blocks by)."""
        return prediction.pairs()

    def attend(self, ctx: _Ctx, block: RowBlock, prediction: BlockScores, chosen: BlockChoice, tally: Tally):
        exact = block.scores
        tk = chosen.order.shape[-1]
        tiles = _tile_max(exact, chosen.keep, self.p.block_k)  # [B, H, rows, t]
        tiles = torch.nn.functional.pad(tiles, (0, tk - tiles.shape[-1]), value=NEG_INF)
        order = expand_blocks(chosen.order, block.call.shape.heads, self.p.block_q, 1, block.rows, tk)
        tally.add(
            rescales_sorted=float(visit_rescales(tiles, order).sum()),
            rescales_index=float(visit_rescales(tiles, None).sum()),
        )
        empty = ~chosen.keep.any(dim=-1, keepdim=True)
        out = attend_kept(exact, chosen.keep | empty, block.v, block.call.q.dtype)
        return out.masked_fill(empty, 0)

    def count(self, ctx: _Ctx, call: AttentionCall, keep: torch.Tensor, tally: Tally) -> Workload:
        w = formal_workload(call.shape, keep, dtype_bits(call.q.dtype), self.name, self.p.model_dump())
        count_prediction(w, call.shape, self.p, ctx.plan, dtype_bits(call.q.dtype))
        w.meta.update(
            rescales_sorted=tally["rescales_sorted"],
            rescales_index=tally["rescales_index"],
            kept_blocks=tally["kept_blocks"],
        )
        return w


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


class StarGpuParams(StarBlockParams):
    debug_rescales: bool = Field(False, description="count online-softmax rescales per row (slower)")
    order: Literal["score", "index"] = Field("score", description="visit kept blocks by predicted score (SU-FA) "
                                             "or by key index")
    splits: int | None = Field(None, ge=1, le=256, description="split the kept blocks of a row over this many "
                               "programs (flash-decoding; default: automatic for decode, 1 for prefill)")


@register("star_gpu", StarGpuParams, "star_block on the GPU: Triton prediction, selection and block-sparse attention")
class StarGpu(StarBlock):
    """``star_block`` run by the Triton kernels of :mod:`sparseattn.kernels` (CUDA, or the Triton interpreter
    with ``TRITON_INTERPRET=1``); its ``select`` is the reference's."""

    def check_differentiable(self) -> None:
        raise InvalidInputError(
            "star_gpu's Triton kernels are forward-only (inference); use method='star_block' (the same selection, "
            "exact attention on the kept pairs) for gradients, or pass tensors that do not require grad")

    def run(self, call: AttentionCall):
        from ..kernels.star import run_star_gpu  # the kernels need triton; import them only when run

        return run_star_gpu(call, self.p)
