"""Oracle selections: sparse attention that sees the exact logits before choosing.

They are the idealised frontier the predicting methods (SOFA's DLZS, PADE's bit-serial bounds, Sanger, ...)
are judged against (``shared/research/oracle_frontier.md``). Their traces count the formal work on the kept
pairs only; the cost of finding the exact logits and selecting is *not* counted (``meta["oracle"] = True``),
since no real predictor gets them for free.

* ``topk`` -- per query row, the ``ceil(ratio * valid_keys)`` (or ``k``) keys with the largest logits, at
  least ``min_keys``, never more than the row's valid keys. Ties are broken by ``torch.topk``.
* ``threshold`` -- per row, keys whose scaled logit (``scale * q.k``, default ``scale = 1/sqrt(d)``) is
  within ``delta`` of the row maximum. This is the oracle of PADE's guard-filtering rule.
* ``block_topk`` -- the same at block granularity: per (query block, key block) the score is the maximum
  scaled logit in the block; per query block the ``ceil(ratio * valid_blocks)`` best key blocks are kept,
  always including the first key block (attention sink) and the diagonal blocks when asked, plus
  ``local_blocks`` blocks before the diagonal. Kept blocks keep all their valid pairs.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, model_validator

from ..core.attention import attend, formal_workload, grouped_scores, valid_mask_4d
from ..core.result import SparseResult
from ..core.shape import Shape, valid_keys_per_row
from ..core.validation import dtype_bits
from .registry import AttentionCall, MethodParams, register

_ORACLE_NOTE = "selection by exact logits: prediction and selection cost not counted"
DEFAULT_TOPK_RATIO = 0.2


def _ceil(x: torch.Tensor) -> torch.Tensor:
    """Ceil that ignores float noise such as 0.3 * 10 = 3.0000000000000004."""
    return torch.ceil(x - 1e-9).to(torch.int64)


def keep_top_counts(
    scores: torch.Tensor, counts: torch.Tensor, extent: torch.Tensor | None = None, chunk: int = 128
) -> torch.Tensor:
    """Boolean mask of the ``counts[row]`` largest entries of each row of ``scores [..., R, C]`` (invalid = -inf).

    ``counts`` is int64 ``[R]`` (shared by the leading dims), each >= 1 and <= the finite entries of its row.
    ``extent[row]``, when given and non-decreasing, bounds the columns that can hold finite entries (the
    causal limit), so rows are ranked in chunks of ``chunk`` over their reachable columns only.
    """
    rows, cols = scores.shape[-2:]
    keep = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    for a in range(0, rows, chunk):
        b = min(a + chunk, rows)
        width = cols if extent is None else int(extent[b - 1])
        kmax = int(counts[a:b].max())
        _, idx = torch.topk(scores[..., a:b, :width], kmax, dim=-1, sorted=True)
        chosen = torch.arange(kmax, device=scores.device) < counts[a:b, None]
        keep[..., a:b, :width].scatter_(-1, idx, chosen.expand(idx.shape))
    return keep


def _finish(call: AttentionCall, scores: torch.Tensor, keep: torch.Tensor, method: str, p: MethodParams):
    out = attend(scores, keep, call.v, call.q.dtype)
    trace = formal_workload(
        call.shape, keep, dtype_bits(call.q.dtype), method, p.model_dump(), oracle=True, note=_ORACLE_NOTE
    )
    return SparseResult(out=out, keep=keep, trace=trace)


# ------------------------------------------------------------------------------------------------- top-k
class TopKParams(MethodParams):
    ratio: float | None = Field(
        None, gt=0, le=1, description=f"fraction of each row's valid keys to keep (default {DEFAULT_TOPK_RATIO})"
    )
    k: int | None = Field(None, ge=1, description="number of keys to keep per row (instead of ratio)")
    min_keys: int = Field(1, ge=1, description="keep at least this many keys per row")

    @model_validator(mode="after")
    def _one_budget(self) -> TopKParams:
        if self.ratio is not None and self.k is not None:
            raise ValueError("give either ratio or k, not both")
        return self

    @property
    def effective_ratio(self) -> float | None:
        if self.k is not None:
            return None
        return DEFAULT_TOPK_RATIO if self.ratio is None else self.ratio


def topk_counts(shape: Shape, p: TopKParams, device: torch.device) -> torch.Tensor:
    """Keys kept per query row, int64 ``[Nq]``."""
    nvalid = valid_keys_per_row(shape.q_len, shape.k_len, shape.causal, device)
    if p.k is not None:
        want = torch.full_like(nvalid, p.k)
    else:
        want = _ceil(nvalid.double() * p.effective_ratio)
    return torch.minimum(torch.clamp(want, min=p.min_keys), nvalid)


@register("topk", TopKParams, "oracle: per-row top-k keys by exact logits (by ratio or count)")
def topk(call: AttentionCall, p: TopKParams) -> SparseResult:
    shape = call.shape
    valid = valid_mask_4d(shape, call.q.device)
    scores = grouped_scores(call.q, call.k, call.scale)
    ranked = scores.masked_fill(~valid, float("-inf"))
    extent = valid_keys_per_row(shape.q_len, shape.k_len, shape.causal, call.q.device)
    keep = keep_top_counts(ranked, topk_counts(shape, p, call.q.device), extent)
    del ranked
    return _finish(call, scores, keep, "topk", p)


# ------------------------------------------------------------------------------------------------- threshold
class ThresholdParams(MethodParams):
    delta: float = Field(5.0, ge=0, description="keep keys whose scaled logit >= row max - delta (inf: dense)")


def threshold_keep(scores: torch.Tensor, valid: torch.Tensor, delta: float) -> torch.Tensor:
    """Pairs whose score is within ``delta`` of their row's maximum valid score."""
    rowmax = scores.masked_fill(~valid, float("-inf")).amax(dim=-1, keepdim=True)
    return valid & (scores >= rowmax - delta)


@register("threshold", ThresholdParams, "oracle: keys within delta of the row's max scaled logit")
def threshold(call: AttentionCall, p: ThresholdParams) -> SparseResult:
    valid = valid_mask_4d(call.shape, call.q.device)
    scores = grouped_scores(call.q, call.k, call.scale)
    keep = threshold_keep(scores, valid, p.delta)
    return _finish(call, scores, keep, "threshold", p)


# ------------------------------------------------------------------------------------------------- block top-k
class BlockTopKParams(MethodParams):
    block_size: int = Field(64, ge=1, description="query and key block size")
    ratio: float = Field(0.5, gt=0, le=1, description="fraction of each query block's valid key blocks to keep")
    keep_first: bool = Field(True, description="always keep the first key block (attention sink)")
    keep_diagonal: bool = Field(True, description="always keep the key blocks holding the query block's positions")
    local_blocks: int = Field(0, ge=0, description="also force this many key blocks before the diagonal")


def _block_any(mask: torch.Tensor, b: int) -> torch.Tensor:
    """``[..., Nq, Nk]`` bool -> ``[..., Tq, Tk]``: does the block hold any True?"""
    nq, nk = mask.shape[-2:]
    tq, tk = math.ceil(nq / b), math.ceil(nk / b)
    padded = torch.zeros(*mask.shape[:-2], tq * b, tk * b, dtype=torch.bool, device=mask.device)
    padded[..., :nq, :nk] = mask
    return padded.view(*mask.shape[:-2], tq, b, tk, b).any(dim=-1).any(dim=-2)


def _block_max(scores: torch.Tensor, b: int) -> torch.Tensor:
    """``[B, H, Nq, Nk]`` -> ``[B, H, Tq, Tk]`` maximum per block (-inf padding)."""
    nq, nk = scores.shape[-2:]
    tq, tk = math.ceil(nq / b), math.ceil(nk / b)
    padded = scores.new_full((*scores.shape[:-2], tq * b, tk * b), float("-inf"))
    padded[..., :nq, :nk] = scores
    return padded.view(*scores.shape[:-2], tq, b, tk, b).amax(dim=(-3, -1))


def forced_blocks(shape: Shape, p: BlockTopKParams, device: torch.device) -> torch.Tensor:
    """``[Tq, Tk]`` bool: first, diagonal and local key blocks of each query block (queries are the last
    ``q_len`` positions of the key sequence)."""
    b = p.block_size
    tq, tk = math.ceil(shape.q_len / b), math.ceil(shape.k_len / b)
    offset = shape.k_len - shape.q_len
    a = torch.arange(tq, device=device)
    first_pos = offset + a * b
    last_pos = offset + torch.clamp((a + 1) * b, max=shape.q_len) - 1
    lo, hi = first_pos // b, last_pos // b
    cols = torch.arange(tk, device=device)[None, :]
    forced = torch.zeros(tq, tk, dtype=torch.bool, device=device)
    if p.keep_first:
        forced[:, 0] = True
    if p.keep_diagonal:
        forced |= (cols >= lo[:, None]) & (cols <= hi[:, None])
    if p.local_blocks:
        forced |= (cols >= (lo[:, None] - p.local_blocks)) & (cols < lo[:, None])
    return forced


@register("block_topk", BlockTopKParams, "oracle: top key blocks per query block by block-max logit")
def block_topk(call: AttentionCall, p: BlockTopKParams) -> SparseResult:
    shape, b = call.shape, p.block_size
    valid = valid_mask_4d(shape, call.q.device)
    scores = grouped_scores(call.q, call.k, call.scale)
    block_valid = _block_any(valid[0, 0], b)  # [Tq, Tk]
    forced = forced_blocks(shape, p, call.q.device) & block_valid
    block_score = _block_max(scores.masked_fill(~valid, float("-inf")), b)
    block_score = block_score.masked_fill(forced, float("inf")).masked_fill(~block_valid, float("-inf"))
    n_valid = block_valid.sum(dim=-1)
    counts = torch.minimum(torch.maximum(_ceil(n_valid.double() * p.ratio), forced.sum(dim=-1)), n_valid)
    block_keep = keep_top_counts(block_score, counts.clamp(min=1), chunk=block_score.shape[-2])
    nq, nk = shape.q_len, shape.k_len
    keep = block_keep.repeat_interleave(b, dim=-2)[..., :nq, :].repeat_interleave(b, dim=-1)[..., :nk] & valid
    return _finish(call, scores, keep, "block_topk", p)
