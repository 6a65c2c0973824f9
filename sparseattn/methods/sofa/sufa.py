"""SU-FA: sorted-updating FlashAttention, SOFA's formal stage (SOFA §III-D, Fig. 10; §IV-D).

Within each K/V tile (a SADS sub-segment) the selected keys are visited in *descending* predicted order, so
the tile's reference maximum is known before the first exponential and no running-max rescale is needed:
``l_j = sum exp(s - m_j)``, ``o_j = sum exp(s - m_j) v``. The reference ``m_j`` is the larger *exact* score of
the tile's predicted top-1 and top-2 ("MAX ensuring": DLZS may misorder them). Tiles are merged once at the
end: ``m = max_j m_j``, ``l = sum_j l_j e^(m_j - m)``, ``O = sum_j o_j e^(m_j - m) / l``.

In floating point this is exactly softmax over the selected keys whatever the visiting order; the
reference computes it in float32 by folding the merge factors ``e^(m_j - m)`` into one probability matrix
(the same values, one PV product). An element whose exact score exceeds its tile reference is a *max
violation* (a DLZS misprediction beyond the top-2). ``exp(s - m_j)`` of a violation exceeds 1 and, for a large
enough excess (88 in float32), overflows: the hardware's max-ensuring circuit then switches to *max-update mode*
-- when a later element exceeds the running reference, the accumulators ``l`` and ``o`` are rescaled by
``e^(m_old - s)`` (1 exp and 1+D mul) and the reference is raised. The reference computes that exactly by using
each tile's largest kept exact score as its reference (the same softmax, never an overflow), and the trace
counts the rescales: the rises of the running maximum over the tile's keys in descending predicted order,
starting from the max-ensured reference (``OrderCounts.rescales``; computed only for tiles that have a
violation).

Operation counts for three visiting orders of the same selection, as the algorithms are written (no
data-dependent shortcuts; ``D`` = head dim, "merge" = SU-FA's final tile synchronisation: 1 compare, 1 exp,
1+D mul, 1+D add per non-empty tile; every order ends a row with 1 div and D mul):

=================  ==========================================================================================
order              counts
=================  ==========================================================================================
SU-FA descending   element: 1 exp, 2 add (subtract reference, sum), D mac. tile: 1 compare (max-ensure), merge
ascending          every element is the new reference (SOFA Eq. 1): 1 compare (the order is only predicted, so
                   each element is checked against the running max), 1 exp (rescale factor), 1 mul and
                   2 add (``m_old - x``, ``l = l f + 1``), D mac (``o = o f + v``). tile: merge
FlashAttention-2   element: 1 compare (block row max), 1 exp, 2 add, D mac. tile: 1 compare (running max),
                   1 exp, 1+D mul (rescale of l and O, unconditional as in FA-2's Algorithm 1)
=================  ==========================================================================================

``updates`` records how often the running maximum actually rose (tile maxima in key order for FA-2; with
``diagnostics``, ascending predicted order inside tiles): what a data-dependent implementation would rescale.
QK MACs (D per kept element) are the same for all orders and recorded separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...core import records
from ...core.attention import grouped_pv

ORDERS = ("descending", "ascending", "fa2")


@dataclass
class OrderCounts:
    """Softmax/PV operation counts of one visiting order (see the module docstring)."""

    exp: float = 0.0
    add: float = 0.0
    mul: float = 0.0
    compare: float = 0.0
    div: float = 0.0
    pv_mac: float = 0.0
    updates: float = 0.0  # running-max updates that forced a rescale
    violations: float = 0.0  # descending only: elements above their tile reference
    rescales: float = 0.0  # descending only: max-update rescales (included in exp and mul)

    def __iadd__(self, other: OrderCounts) -> OrderCounts:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class SufaCounts:
    orders: dict[str, OrderCounts] = field(default_factory=lambda: {o: OrderCounts() for o in ORDERS})

    def __iadd__(self, other: SufaCounts) -> SufaCounts:
        for o in ORDERS:
            self.orders[o] += other.orders[o]
        return self

    def record(self, bits: int) -> records.SufaCounts:
        """These counts as the trace's typed record, at the formal stage's operand width ``bits``."""
        return records.SufaCounts(bits=bits, **{o: records.SufaOrder(**self.orders[o].to_dict()) for o in ORDERS})


def _segments(x: torch.Tensor, seg_len: int, fill: float | bool) -> torch.Tensor:
    w = x.shape[-1]
    ts = math.ceil(w / seg_len)
    return torch.nn.functional.pad(x, (0, ts * seg_len - w), value=fill).view(*x.shape[:-1], ts, seg_len)


def _count_updates(running: torch.Tensor) -> torch.Tensor:
    """Rises of a running maximum (cummax along the last dim) after its first finite value."""
    prev, cur = running[..., :-1], running[..., 1:]
    return ((cur > prev) & torch.isfinite(prev)).sum()


def sufa_attend(
    scores: torch.Tensor,
    keep: torch.Tensor,
    pred: torch.Tensor,
    top1: torch.Tensor,
    top2: torch.Tensor,
    v: torch.Tensor,
    seg_len: int,
    out_dtype: torch.dtype,
    diagnostics: bool = False,
) -> tuple[torch.Tensor, SufaCounts]:
    """SU-FA over a chunk of rows: exact ``scores [B, H, c, W]``, selection ``keep``, predicted ``pred`` (for the
    visiting orders), SADS's per-segment ``top1``/``top2`` key indices ``[B, H, c, Ts]``, values
    ``v [B, Hkv, W, D]``. Returns the output ``[B, H, c, D]`` and the counts of the three orders
    (``diagnostics`` adds the data-dependent max updates of the ascending order, which needs a sort)."""
    neg = float("-inf")
    s_seg = _segments(scores.masked_fill(~keep, neg), seg_len, neg)  # [B, H, c, Ts, Bc]
    k_seg = _segments(keep, seg_len, False)

    def exact_at(idx: torch.Tensor) -> torch.Tensor:
        got = scores.gather(-1, idx.clamp(min=0))
        return torch.where(idx >= 0, got, torch.full_like(got, neg))

    ref = torch.maximum(exact_at(top1), exact_at(top2))  # max-ensure, [B, H, c, Ts]; -inf for empty tiles
    tile_max = torch.maximum(ref, s_seg.amax(dim=-1))  # the reference after max-update mode
    out = _merged_tiles(s_seg, k_seg, tile_max, v, scores.shape[-1]).to(out_dtype)
    counts = _order_counts(s_seg, k_seg, ref, keep, top2, v.shape[-1])
    rescales = _max_updates(s_seg, _segments(pred.masked_fill(~keep, neg), seg_len, neg), ref)
    if rescales:
        counts.orders["descending"] += OrderCounts(exp=rescales, mul=rescales * (1 + v.shape[-1]), rescales=rescales)
    if diagnostics:  # ascending predicted order inside each tile: running max over exact scores in that order
        p_seg = _segments(pred.masked_fill(~keep, float("inf")), seg_len, float("inf"))
        order = torch.argsort(p_seg, dim=-1)
        counts.orders["ascending"].updates = float(_count_updates(torch.cummax(s_seg.gather(-1, order), -1).values))
    return out, counts


def _max_updates(s_seg: torch.Tensor, p_seg: torch.Tensor, ref: torch.Tensor) -> float:
    """Rescales of max-update mode: rises of the running maximum over each tile's kept keys visited in descending
    predicted order, starting from the max-ensured reference ``ref``. Only tiles with a violation are sorted."""
    violated = (s_seg > ref.unsqueeze(-1)).any(dim=-1)
    if not bool(violated.any()):
        return 0.0
    s_v, p_v, r_v = s_seg[violated], p_seg[violated], ref[violated]  # [n, Bc], [n, Bc], [n]
    order = torch.argsort(p_v, dim=-1, descending=True, stable=True)
    visited = torch.cat([r_v.unsqueeze(-1), s_v.gather(-1, order)], dim=-1)
    return float(_count_updates(torch.cummax(visited, dim=-1).values))


def _merged_tiles(s_seg: torch.Tensor, k_seg: torch.Tensor, ref: torch.Tensor, v: torch.Tensor, w: int):
    """Per tile ``l_j = sum exp(s - m_j)``, ``o_j = sum exp(s - m_j) v`` without rescaling, merged once:
    ``O = sum_j o_j e^(m_j - m) / sum_j l_j e^(m_j - m)`` (folded into one probability matrix)."""
    b, h, c, ts, seg_len = s_seg.shape
    nonempty = k_seg.any(dim=-1)
    e = torch.exp(s_seg - ref.unsqueeze(-1)).masked_fill(~k_seg, 0.0)  # exp(-inf)=0 for dropped keys
    row_max = ref.amax(dim=-1, keepdim=True)
    factor = torch.exp(ref - row_max).masked_fill(~nonempty, 0.0)  # e^(m_j - m)
    l_row = (e.sum(dim=-1) * factor).sum(dim=-1, keepdim=True)
    probs = (e * factor.unsqueeze(-1)).view(b, h, c, ts * seg_len)[..., :w] / l_row
    return grouped_pv(probs.contiguous(), v)


def _order_counts(s_seg: torch.Tensor, k_seg: torch.Tensor, ref: torch.Tensor, keep: torch.Tensor,
                  top2: torch.Tensor, d: int) -> SufaCounts:
    """Operation counts of the three visiting orders (the module docstring's table)."""
    n = float(torch.count_nonzero(keep))
    tiles = float(torch.count_nonzero(k_seg.any(dim=-1)))
    rows = float(keep.shape[0] * keep.shape[1] * keep.shape[2])
    merge = OrderCounts(compare=tiles, exp=tiles, mul=tiles * (1 + d), add=tiles * (1 + d))
    final = OrderCounts(div=rows, mul=rows * d)
    two = float(torch.count_nonzero(top2 >= 0))
    counts = SufaCounts()
    parts = {
        "descending": (OrderCounts(exp=n, add=2 * n, pv_mac=n * d, compare=two), merge, final),
        "ascending": (OrderCounts(compare=n, exp=n, mul=n, add=2 * n, pv_mac=n * d), merge, final),
        # FlashAttention-2: tiles in key order, one running state, rescaled at every tile
        "fa2": (OrderCounts(compare=n, exp=n, add=2 * n, pv_mac=n * d),
                OrderCounts(compare=tiles, exp=tiles, mul=tiles * (1 + d)), final),
    }
    for order, items in parts.items():
        for part in items:
            counts.orders[order] += part
    counts.orders["descending"].violations = float(torch.count_nonzero(s_seg > ref.unsqueeze(-1)))
    counts.orders["fa2"].updates = float(_count_updates(torch.cummax(s_seg.amax(dim=-1), dim=-1).values))
    return counts
