"""SADS: sphere-search-aided distributed sorting, SOFA's top-k stage (SOFA §III-C, §IV-C, Fig. 9, 13).

Each query row's predicted scores are split into ``n = Tc`` sub-segments of ``Bc = ceil(Nk / Tc)`` keys
(aligned at key 0, so a sub-segment is also the formal stage's K/V tile). Each sub-segment keeps its own
top ``ceil(k * valid)`` keys -- the "distributed cluster effect" says vital keys spread over the row -- and
identifies its exact top-1 and top-2, which SU-FA uses as the tile's reference maximum. Defaults where the
paper is silent (each a parameter):

* ``k`` is a fraction of the segment's *valid* keys (causal rows see fewer keys); a segment keeps at least
  its predicted top-1 and top-2 (SU-FA's max-ensure needs both exact scores);
* sphere radius ``r`` (in scaled-logit units, ``inf`` = off): entries below ``segment max - r`` are clipped
  and never sorted ("blocked", replaced by zeros in hardware), so a segment may keep fewer than its budget;
* the hardware sorter is modelled as a stream: each of the 128 sort cores holds the 4 largest values so far
  and takes 12 new values per step through a 16-to-4 bitonic network; a budget of ``c`` keys needs
  ``ceil(c / 4)`` iterations over the segment, iteration ``t`` streaming the ``n_fr - 4t`` clipped-in values
  not yet taken. Comparators per step: a 16-input bitonic sorter pruned to the comparators that reach the 4
  largest outputs (:data:`COMPARATORS_PER_STEP`). The clipping unit compares every valid value once per
  iteration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import torch

from ...core.shape import ceil_count

SORT_INPUTS = 16
SORT_OUTPUTS = 4
NEW_PER_STEP = SORT_INPUTS - SORT_OUTPUTS  # 12


def bitonic_network(n: int) -> list[tuple[int, int]]:
    """Compare-exchange pairs ``(hi, lo)`` of a bitonic sorter of ``n`` (a power of two) inputs that leaves
    the values in descending order (after each comparator, wire ``hi`` holds the larger value)."""
    if n < 2 or n & (n - 1):
        raise ValueError(f"bitonic networks need a power-of-two width >= 2, got {n}")
    net = []
    size = 2
    while size <= n:
        stride = size // 2
        while stride >= 1:
            for i in range(n):
                j = i ^ stride
                if j > i:
                    descending = (i & size) == 0
                    net.append((i, j) if descending else (j, i))
            stride //= 2
        size *= 2
    return net


def sort_network(values: list[float], net: list[tuple[int, int]]) -> list[float]:
    """Apply a compare-exchange network (used by the tests to check :func:`bitonic_network`)."""
    out = list(values)
    for hi, lo in net:
        if out[hi] < out[lo]:
            out[hi], out[lo] = out[lo], out[hi]
    return out


@cache
def pruned_comparators(n: int = SORT_INPUTS, outputs: int = SORT_OUTPUTS) -> int:
    """Comparators of the ``n``-input bitonic sorter that influence its ``outputs`` largest wires."""
    live = set(range(outputs))
    needed = 0
    for hi, lo in reversed(bitonic_network(n)):
        if hi in live or lo in live:
            needed += 1
            live |= {hi, lo}
    return needed


COMPARATORS_PER_STEP = pruned_comparators()


def segment_length(k_len: int, tc: int) -> int:
    """Keys per sub-segment, ``Bc = ceil(Nk / Tc)``."""
    return math.ceil(k_len / tc)


@dataclass
class SadsSelection:
    """SADS output for a chunk of query rows ``[B, H, c, W]`` split into ``Ts`` segments."""

    keep: torch.Tensor  # bool [B, H, c, W]
    top1: torch.Tensor  # int64 [B, H, c, Ts]: key index of each segment's predicted maximum (-1: no key)
    top2: torch.Tensor  # int64 [B, H, c, Ts]: second largest (-1: fewer than two kept)
    compares: float  # sorter comparators
    steps: float  # sorter steps (one 12-new-value step of one sort core)
    clip_compares: float  # clipping-unit comparisons


def sads_select(
    pred: torch.Tensor, valid: torch.Tensor, ratio: torch.Tensor, seg_len: int, radius: float
) -> SadsSelection:
    """Select keys per sub-segment from predicted logits ``pred [B, H, c, W]`` (any float dtype).

    ``valid [c, W]`` marks the keys a row may see; ``ratio [c]`` is each row's keep fraction (the method raises
    it for short rows, see ``sofa.method``); ``seg_len`` is ``Bc``; ``radius`` is the sphere radius in the
    units of ``pred`` (``inf`` for none).
    """
    b, h, c, w = pred.shape
    ts = math.ceil(w / seg_len)
    pad = ts * seg_len - w
    neg = torch.finfo(pred.dtype).min
    scores = torch.nn.functional.pad(pred.masked_fill(~valid, neg), (0, pad), value=neg).view(b, h, c, ts, seg_len)
    valid_seg = torch.nn.functional.pad(valid, (0, pad), value=False).view(c, ts, seg_len)
    n_valid = valid_seg.sum(dim=-1)  # [c, Ts]
    budget = ceil_count(n_valid, ratio[:, None].double())
    budget = torch.minimum(torch.maximum(budget, torch.clamp(n_valid, max=2)), n_valid)  # [c, Ts]

    seg_max = scores.amax(dim=-1, keepdim=True)
    in_fr = valid_seg & (scores >= seg_max - radius) if math.isfinite(radius) else valid_seg.expand_as(scores)
    n_fr = in_fr.sum(dim=-1)  # [B, H, c, Ts] (or broadcast [c, Ts])
    count = torch.minimum(budget, n_fr)  # clipped segments may keep fewer than their budget
    if math.isfinite(radius):
        scores = scores.masked_fill(~in_fr, neg)

    kmax = max(int(count.max()), 1)
    _, idx = torch.topk(scores, min(kmax, seg_len), dim=-1, sorted=True)
    chosen = torch.arange(idx.shape[-1], device=pred.device) < count.unsqueeze(-1)
    keep = torch.zeros(scores.shape, dtype=torch.bool, device=pred.device).scatter_(-1, idx, chosen.expand(idx.shape))
    keep = keep.view(b, h, c, ts * seg_len)[..., :w]

    base = torch.arange(ts, device=pred.device).view(1, 1, 1, ts) * seg_len
    count4 = count.expand(b, h, c, ts)
    top1 = torch.where(count4 >= 1, idx[..., 0] + base, torch.full_like(count4, -1))
    top2 = (
        torch.where(count4 >= 2, idx[..., 1] + base, torch.full_like(count4, -1))
        if idx.shape[-1] > 1
        else (torch.full_like(count4, -1))
    )

    # streaming sorter: T = ceil(count / 4) iterations, iteration t sorts the n_fr - 4t values not yet taken
    iters = torch.div(count4 + SORT_OUTPUTS - 1, SORT_OUTPUTS, rounding_mode="floor")
    t = torch.arange(int(iters.max()) if iters.numel() else 0, device=pred.device)
    remaining = (n_fr.expand(b, h, c, ts).unsqueeze(-1) - SORT_OUTPUTS * t).clamp(min=0)
    per_iter = torch.div(remaining + NEW_PER_STEP - 1, NEW_PER_STEP, rounding_mode="floor")
    steps = float((per_iter * (t < iters.unsqueeze(-1))).sum())
    clip = float((n_valid.expand(b, h, c, ts) * iters).sum())
    return SadsSelection(
        keep=keep, top1=top1, top2=top2, compares=steps * COMPARATORS_PER_STEP, steps=steps, clip_compares=clip
    )


def index_mismatch(pred: torch.Tensor, valid: torch.Tensor, keep: torch.Tensor) -> tuple[float, float]:
    """Disagreement of a selection with the global top-k of the same predicted scores.

    For each row, the global top-``|S|`` set ``G`` (``|S|`` = keys the selection kept); returns
    ``(mismatched, selected)``: the number of selected indices not in ``G`` and of selected indices, so
    ``mismatched / selected`` is SOFA's "different K indices are considered as errors" rate.
    """
    from ..common import keep_top_counts

    counts = keep.sum(dim=-1)
    ranked = pred.masked_fill(~valid, float("-inf"))
    flat = ranked.reshape(-1, ranked.shape[-2], ranked.shape[-1])
    flat_counts = counts.reshape(-1, counts.shape[-1])
    mismatched = 0.0
    for i in range(flat.shape[0]):  # per (batch, head): counts differ between heads
        g = keep_top_counts(flat[i], flat_counts[i].clamp(min=1))
        mismatched += float((keep.reshape(-1, *keep.shape[-2:])[i] & ~g).sum())
    return mismatched, float(counts.sum())
