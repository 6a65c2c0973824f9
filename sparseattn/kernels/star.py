"""Block-sparse STAR attention on the GPU: prologue -> prediction kernel -> selection kernel -> sorted-updating
block-sparse attention kernel, with the parameters (and hence the selection) of the ``star_block`` reference
(:mod:`sparseattn.methods.blocksparse`; the plan and parameters both use are :mod:`sparseattn.core.blockplan`).

* :func:`star_attention` -- tensors in, output out; only custom ops and plain tensor code, so it sits inside a
  ``torch.compile`` graph (``fullgraph=True``) without a break.
* :func:`star_forward` -- the same, returning the selection and (in debug mode) the rescale counts; its stages
  (:func:`predict_stage`, :func:`select_stage`, :func:`attend_stage`) are what ``benchmarks/bench_gpu.py`` times.
* :func:`run_star_gpu` -- the ``star_gpu`` method: a :class:`BlockSparseResult` whose trace counts the same work
  as the reference's and whose pair mask is only built if someone reads it.

With ``ratio=1`` (the dense path) every valid block is kept, so the pipeline skips prediction and selection and
visits the blocks in key order.

Decode (a few queries per head against a long KV cache) is the same pipeline: the pooled query is the query,
the GQA group is packed into one program so every kept K/V block is loaded once per group, and the kept list is
split over programs (flash-decoding) when there are too few (batch x KV head) programs to fill the GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.attention import add_formal_work
from ..core.blockplan import BlockPlan, StarGpuParams, block_codes, count_prediction, plan_blocks
from ..core.call import AttentionCall
from ..core.errors import InvalidInputError
from ..core.params import validate_params
from ..core.result import SparseResult
from ..core.selection import BlockSelection
from ..core.shape import Shape, valid_mask
from ..core.validation import dtype_bits
from ..core.workload import SparsityProfile, Workload, tile_valid_counts
from . import ops
from ._runtime import check_block, require_runtime


@dataclass
class StarOutput:
    """What :func:`star_forward` returns: the output, the selection (heads = KV heads when group-shared) and the
    per-row rescale counts (``None`` unless ``debug_rescales``)."""

    out: torch.Tensor
    selection: BlockSelection
    rescales: torch.Tensor | None
    plan: BlockPlan


def star_params(**params: Any) -> StarGpuParams:
    """Validated ``star_gpu`` parameters (unknown names or bad values raise ``ValueError``)."""
    return validate_params(StarGpuParams, params, "star_gpu")


def _shape(q: torch.Tensor, k: torch.Tensor, causal: bool) -> Shape:
    if q.dim() != 4 or k.dim() != 4:
        raise InvalidInputError(f"q and k must be [batch, heads, seq, head_dim], got {tuple(q.shape)}, "
                                f"{tuple(k.shape)}")
    b, h, nq, d = q.shape
    if k.shape[0] != b or k.shape[3] != d or h % k.shape[1]:
        raise InvalidInputError(f"k {tuple(k.shape)} does not match q {tuple(q.shape)} (batch, head_dim, GQA)")
    if causal and nq > k.shape[2]:
        raise InvalidInputError(f"causal attention needs q_len <= k_len, got {nq} > {k.shape[2]}")
    return Shape(batch=b, heads=h, kv_heads=k.shape[1], q_len=nq, k_len=k.shape[2], head_dim=d, causal=causal)


def _check_params(p: StarGpuParams) -> None:
    check_block("block_q", p.block_q)
    check_block("block_k", p.block_k)


def predict_stage(
    q: torch.Tensor, k: torch.Tensor, causal: bool, scale: float, p: StarGpuParams
) -> tuple[torch.Tensor, BlockPlan]:
    """Block scores ``[B, Hs, Tq, Tk]`` (the prologue in PyTorch, the scoring in a kernel) and the plan."""
    shape = _shape(q, k, causal)
    plan = plan_blocks(shape, p, q.device)
    codes = block_codes(AttentionCall(q=q, k=k, v=k, shape=shape, scale=scale), p)
    if codes.per_token:
        scores = ops.token_block_scores(
            codes.q, codes.k, codes.factor, codes.bonus, plan.last_pos, p.block_k, codes.drop, p.group_shared
        )
    else:
        scores = ops.pooled_block_scores(codes.q, codes.k, codes.factor, plan.n_valid, p.group_shared)
    return scores, plan


def keeps_everything(p: StarGpuParams) -> bool:
    """``ratio=1``: every valid block is kept, so prediction and selection are skipped (key order)."""
    return p.mass is None and p.effective_ratio == 1.0


def dense_lists(plan: BlockPlan, b: int, hs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every valid key block of every query block, in key order (the ``ratio=1`` selection)."""
    idx = torch.arange(plan.tk, device=plan.n_valid.device, dtype=torch.int32).expand(b, hs, plan.tq, plan.tk)
    return plan.n_valid.to(torch.int32).expand(b, hs, plan.tq).contiguous(), idx.contiguous()


def select_stage(scores: torch.Tensor, plan: BlockPlan, p: StarGpuParams) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kv_num_blocks, kv_indices)`` from block scores; re-sorted by key index when ``p.order == "index"``."""
    num, idx = ops.select_blocks(
        scores, plan.n_valid, plan.wlo, plan.whi, plan.keep_first, plan.picks, plan.seg_len, p.mass
    )
    if p.order == "index":
        rank = torch.arange(idx.shape[-1], device=idx.device)
        key = torch.where(rank < num.unsqueeze(-1), idx, idx + idx.shape[-1])  # kept by index, then the rest
        idx = idx.gather(-1, torch.argsort(key, dim=-1, stable=True))
    return num, idx


def auto_splits(q: torch.Tensor, k: torch.Tensor, p: StarGpuParams, hs: int) -> int:
    """Splits of each kept list: 1 for prefill; for decode (fewer than 16 queries) enough programs to give every
    SM two, at most one per expected kept block."""
    if p.splits is not None:
        return p.splits
    nq = q.shape[2]
    if nq >= 16:
        return 1
    sms = torch.cuda.get_device_properties(q.device).multi_processor_count if q.is_cuda else 4
    programs = q.shape[0] * (k.shape[1] if hs == k.shape[1] else q.shape[1]) * math.ceil(nq / p.block_q)
    tk = math.ceil(k.shape[2] / p.block_k)
    kept = tk if p.mass is not None else max(1, math.ceil(p.effective_ratio * tk))
    return max(1, min(math.ceil(2 * sms / programs), kept, 64))


def attend_stage(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num: torch.Tensor, idx: torch.Tensor, causal: bool,
    scale: float, p: StarGpuParams,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The block-sparse attention kernel on the selection ``(num, idx)``; ``(out, rescales or None)``."""
    splits = auto_splits(q, k, p, num.shape[1])
    out, resc = ops.block_sparse_attention(
        q, k, v, num, idx, p.block_q, p.block_k, causal, scale, splits, p.debug_rescales
    )
    return out, (resc if p.debug_rescales else None)


def star_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: float | None = None,
    params: StarGpuParams | None = None, **kw: Any,
) -> StarOutput:
    """Run the whole pipeline (``params`` or keyword parameters of ``star_gpu``)."""
    p = params if params is not None else star_params(**kw)
    _check_params(p)
    require_runtime(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if keeps_everything(p):
        plan = plan_blocks(_shape(q, k, causal), p, q.device)
        num, idx = dense_lists(plan, q.shape[0], k.shape[1] if p.group_shared else q.shape[1])
    else:
        scores, plan = predict_stage(q, k, causal, scale, p)
        num, idx = select_stage(scores, plan, p)
    out, resc = attend_stage(q, k, v, num, idx, causal, scale, p)
    sel = BlockSelection(p.block_q, p.block_k, q.shape[2], k.shape[2], num, idx)
    return StarOutput(out, sel, resc, plan)


def star_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: float | None = None,
    params: StarGpuParams | None = None, **kw: Any,
) -> torch.Tensor:
    """Block-sparse STAR attention of ``q [B, H, Nq, D]``, ``k, v [B, Hkv, Nk, D]`` (``star_gpu`` parameters).

    Inside ``torch.compile(fullgraph=True)`` pass ``params=star_params(...)`` built outside the compiled function
    (parameter validation is pydantic, which Dynamo does not trace)."""
    return star_forward(q, k, v, causal, scale, params, **kw).out


# ------------------------------------------------------------------------------------------------- method
def kept_blocks(sel: BlockSelection) -> torch.Tensor:
    """bool ``[B, Hs, Tq, Tk]``: the kept blocks of a selection."""
    rank = torch.arange(sel.kv_indices.shape[-1], device=sel.kv_indices.device)
    kept = rank < sel.kv_num_blocks.unsqueeze(-1)
    return torch.zeros_like(kept).scatter_(-1, sel.kv_indices.long(), kept)


def block_profile(sel: BlockSelection, shape: Shape) -> SparsityProfile:
    """Kept pairs per ``gcd(block_q, block_k)`` tile of every (batch, head), from the kept blocks."""
    tile = math.gcd(sel.block_q, sel.block_k)
    blocks = kept_blocks(sel).repeat_interleave(shape.heads // sel.kv_num_blocks.shape[1], dim=1)
    tiles = blocks.repeat_interleave(sel.block_q // tile, dim=2).repeat_interleave(sel.block_k // tile, dim=3)
    valid = torch.as_tensor(tile_valid_counts(shape, tile), device=tiles.device)
    counts = tiles[:, :, : valid.shape[0], : valid.shape[1]] * valid
    inst = np.arange(shape.instances)
    group = (inst // shape.heads) * shape.kv_heads + (inst % shape.heads) // shape.group_size
    return SparsityProfile(tile, counts.reshape(shape.instances, *valid.shape).cpu().numpy(), group)


def block_workload(shape: Shape, sel: BlockSelection, p: StarGpuParams, bits: int, plan: BlockPlan,
                   rescales: torch.Tensor | None) -> Workload:
    """The trace of a ``star_gpu`` call: the formal work on the kept pairs (as
    :func:`~sparseattn.core.attention.formal_workload` counts it) plus the reference's prediction and selection."""
    profile = block_profile(sel, shape)
    w = Workload(shape=shape, profile=profile, meta={"method": "star_gpu", "params": p.model_dump()})
    add_formal_work(w, float(profile.kept_pairs), bits)
    if keeps_everything(p):
        w.meta["note"] = "ratio=1: every valid block kept, prediction and selection skipped, key order"
    else:
        count_prediction(w, shape, p, plan, bits)
    w.meta["kept_blocks"] = float(sel.kv_num_blocks.sum()) * (shape.heads // sel.kv_num_blocks.shape[1])
    if rescales is not None:
        by_score = p.order == "score" and not keeps_everything(p)
        w.meta[f"rescales_{'sorted' if by_score else 'index'}"] = float(rescales.sum())
    return w


class BlockSparseResult(SparseResult):
    """A :class:`~sparseattn.core.result.SparseResult` kept at block granularity: ``keep`` (the pair mask) is
    built from :attr:`selection` only when read -- at 128k tokens it would not fit in memory -- while
    ``kept_pairs`` and ``density`` come from the trace's profile."""

    def __init__(self, out: torch.Tensor, selection: BlockSelection, trace: Workload,
                 rescales: torch.Tensor | None = None) -> None:
        self.out, self.selection, self.trace, self.rescales = out, selection, trace, rescales
        self._keep: torch.Tensor | None = None

    @property
    def keep(self) -> torch.Tensor:  # type: ignore[override]
        if self._keep is None:
            s = self.trace.shape
            pairs = self.selection.mask().repeat_interleave(s.heads // self.selection.kv_num_blocks.shape[1], dim=1)
            self._keep = pairs & valid_mask(s.q_len, s.k_len, s.causal, pairs.device)
        return self._keep

    @property
    def kept_pairs(self) -> int:
        return int(self.trace.profile.kept_pairs) if self.trace.profile is not None else super().kept_pairs

    def __repr__(self) -> str:
        return f"BlockSparseResult(out={tuple(self.out.shape)}, density={self.density:.4f})"


def run_star_gpu(call: AttentionCall, p: StarGpuParams) -> BlockSparseResult:
    """The ``star_gpu`` method on a validated call."""
    res = star_forward(call.q, call.k, call.v, call.shape.causal, call.scale, params=p)
    trace = block_workload(call.shape, res.selection, p, dtype_bits(call.q.dtype), res.plan, res.rescales)
    return BlockSparseResult(res.out, res.selection, trace, res.rescales)
