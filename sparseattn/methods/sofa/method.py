"""The ``sofa`` and ``star`` methods: DLZS prediction -> SADS selection -> SU-FA attention, per 128-query tile.

Pipeline for each tile of ``tile_rows`` query rows (SOFA processes 128 queries in parallel; rows are
chunked the same way here, and each chunk only reaches the keys its causal rows can see):

1. **DLZS** (:mod:`.dlzs`): Q quantised to ``q_bits`` (INT16) and snapped to leading-one exponents; keys
   either the given K quantised to ``k_bits`` (``keys="k"``) or predicted from the layer input
   (``keys="cross_phase"``: ``K_hat = X W_k`` with X INT8 and W_k stored as sign + exponent, truncated to
   ``khat_bits`` = 16 bits, rotated by the model's RoPE, requantised to 16 bits). ``A_hat = Q K^T`` by
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
``meta`` holds the SU-FA counts of the three visiting orders, the RASS loads and the sign-negation counts.

``star`` is the same algorithm (STAR keeps SOFA's DLZS/SADS/SU-FA); its trace differs only in where the
sign of a negative DLZS term is applied: SOFA negates the wide shifted result (an add at accumulator
width), STAR's pre-flipping by sign prediction (PSP) negates the narrow operand before the shift (an add at
operand width). PSP changes power, not results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field

from ...core.attention import grouped_scores
from ...core.errors import InvalidInputError, InvalidParameterError
from ...core.quant import quantize_symmetric
from ...core.result import SparseResult
from ...core.shape import Shape, chunk_valid_mask
from ...core.side import SideInputs, apply_rope
from ...core.workload import Per, SparsityProfile, Workload
from ..registry import AttentionCall, MethodParams, register
from .dlzs import accumulator_bits, exponent_bits, predict_keys, predict_scores
from .rass import rass_loads
from .sads import SadsSelection, index_mismatch, sads_select, segment_length
from .sufa import ORDERS, SufaCounts, sufa_attend

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

    Row ``i`` of the chunk sees a prefix of the keys (``valid`` is a causal or full mask), so
    ``sum_{j <= lim_i} |sign q_i| . |sign k_j|`` is ``|sign q_i|`` dotted with a prefix sum over keys: no
    ``[rows, keys]`` product is formed. Exact (integer counts in float64).
    """
    sq, sk = torch.sign(q_int.to(torch.float64)), torch.sign(k_int.to(torch.float64))
    c = valid.shape[0]
    lim = valid.sum(dim=-1) - 1  # last valid key of each chunk row (valid rows are prefixes)
    b, hkv, gc, d = sq.shape
    idx = lim.repeat(gc // c).view(1, 1, gc, 1).expand(b, hkv, gc, d)
    prefix_abs = torch.cumsum(sk.abs(), dim=-2).gather(-2, idx)
    prefix_sign = torch.cumsum(sk, dim=-2).gather(-2, idx)
    total = float((sq.abs() * prefix_abs).sum())
    agree = float((sq * prefix_sign).sum())
    return total, (total - agree) / 2


@dataclass
class _Keys:
    """Integer keys the predictor shifts, their scale and width."""

    values: torch.Tensor
    scale: torch.Tensor
    bits: int


def predicted_keys(side: SideInputs, shape: Shape, p: SofaParams, w: Workload | None = None) -> torch.Tensor:
    """Phase 1.1: ``K_hat = X W_k`` by DLZS, truncated to ``khat_bits``, dequantised, biased and rotated
    like the model's keys; float32 ``[B, Hkv, Nk, D]``. Records its work in ``w`` when given."""
    side.key_projection(shape.batch, shape.k_len, shape.kv_heads, shape.head_dim)
    xq = quantize_symmetric(side.x, p.x_bits, "tensor")
    wq = quantize_symmetric(side.w_k, p.w_bits, "tensor")
    khat = predict_keys(xq.values, wq.values)  # [B, Nk, Hkv*D] exact integers
    peak = float(khat.abs().max())
    shift = max(0, math.ceil(math.log2(peak + 1)) - (p.khat_bits - 1)) if peak > 0 else 0
    khat16 = torch.floor(khat / 2**shift)  # arithmetic right shift: keep the most significant bits
    kf = (khat16 * (2**shift) * xq.scale.double() * wq.scale.double()).to(torch.float32)
    if side.b_k is not None:
        kf = kf + side.b_k.to(torch.float32)
    kf = kf.view(shape.batch, shape.k_len, shape.kv_heads, shape.head_dim).transpose(1, 2)
    if side.rope_cos is not None:
        kf = apply_rope(kf, side.rope_cos.to(torch.float32), side.rope_sin.to(torch.float32))
    if w is not None:
        if side.rope_cos is not None:
            n_el = float(kf.numel())
            w.add("other", "mul", p.formal_bits, 2 * n_el, Per.KEY_DIM)
            w.add("other", "add", p.formal_bits, n_el, Per.KEY_DIM)
        # one shift-add per non-zero (x, w) term, for every key token
        terms = float(torch.matmul((xq.values != 0).float(), (wq.values != 0).float().T).sum())
        max_e = int(torch.log2(wq.values.abs().max().double().clamp(min=1)).floor())
        hidden = side.x.shape[-1]
        w.add("predict", "shift", p.x_bits, terms, Per.KEY_DIM)
        w.add("predict", "add", accumulator_bits(p.x_bits, max_e, hidden), terms, Per.KEY_DIM)
        w.meta.update({"khat_shift": shift, "w_k_exponent_bits": exponent_bits(p.w_bits), "hidden": hidden})
    return kf


def _cross_phase_keys(call: AttentionCall, p: SofaParams, w: Workload) -> _Keys:
    if call.side is None:
        raise InvalidInputError("keys='cross_phase' needs side inputs (x, w_k); the HF patch provides them")
    kq = quantize_symmetric(predicted_keys(call.side, call.shape, p, w), p.khat_bits, p.granularity)
    return _Keys(kq.values, kq.scale, p.khat_bits)


def _sofa(call: AttentionCall, p: SofaParams, method: str) -> SparseResult:
    shape, device = call.shape, call.q.device
    ratio = float(per_layer(p.k, call.layer, "k"))
    tc = int(per_layer(p.Tc, call.layer, "Tc"))
    radius = float(per_layer(p.r, call.layer, "r"))
    if tc > shape.k_len:
        raise InvalidParameterError(f"Tc={tc} sub-segments exceed the {shape.k_len} keys; need 1 <= Tc <= Nk")
    seg_len = segment_length(shape.k_len, tc)
    w = Workload(shape=shape, meta={"method": method, "params": p.model_dump()})

    qq = quantize_symmetric(call.q, p.q_bits, p.granularity)
    if p.keys == "k":
        kq = quantize_symmetric(call.k, p.k_bits, p.granularity)
        keys = _Keys(kq.values, kq.scale, p.k_bits)
    else:
        keys = _cross_phase_keys(call, p, w)
    # predicted logit = A_hat * s_q * s_k * scale; scales broadcast per tensor / head / token
    g = shape.group_size
    q_int = qq.values.reshape(shape.batch, shape.kv_heads, g * shape.q_len, shape.head_dim)
    q_scale = qq.scale.expand(shape.batch, shape.heads, shape.q_len, 1).reshape(
        shape.batch, shape.kv_heads, g * shape.q_len, 1
    )
    k_scale_t = keys.scale.expand(shape.batch, shape.kv_heads, shape.k_len, 1).transpose(-1, -2)
    max_shift = p.q_bits - 2  # largest exponent of a q_bits magnitude
    acc_bits = accumulator_bits(keys.bits, max_shift, shape.head_dim)

    offset = shape.k_len - shape.q_len if shape.causal else 0
    out = torch.empty_like(call.q)
    keep = torch.zeros(shape.batch, shape.heads, shape.q_len, shape.k_len, dtype=torch.bool, device=device)
    sufa = SufaCounts()
    sel = {"compares": 0.0, "steps": 0.0, "clip": 0.0}
    terms = negative = 0.0
    loads = [0, 0, 0]
    kvgen_keys = 0
    mismatch = [0.0, 0.0]
    for a in range(0, shape.q_len, p.tile_rows):
        b = min(a + p.tile_rows, shape.q_len)
        c = b - a
        width = offset + b if shape.causal else shape.k_len
        valid = chunk_valid_mask(a, b, width, shape, device)
        qi = q_int.view(shape.batch, shape.kv_heads, g, shape.q_len, -1)[:, :, :, a:b]
        qi = qi.reshape(shape.batch, shape.kv_heads, g * c, -1)
        ki = keys.values[:, :, :width]
        a_hat = predict_scores(qi, ki)  # [B, Hkv, g*c, W] exact integers
        qs = q_scale.view(shape.batch, shape.kv_heads, g, shape.q_len, 1)[:, :, :, a:b].reshape(
            shape.batch, shape.kv_heads, g * c, 1
        )
        pred = (a_hat * qs.double() * k_scale_t[..., :width].double() * call.scale).view(
            shape.batch, shape.heads, c, width
        )
        t_all, t_neg = _sign_counts(qi, ki, valid)
        terms += t_all
        negative += t_neg

        rows_valid = valid.sum(dim=-1).double()
        row_ratio = torch.where(
            rows_valid <= p.min_keys, torch.ones_like(rows_valid), torch.clamp(p.min_keys / rows_valid, min=ratio)
        )
        pick: SadsSelection = sads_select(pred, valid, row_ratio, seg_len, radius)
        sel["compares"] += pick.compares
        sel["steps"] += pick.steps
        sel["clip"] += pick.clip_compares
        if p.diagnostics:
            m, n = index_mismatch(pred, valid, pick.keep)
            mismatch[0] += m
            mismatch[1] += n

        scores = grouped_scores(call.q[:, :, a:b], call.k[:, :, :width], call.scale)
        out[:, :, a:b], counts = sufa_attend(
            scores, pick.keep, pred, pick.top1, pick.top2, call.v[:, :, :width], seg_len, call.q.dtype, p.diagnostics
        )
        sufa += counts
        keep[:, :, a:b, :width] = pick.keep
        requests = pick.keep.view(shape.batch, shape.kv_heads, g * c, width)
        naive, rass, unique = rass_loads(requests, p.rass_per_phase, seg_len)
        loads[0] += naive
        loads[1] += rass
        loads[2] += unique
        kvgen_keys += unique

    rows = float(shape.rows)
    w.add("predict", "lzc", p.q_bits, float(call.q.numel()), Per.ROW_DIM)
    w.add("predict", "shift", keys.bits, terms, Per.PAIR_DIM)
    w.add("predict", "add", acc_bits, terms, Per.PAIR_DIM)
    negate_bits = keys.bits if method == "star" else acc_bits
    w.add("predict", "add", negate_bits, negative, Per.PAIR_DIM)
    w.add("select", "compare", acc_bits, sel["compares"] + sel["clip"], Per.PAIR)
    if p.keys == "cross_phase":
        hidden = int(w.meta["hidden"])
        macs = 2.0 * kvgen_keys * hidden * shape.head_dim  # K and V for each tile's selected keys
        w.add("kvgen", "mac", p.formal_bits, macs, Per.KEY_DIM)
        w.meta["kvgen_dense_macs"] = 2.0 * shape.batch * shape.kv_heads * shape.k_len * hidden * shape.head_dim
    desc = sufa.orders["descending"]
    kept = float(torch.count_nonzero(keep))
    d = shape.head_dim
    w.add("qk", "mac", p.formal_bits, kept * d, Per.PAIR_DIM)
    w.add("softmax", "exp", p.formal_bits, desc.exp, Per.PAIR)
    w.add("softmax", "add", p.formal_bits, desc.add, Per.PAIR)
    w.add("softmax", "compare", p.formal_bits, desc.compare, Per.PAIR)
    w.add("softmax", "mul", p.formal_bits, desc.mul, Per.ROW_DIM)
    w.add("softmax", "div", p.formal_bits, desc.div, Per.ROW)
    w.add("pv", "mac", p.formal_bits, desc.pv_mac, Per.PAIR_DIM)
    w.profile = SparsityProfile.from_keep(keep, shape)
    w.meta.update(
        {
            "layer": call.layer,
            "k": ratio,
            "Tc": tc,
            "Bc": seg_len,
            "r": radius,
            "sufa": {o: sufa.orders[o].to_dict() for o in ORDERS},
            "max_violations": desc.violations,
            "sads_steps": sel["steps"],
            "sads_sorter_compares": sel["compares"],
            "sads_clip_compares": sel["clip"],
            "rass": {"naive_loads": loads[0], "rass_loads": loads[1], "unique_keys": loads[2]},
            "dlzs_terms": terms,
            "dlzs_negative_terms": negative,
            "dlzs_zero_skipped": shape.valid_pairs * shape.head_dim - terms,
            "psp": method == "star",
            "rows": rows,
        }
    )
    if p.diagnostics:
        w.meta["sads_mismatch"] = {"mismatched": mismatch[0], "selected": mismatch[1]}
    return SparseResult(out=out, keep=keep, trace=w)


@register("sofa", SofaParams, "SOFA: DLZS shift-add prediction, SADS per-segment top-k, SU-FA (MICRO'24)")
def sofa(call: AttentionCall, p: SofaParams) -> SparseResult:
    return _sofa(call, p, "sofa")


@register("star", SofaParams, "STAR: SOFA's algorithm with sign pre-flipping (PSP) counted in the trace")
def star(call: AttentionCall, p: SofaParams) -> SparseResult:
    return _sofa(call, p, "star")
