"""The ``sofa`` and ``star`` methods: DLZS prediction -> SADS selection -> SU-FA attention, per 128-query tile.

The driver's four steps (:mod:`sparseattn.core.driver`) map one to one onto SOFA's stages: ``prepare`` quantises Q
and obtains the keys the predictor shifts (:mod:`.keys`), ``predict`` is DLZS, ``select`` is SADS (and RASS's
load schedule of the tile), ``attend`` is SU-FA and ``count`` writes the trace.

Pipeline for each tile of ``tile_rows`` query rows (SOFA processes 128 queries in parallel; rows are
chunked the same way here, and each chunk only reaches the keys its causal rows can see):

1. **DLZS** (:mod:`.dlzs`): Q quantised to ``q_bits`` (INT16) and snapped to leading-one exponents; keys
   either the given K quantised to ``k_bits`` (``keys="k"``) or predicted from the layer input
   (``keys="cross_phase"``: ``K_hat = X W_k`` with X INT8 and W_k stored as sign + exponent, truncated to
   ``khat_bits`` = 16 bits, rotated by the model's RoPE, requantised to 16 bits; :mod:`.keys`). ``A_hat = Q K^T`` by
   shift-and-add; predicted logits are ``A_hat * scale_q * scale_k * scale``.
2. **SADS** (:mod:`.sads`): per row, ``Tc`` sub-segments keep their top ``k`` fraction each (radius ``r``).
   Rows with at most ``min_keys`` valid keys are kept whole and shorter rows get a raised fraction so that
   every row keeps about ``max(k * valid, min_keys)`` keys -- the causal-prefill floor our oracle top-k uses
   (SOFA's benchmarks are mostly non-causal and do not need it).
3. **SU-FA** (:mod:`.sufa`) on the exact scores of the selected pairs; **RASS** (:mod:`.rass`) counts the
   K/V loads of the tile.

Per-layer parameters: ``k``, ``Tc`` and ``r`` are a scalar or a list indexed by the ``layer`` the call
belongs to (the Hugging Face patch passes it), which is how design-space search sets them.

The trace: ``predict`` (shifts, adds and leading-zero conversions -- no multiplications), ``select``
(sort-core comparators and clipping compares), ``kvgen`` (on-demand K/V projection of the keys selected by
each tile, cross-phase only), ``qk``/``softmax``/``pv`` at ``formal_bits`` for the SU-FA descending order.
Its records (:mod:`sparseattn.core.records`) hold the SU-FA counts of the three visiting orders
(:class:`~sparseattn.core.records.SufaCounts`), the layer's SADS setting and the RASS loads; ``meta`` the SADS and
DLZS diagnostics (sorter steps, sign-negation counts) as notes.

``star`` is the same algorithm (STAR keeps SOFA's DLZS/SADS/SU-FA); its trace differs only in where the
sign of a negative DLZS term is applied: SOFA negates the wide shifted result (an add at accumulator
width), STAR's pre-flipping by sign prediction (PSP) negates the narrow operand before the shift (an add at
operand width). PSP changes power, not results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import torch
from pydantic import Field

from ...core.call import AttentionCall
from ...core.driver import Method, RowBlock, Tally
from ...core.errors import InvalidParameterError
from ...core.quant import quantize_symmetric
from ...core.records import RassLoads, SadsSetting
from ...core.workload import Per, SparsityProfile, Workload
from ..registry import Knob, MethodParams, register
from .dlzs import accumulator_bits, predict_scores
from .keys import KeyOperand, cross_phase_keys, given_keys
from .rass import rass_loads
from .sads import SadsSelection, index_mismatch, sads_select, segment_length
from .sufa import SufaCounts, sufa_attend

Ratio = Annotated[float, Field(gt=0, le=1)]
Tiles = Annotated[int, Field(ge=1)]
Radius = Annotated[float, Field(gt=0)]


class SofaParams(MethodParams):
    keys: Literal["k", "cross_phase"] = Field("k", description="key source: the given K, or X W_k predicted (paper)")
    k: Ratio | list[Ratio] = Field(0.25, description="keep fraction per sub-segment (scalar or per layer)")
    Tc: Tiles | list[Tiles] = Field(4, description="sub-segments (K/V tiles) per row (scalar or per layer)")
    r: Radius | list[Radius] = Field(float("inf"), description="sphere radius in scaled-logit units (inf: off)")
    min_keys: int = Field(16, ge=1, description="rows keep at least this many keys (all of a shorter row)")
    q_bits: int = Field(16, ge=2, le=16, description="query integer width before the leading-zero encoder")
    k_bits: int = Field(8, ge=2, le=16, description="key integer width (keys='k')")
    x_bits: int = Field(8, ge=2, le=16, description="layer-input width (keys='cross_phase')")
    w_bits: int = Field(8, ge=2, le=16, description="W_k width before its offline log conversion")
    khat_bits: int = Field(16, ge=4, le=16, description="predicted-key width after truncation")
    key_estimate: Literal["dlzs", "exact"] = Field(
        "dlzs", description="cross-phase K_hat = X W_k by DLZS (paper), or exact (a check of the key path)")
    granularity: Literal["tensor", "head", "token"] = Field("tensor", description="quantisation scale groups")
    formal_bits: int = Field(16, ge=4, le=32, description="operand width the formal stage is costed at")
    tile_rows: int = Field(128, ge=1, description="queries processed in parallel (one RASS/KV-generation tile)")
    rass_per_phase: int = Field(2, ge=1, description="keys a query row consumes per RASS phase")
    diagnostics: bool = Field(
        False, description="also measure SADS mismatch vs the global top-k and ascending-order max updates"
    )


def per_layer(value: object, layer: int | None, name: str) -> object:
    """The entry of a per-layer parameter list for ``layer`` (scalars pass through)."""
    if not isinstance(value, list):
        return value
    if layer is None:
        raise InvalidParameterError(f"{name} is a per-layer list; call with layer=<index> (the HF patch does)")
    if layer >= len(value):
        raise InvalidParameterError(f"{name} has {len(value)} per-layer entries, no entry for layer {layer}")
    return value[layer]


def _sign_counts(q_int: torch.Tensor, k_int: torch.Tensor, valid: torch.Tensor) -> tuple[float, float]:
    """Non-zero DLZS terms and negative ones over the valid pairs of a chunk (grouped q ``[B, Hkv, g*c, D]``).

    Row ``i`` of the chunk sees a contiguous range of keys ``lo_i .. hi_i`` (``valid`` is a full, causal or
    sliding-window mask), so ``sum_{lo_i <= j <= hi_i} |sign q_i| . |sign k_j|`` is ``|sign q_i|`` dotted with a
    difference of prefix sums over keys: no ``[rows, keys]`` product is formed. Exact (integer counts in float64).
    """
    sq, sk = torch.sign(q_int.to(torch.float64)), torch.sign(k_int.to(torch.float64))
    c = valid.shape[0]
    hi = valid.sum(dim=-1) + valid.to(torch.uint8).argmax(dim=-1)  # one past each row's last valid key
    lo = valid.to(torch.uint8).argmax(dim=-1)  # its first valid key
    b, hkv, gc, d = sq.shape

    def prefix(x: torch.Tensor, upto: torch.Tensor) -> torch.Tensor:  # sum of x over keys < upto, per row
        padded = torch.nn.functional.pad(torch.cumsum(x, dim=-2), (0, 0, 1, 0))
        return padded.gather(-2, upto.repeat(gc // c).view(1, 1, gc, 1).expand(b, hkv, gc, d))

    in_abs = prefix(sk.abs(), hi) - prefix(sk.abs(), lo)
    in_sign = prefix(sk, hi) - prefix(sk, lo)
    total = float((sq.abs() * in_abs).sum())
    agree = float((sq * in_sign).sum())
    return total, (total - agree) / 2


@dataclass
class SofaSetup:
    """Per call: this layer's parameters, the integer operands of DLZS and their scales."""

    ratio: float  # keep fraction k
    tc: int  # sub-segments Tc
    radius: float  # sphere radius r
    seg_len: int  # Bc = ceil(Nk / Tc)
    q_int: torch.Tensor  # INT-q_bits queries, grouped [B, Hkv, g*Nq, D]
    q_scale: torch.Tensor  # [B, Hkv, g*Nq, 1]
    keys: KeyOperand  # the linear operand: given K or cross-phase K_hat
    acc_bits: int  # DLZS accumulator width
    trace: Workload  # receives the cross-phase key prediction's work in prepare


def _grouped_rows(x: torch.Tensor, shape, row0: int, row1: int) -> torch.Tensor:
    """Rows ``row0:row1`` of a grouped ``[B, Hkv, g*Nq, X]`` tensor, grouped again ``[B, Hkv, g*c, X]``."""
    g = shape.group_size
    rows = x.view(shape.batch, shape.kv_heads, g, shape.q_len, -1)[:, :, :, row0:row1]
    return rows.reshape(shape.batch, shape.kv_heads, g * (row1 - row0), -1)


@dataclass
class SofaCounts:
    """What SOFA's steps count (summed over the call's tiles): DLZS's non-zero and negative terms, SADS's sorter
    compares, steps and clipping compares (and, with ``diagnostics``, its mismatch with the global top-k), RASS's
    loads, and SU-FA's per-tile counts."""

    dlzs_terms: float = 0.0
    dlzs_negative: float = 0.0
    sads_compares: float = 0.0
    sads_steps: float = 0.0
    sads_clip: float = 0.0
    mismatched: float = 0.0
    selected: float = 0.0
    naive_loads: float = 0.0
    rass_loads: float = 0.0
    unique_keys: float = 0.0
    sufa: list[SufaCounts] = field(default_factory=list)


@dataclass
class SofaSelection:
    """SADS's pick for a tile, as SU-FA consumes it."""

    keep: torch.Tensor
    sads: SadsSelection


class Sofa(Method[SofaSetup, torch.Tensor, SofaSelection, SofaCounts]):
    """SOFA (MICRO'24): DLZS -> SADS -> SU-FA; see the module docstring."""

    counts = SofaCounts

    def block_rows(self, call: AttentionCall) -> int:
        return self.p.tile_rows

    def prepare(self, call: AttentionCall) -> SofaSetup:
        shape, p = call.shape, self.p
        ratio = float(per_layer(p.k, call.layer, "k"))
        tc = int(per_layer(p.Tc, call.layer, "Tc"))
        radius = float(per_layer(p.r, call.layer, "r"))
        if tc > shape.k_len:
            raise InvalidParameterError(f"Tc={tc} sub-segments exceed the {shape.k_len} keys; need 1 <= Tc <= Nk")
        w = Workload(shape=shape, meta={"method": self.name, "params": p.model_dump()})
        keys = given_keys(call, p) if p.keys == "k" else cross_phase_keys(call, p, w)
        qq = quantize_symmetric(call.q, p.q_bits, p.granularity)
        g = shape.group_size
        q_int = qq.values.reshape(shape.batch, shape.kv_heads, g * shape.q_len, shape.head_dim)
        q_scale = qq.scale.expand(shape.batch, shape.heads, shape.q_len, 1).reshape(
            shape.batch, shape.kv_heads, g * shape.q_len, 1)
        acc_bits = accumulator_bits(keys.bits, p.q_bits - 2, shape.head_dim)  # q_bits - 2: largest exponent
        return SofaSetup(ratio, tc, radius, segment_length(shape.k_len, tc), q_int, q_scale, keys, acc_bits, w)

    def predict(self, ctx: SofaSetup, block: RowBlock, tally: Tally[SofaCounts]) -> torch.Tensor:
        """DLZS: ``A_hat = leading_one(Q) K^T`` by shift-and-add, as logits ``A_hat s_q s_k scale``."""
        shape = block.call.shape
        qi = _grouped_rows(ctx.q_int, shape, block.row0, block.row1)
        ki = ctx.keys.values[:, :, : block.width]
        qs = _grouped_rows(ctx.q_scale, shape, block.row0, block.row1)
        k_scale = ctx.keys.scale.expand(shape.batch, shape.kv_heads, shape.k_len, 1).transpose(-1, -2)
        pred = predict_scores(qi, ki) * qs.double() * k_scale[..., : block.width].double() * block.call.scale
        if tally.counting:
            terms, negative = _sign_counts(qi, ki, block.valid)
            tally.add(dlzs_terms=terms, dlzs_negative=negative)
        return pred.view(shape.batch, shape.heads, block.rows, block.width)

    def select(self, ctx: SofaSetup, block: RowBlock, pred: torch.Tensor, tally: Tally[SofaCounts]) -> SofaSelection:
        """SADS per sub-segment (rows at or below ``min_keys`` keys kept whole, shorter rows a raised fraction),
        and RASS's K/V loads for the tile."""
        p, shape = self.p, block.call.shape
        n_valid = block.valid.sum(dim=-1).double()
        row_ratio = torch.where(n_valid <= p.min_keys, torch.ones_like(n_valid),
                                torch.clamp(p.min_keys / n_valid, min=ctx.ratio))
        pick = sads_select(pred, block.valid, row_ratio, ctx.seg_len, ctx.radius)
        tally.add(sads_compares=pick.compares, sads_steps=pick.steps, sads_clip=pick.clip_compares)
        if p.diagnostics:
            mismatched, selected = index_mismatch(pred, block.valid, pick.keep)
            tally.add(mismatched=mismatched, selected=selected)
        if tally.counting:
            requests = pick.keep.view(shape.batch, shape.kv_heads, shape.group_size * block.rows, block.width)
            naive, rass, unique = rass_loads(requests, p.rass_per_phase, ctx.seg_len)
            tally.add(naive_loads=naive, rass_loads=rass, unique_keys=unique)
        return SofaSelection(pick.keep, pick)

    def attend(self, ctx: SofaSetup, block: RowBlock, pred: torch.Tensor, chosen: SofaSelection,
               tally: Tally[SofaCounts]):
        """SU-FA over the tile; its operation counts for the three visiting orders go to the tally."""
        pick = chosen.sads
        out, counts = sufa_attend(block.scores, pick.keep, pred, pick.top1, pick.top2, block.v, ctx.seg_len,
                                  block.call.q.dtype, self.p.diagnostics)
        tally.append("sufa", counts)
        return out

    def count(self, ctx: SofaSetup, call: AttentionCall, keep: torch.Tensor, tally: Tally[SofaCounts]) -> Workload:
        w = ctx.trace
        sufa = SufaCounts()
        for counts in tally.counts.sufa:
            sufa += counts
        self._count_prediction(w, ctx, call, tally)
        self._count_formal(w, keep, sufa)
        w.profile = SparsityProfile.from_keep(keep, call.shape)
        w.put(sufa.record(self.p.formal_bits))
        w.put(SadsSetting(k=[ctx.ratio], tc=[ctx.tc], bc=[ctx.seg_len], r=[ctx.radius]))
        w.put(RassLoads(naive_loads=tally["naive_loads"], rass_loads=tally["rass_loads"],
                        unique_keys=tally["unique_keys"]))
        w.meta.update(self._meta(ctx, call, tally, sufa))
        return w

    def _count_prediction(self, w: Workload, ctx: SofaSetup, call: AttentionCall, tally: Tally[SofaCounts]) -> None:
        p, shape = self.p, call.shape
        w.add("predict", "lzc", p.q_bits, float(call.q.numel()), Per.ROW_DIM)
        w.add("predict", "shift", ctx.keys.bits, tally["dlzs_terms"], Per.PAIR_DIM)
        w.add("predict", "add", ctx.acc_bits, tally["dlzs_terms"], Per.PAIR_DIM)
        # SOFA negates the wide shifted result; STAR's sign pre-flipping (PSP) the narrow operand
        negate_bits = ctx.keys.bits if self.name == "star" else ctx.acc_bits
        w.add("predict", "add", negate_bits, tally["dlzs_negative"], Per.PAIR_DIM)
        w.add("select", "compare", ctx.acc_bits, tally["sads_compares"] + tally["sads_clip"], Per.PAIR)
        if p.keys == "cross_phase":
            hidden = int(w.meta["hidden"])
            macs = 2.0 * tally["unique_keys"] * hidden * shape.head_dim  # K and V for each tile's selected keys
            w.add("kvgen", "mac", p.formal_bits, macs, Per.KEY_DIM)
            w.meta["kvgen_dense_macs"] = 2.0 * shape.batch * shape.kv_heads * shape.k_len * hidden * shape.head_dim

    def _count_formal(self, w: Workload, keep: torch.Tensor, sufa: SufaCounts) -> None:
        """The formal stage in SU-FA's descending order (all three orders are in the SufaCounts record)."""
        bits, d = self.p.formal_bits, w.shape.head_dim
        desc = sufa.orders["descending"]
        w.add("qk", "mac", bits, float(torch.count_nonzero(keep)) * d, Per.PAIR_DIM)
        w.add("softmax", "exp", bits, desc.exp, Per.PAIR)
        w.add("softmax", "add", bits, desc.add, Per.PAIR)
        w.add("softmax", "compare", bits, desc.compare, Per.PAIR)
        w.add("softmax", "mul", bits, desc.mul, Per.ROW_DIM)
        w.add("softmax", "div", bits, desc.div, Per.ROW)
        w.add("pv", "mac", bits, desc.pv_mac, Per.PAIR_DIM)

    def _meta(self, ctx: SofaSetup, call: AttentionCall, tally: Tally[SofaCounts], sufa: SufaCounts) -> dict:
        shape = call.shape
        meta = {
            "layer": call.layer,
            "max_violations": sufa.orders["descending"].violations,
            "sads_steps": tally["sads_steps"],
            "sads_sorter_compares": tally["sads_compares"],
            "sads_clip_compares": tally["sads_clip"],
            "dlzs_terms": tally["dlzs_terms"],
            "dlzs_negative_terms": tally["dlzs_negative"],
            "dlzs_zero_skipped": shape.valid_pairs * shape.head_dim - tally["dlzs_terms"],
            "psp": self.name == "star",
            "rows": float(shape.rows),
        }
        if self.p.diagnostics:
            meta["sads_mismatch"] = {"mismatched": tally["mismatched"], "selected": tally["selected"]}
        return meta


@register("sofa", SofaParams, "SOFA: DLZS shift-add prediction, SADS per-segment top-k, SU-FA (MICRO'24)",
          (Knob("k", 0.01, 1.0, "up", "log", source="the parameter's range (0, 1]"),))
class SofaMethod(Sofa):
    pass


@register("star", SofaParams, "STAR: SOFA's algorithm with sign pre-flipping (PSP) counted in the trace",
          (Knob("k", 0.01, 1.0, "up", "log", source="the parameter's range (0, 1]"),))
class StarMethod(Sofa):
    pass
