"""Block-sparse STAR-style attention: SOFA/STAR's predict -> distributed top-k -> sorted updating, at the block
granularity a GPU runs (SOFA §III-B to §III-D; the block-level peers named below: MInference, arXiv 2407.02490;
SpargeAttn, arXiv 2502.18137; FlexPrefill, arXiv 2502.20766; XAttention, arXiv 2503.16428; NSA, arXiv 2502.11089).

This module is the CPU reference (``star_block``) and the truth the Triton kernels of :mod:`sparseattn.kernels`
are tested against, pair for pair; ``star_gpu`` has the same parameters and runs those kernels (its selection is
this module's, so ``sparseattn.select(..., method="star_gpu")`` is the reference selection).

**Predict** (one score per (query block, key block), in scaled-logit units). Every query block is represented by
the mean of its queries (pooled in float32), quantised symmetrically to ``bits``-bit codes with one scale per
(batch, head); integer products are exact in float32, so a kernel reproduces the scores bit for bit:

* ``dlzs`` -- SOFA's differential leading-zero scheme (SOFA §III-B, Fig. 7(c) floor snap): the pooled query code goes to
  the log domain (``sign * 2^floor(log2|q|)``: a shift amount), keys stay linear ``bits``-bit codes; the score of a
  key block is the largest shift-add estimate ``sum_d sign(q_d) (|k_d| << e(q_d))`` over its keys the block may
  see. Add-only on an accelerator; a GPU evaluates the same integers with INT8 tensor-core MACs.
* ``pooled`` -- mean-pooled Q and K blocks at ``bits`` bits, one dot product per block pair (MInference's
  block-sparse estimate, SpargeAttn's stage 1): ``Tq x Tk`` MACs per head instead of ``Tq x Nk``.
* ``pade`` -- PADE's bit-serial view (HPCA'26, BUI): the top ``planes`` bit planes of the INT8 keys with the
  uncertainty interval of the planes not read; the block score is the interval's *upper* bound
  ``q . k_hi + sum_d max(q_d, 0) (2^(bits - planes) - 1)`` maximised over the block's keys -- the optimistic score
  PADE's guard compares, so a block is dropped only when even its bound ranks low.

Default ``dlzs``, by measurement: the recall of the exact block top-k by each predictor over the 30 layers of
SmolLM2-135M (``benchmarks/results/bench_blocksparse.md``, written by ``benchmarks/bench_blocksparse.py``).

Cost per head: ``dlzs``/``pade`` ``Tq x Nk x D`` INT8 operations, ``1 / (2 block_q)`` of dense attention's MACs
(0.4% at 128-query blocks); ``pooled`` ``Tq x Tk x D``, ``block_k`` times less. ``pooled`` is the choice at very low
budgets or when prediction time must vanish; ``dlzs`` ranks best at the budgets that keep accuracy.

Default budget (``ratio=0.3``, ``local_blocks=6``), by SmolLM2-135M perplexity on 4096 tokens of moby-dick against
the other ``ratio`` / ``mass`` and ``local_blocks`` settings in ``benchmarks/results/bench_blocksparse.md``: the
recent window buys the most accuracy per kept block; ``ratio`` keeps the speed predictable.

With ``group_shared`` (default) the query heads of one GQA group share one selection: their block scores are
maximised over the group (as NSA shares selected blocks over a group), so a kernel loads each kept KV block
once per group.

**Select** (per query block): ``ratio`` keeps ``ceil(ratio * valid key blocks)`` blocks (default 0.3), or
``mass`` keeps the fewest top-scoring blocks whose softmax mass of predicted scores reaches ``mass`` (FlexPrefill's
gamma, XAttention's tau). The first block (attention sink), the diagonal blocks and ``local_blocks`` blocks before
the diagonal are always kept and count towards the budget. With ``segments > 1`` the key-block row is cut into
SADS sub-segments of ``ceil(Tk / segments)`` blocks aligned at block 0, each keeping its own ``ratio`` of its valid
blocks (SOFA's distributed sorting, SOFA §III-C; ratio mode only). The kept blocks are listed in descending predicted
score, ties by block index (SU-FA's visiting order, SOFA §III-D), then the unkept ones in the same order.

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

import torch

from ..core.attention import attend_kept, formal_workload
from ..core.blockplan import (
    BlockCodes,
    BlockPlan,
    StarBlockParams,
    StarGpuParams,
    block_codes,
    count_prediction,
    log_codes,  # noqa: F401  (the reference's log-domain snap, re-exported)
    plan_blocks,
)
from ..core.driver import Method, RowBlock, Tally
from ..core.errors import InvalidInputError
from ..core.validation import dtype_bits
from ..core.workload import Workload
from .registry import AttentionCall, Knob, register

NEG_INF = float("-inf")


# ------------------------------------------------------------------------------------------------- prediction
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


@dataclass
class StarBlockCounts:
    """What block-sparse STAR's steps count: kept key blocks and the online-softmax rescales of a flash kernel
    visiting them in descending predicted score and in key order."""

    kept_blocks: float = 0.0
    rescales_sorted: float = 0.0
    rescales_index: float = 0.0


@register("star_block", StarBlockParams, "block-sparse STAR: DLZS/pooled/PADE block prediction, segment top-k, SU-FA",
          (Knob("ratio", 0.02, 1.0, "up", "log", source="the parameter's range (0, 1]"),))
class StarBlock(Method):
    """The CPU reference of block-sparse STAR attention (see the module docstring)."""

    counts = StarBlockCounts

    def block_rows(self, call: AttentionCall) -> int:
        return self.p.block_q * max(1, 128 // self.p.block_q)

    def prepare(self, call: AttentionCall) -> _Ctx:
        return _Ctx(plan_blocks(call.shape, self.p, call.q.device), block_codes(call, self.p))

    def _span(self, block: RowBlock) -> tuple[int, int]:
        bq = self.p.block_q
        return block.row0 // bq, math.ceil(block.row1 / bq)

    def predict(self, ctx: _Ctx, block: RowBlock, tally: Tally[StarBlockCounts]) -> BlockScores:
        a0, a1 = self._span(block)
        scores = predict_block_scores(ctx.codes, ctx.plan, a0, a1, self.p.group_shared)
        return BlockScores(scores, block.call.shape.heads, block.rows, block.width, self.p.block_q, self.p.block_k)

    def select(self, ctx: _Ctx, block: RowBlock, prediction: BlockScores, tally: Tally[StarBlockCounts]) -> BlockChoice:
        a0, _ = self._span(block)
        blocks, num, order = select_blocks(prediction.scores, ctx.plan, a0, self.p.mass)
        tally.add(kept_blocks=float(num.sum()))
        keep = expand_blocks(blocks, block.call.shape.heads, self.p.block_q, self.p.block_k, block.rows, block.width)
        return BlockChoice(keep & block.valid, blocks, order)

    def score(self, prediction: BlockScores) -> torch.Tensor:
        """Each pair's block score (what :meth:`~sparseattn.core.selection.Selection.blocks` orders the kept
        blocks by)."""
        return prediction.pairs()

    def attend(self, ctx: _Ctx, block: RowBlock, prediction: BlockScores, chosen: BlockChoice,
               tally: Tally[StarBlockCounts]):
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

    def count(self, ctx: _Ctx, call: AttentionCall, keep: torch.Tensor, tally: Tally[StarBlockCounts]) -> Workload:
        w = formal_workload(call.shape, keep, dtype_bits(call.q.dtype), self.name, self.p.model_dump())
        count_prediction(w, call.shape, self.p, ctx.plan, dtype_bits(call.q.dtype))
        w.meta.update(
            rescales_sorted=tally["rescales_sorted"],
            rescales_index=tally["rescales_index"],
            kept_blocks=tally["kept_blocks"],
        )
        return w


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
