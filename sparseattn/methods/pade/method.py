"""The ``pade`` method: predictor-free bit-serial sparse attention (PADE, HPCA'26).

Per query row, keys are visited tile by tile in the ISTA order and, inside a tile, bit plane by bit plane
(BSF). After each round the exact partial score and the per-query BUI offsets bound every key's final
score; the row's guard threshold ``T = max(lower bounds so far) - alpha * radius`` (logit units: integer
scores times ``s_q s_k scale``) only rises; a key whose upper bound is ``<= T`` is pruned and fetches no more
planes (BUI-GF). Survivors enter a softmax over their exact INT8 logits and multiply INT8 V.

**Vectorised exactly.** A tile's threshold at round ``r`` is ``max(T entering the tile, max over the tile's
keys of their round-r lower bound - alpha*radius)``: a key already pruned in this tile cannot raise it (its
bound is below the threshold that pruned it), and the threshold entering a tile is ``(max exact score of the
tiles visited before) - alpha*radius`` (the best key so far is never pruned, and its bound is its exact score
after the last round). So all keys of all tiles are evaluated round by round with no loop over tiles or
tokens, and the pruning decisions are those of the sequential algorithm.

Defaults where the paper is silent (``shared/research/pade.md`` §10): quantisation per tensor (``head`` also
allowed; per-token K scales would make the BUI offsets key-dependent, so they are refused); ISTA tiles of
64 keys, head-tail order with 1 head and 2 tail tiles; rows are processed in chunks of whole tiles (the
tile order follows the chunk's last row); ``final_mask`` off -- on, survivors are cut to
``logit > rowmax - alpha*radius``, the oracle set; ``alpha`` must be > 0 (at 0 the threshold equals the row
maximum and the paper's ``<=`` rule would prune the maximum itself).

Cost model and trace: planes fetched per (row, key), AND-tree additions with bidirectional sparsity in
8-element sub-groups, scoreboard accumulations, bound checks and threshold updates; softmax and PV on
survivors with the online-softmax rescales of the ISTA order; K plane traffic with GQA heads and the 8
parallel query rows sharing each fetched plane; V reads with and without reuse across those 8 rows (what
PADE's reorder scheduler exploits); PE-lane utilisation for in-order vs out-of-order issue (:mod:`.ooe`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from ...core.attention import attend_kept
from ...core.errors import InvalidParameterError
from ...core.quant import quantize_symmetric
from ...core.result import SparseResult
from ...core.workload import Per, SparsityProfile, Workload
from ..registry import AttentionCall, MethodParams, register
from .bui import active_elements, bui_offsets, truncated_keys
from .ista import tile_order
from .ooe import lane_utilisation


class PadeParams(MethodParams):
    alpha: float = Field(0.5, gt=0, le=1, description="guard margin as a fraction of radius (paper: 0.5-0.6)")
    radius: float = Field(5.0, gt=0, description="guard radius in logit units (paper default 5)")
    bits: int = Field(8, ge=2, le=16, description="integer width of Q, K, V; K is processed in this many planes")
    granularity: Literal["tensor", "head"] = Field("tensor", description="quantisation scale groups")
    final_mask: bool = Field(False, description="cut survivors to logit > rowmax - alpha*radius at the end")
    tile: int = Field(64, ge=1, description="ISTA key tile size")
    order: Literal["head_tail", "plain"] = Field("head_tail", description="ISTA tile visiting order")
    head_tiles: int = Field(1, ge=0, description="sink tiles visited first (head_tail order)")
    tail_tiles: int = Field(2, ge=0, description="most recent tiles visited next (head_tail order)")
    parallel_queries: int = Field(8, ge=1, description="query rows sharing K plane and V fetches")
    group: int = Field(8, ge=1, description="bidirectional-sparsity sub-group size (elements)")
    lanes_per_row: int = Field(16, ge=1, description="PE lanes per query row (128 lanes / 8 rows)")
    scoreboard: int = Field(32, ge=1, description="in-flight keys per lane (out-of-order issue)")
    plane_latency: float = Field(24.0, ge=0, description="cycles between a key's plane requests (DRAM)")


def _shared_rows(x: torch.Tensor, g: int, rows_per_group: int) -> torch.Tensor:
    """Max over the GQA heads of a KV head and over groups of ``rows_per_group`` query rows:
    ``[B, H, c, W]`` -> ``[B, Hkv, ceil(c/rows), W]``."""
    b, h, c, w = x.shape
    pad = (-c) % rows_per_group
    y = torch.nn.functional.pad(x, (0, 0, 0, pad)).view(b, h // g, g, (c + pad) // rows_per_group, rows_per_group, w)
    return y.amax(dim=(2, 4))


def _plane_cycles(active: torch.Tensor, group: int) -> torch.Tensor:
    """Cycles per plane ``[..., keys, bits]`` from active elements per sub-group ``[..., keys, G, bits]``: a GSAT
    pass takes 8 sub-groups of up to ``group/2`` active elements, so a 64-element slice costs the max over its
    sub-groups of ``ceil(active / (group/2))`` cycles."""
    per_slice = max(1, 64 // group)
    c = torch.ceil(active.double() / max(1, group // 2))
    c = torch.nn.functional.pad(c, (0, 0, 0, (-c.shape[-2]) % per_slice)).unflatten(-2, (-1, per_slice))
    return c.amax(dim=-2).sum(dim=-2)


def _pade(call: AttentionCall, p: PadeParams) -> SparseResult:
    shape, dev = call.shape, call.q.device
    bits, d, g, tile = p.bits, shape.head_dim, shape.group_size, p.tile
    if d % p.group:
        raise InvalidParameterError(f"head_dim {d} must be a multiple of group={p.group}")
    qq = quantize_symmetric(call.q, bits, p.granularity)
    kq = quantize_symmetric(call.k, bits, p.granularity)
    vq = quantize_symmetric(call.v, bits, p.granularity)
    v_deq = vq.dequantize().to(torch.float32)
    dt = torch.float32 if bits <= 8 else torch.float64  # integer dot products stay exact
    nk_pad = math.ceil(shape.k_len / tile) * tile  # zero keys pad the last tile; they are never valid
    k_pad = torch.nn.functional.pad(kq.values, (0, 0, 0, nk_pad - shape.k_len))
    k_rounds = [truncated_keys(k_pad, bits, r).to(dt) for r in range(1, bits)] + [k_pad.to(dt)]
    imin, imax = (x.to(dt) for x in bui_offsets(qq.values, bits))  # [B, H, Nq, bits]
    k_scale = kq.scale.double().expand(shape.batch, shape.kv_heads, 1, 1).repeat_interleave(g, dim=1)
    factor = (qq.scale.double() * k_scale * call.scale).expand(shape.batch, shape.heads, shape.q_len, 1)
    margin = (p.alpha * p.radius / factor).to(dt)  # alpha*radius in integer-score units
    act = active_elements(k_pad, bits, p.group, bidirectional=True)  # [B, Hkv, Nk', G, bits]
    elements = act.sum(dim=-2).double()  # AND-tree additions per (key, plane)
    cycles_nobs = _plane_cycles(active_elements(k_pad, bits, p.group, bidirectional=False), p.group)

    offset = shape.k_len - shape.q_len if shape.causal else 0
    chunk = tile * max(1, 128 // tile)
    out = torch.empty_like(call.q)
    keep = torch.zeros(shape.batch, shape.heads, shape.q_len, shape.k_len, dtype=torch.bool, device=dev)
    tot = dict.fromkeys(
        ("elements", "k_planes", "k_planes_dense", "v_reads", "v_reads_dense", "rescales", "threshold_rises"), 0.0
    )
    util = {"in_order": [0.0, 0.0], "out_of_order": [0.0, 0.0], "out_of_order_no_bs": [0.0, 0.0]}
    at_least = [0.0] * bits
    monotone = True
    for a in range(0, shape.q_len, chunk):
        b = min(a + chunk, shape.q_len)
        c = b - a
        reach = offset + b if shape.causal else shape.k_len  # keys the chunk's last row sees
        nt = math.ceil(reach / tile)
        width = nt * tile
        full = min(offset + a + 1, reach) if shape.causal else reach  # keys every row of the chunk sees
        edge = (full // tile) * tile  # tiles from here on hold invalid (future or padding) keys for some rows
        cols = torch.arange(edge, width, device=dev)
        rows = torch.arange(a, b, device=dev)[:, None] + offset
        edge_valid = (cols[None, :] < shape.k_len).expand(c, -1)  # [c, width - edge]: padding is never valid
        if shape.causal:
            edge_valid = edge_valid & (cols[None, :] <= rows)
        qi = qq.values.to(dt).view(shape.batch, shape.kv_heads, g, shape.q_len, d)[:, :, :, a:b]
        qi = qi.reshape(shape.batch, shape.kv_heads, g * c, d)
        mgn, fac = margin[:, :, a:b], factor[:, :, a:b].to(torch.float32)
        neg = torch.finfo(dt).min

        def score(kr: torch.Tensor, qi=qi, width=width, c=c) -> torch.Tensor:
            return torch.matmul(qi, kr[:, :, :width].transpose(-1, -2)).view(shape.batch, shape.heads, c, width)

        def tile_max(s: torch.Tensor, edge=edge, edge_valid=edge_valid, nt=nt, neg=neg) -> torch.Tensor:
            """Max over each tile's valid keys (only the edge tiles need masking)."""
            m = s.view(*s.shape[:-1], nt, tile).amax(dim=-1)
            tail = s[..., edge:].masked_fill(~edge_valid, neg)
            m[..., edge // tile :] = tail.view(*s.shape[:-1], -1, tile).amax(dim=-1)
            return m

        exact = score(k_rounds[-1])
        order = torch.tensor(tile_order(nt, p.order, p.head_tiles, p.tail_tiles), device=dev)
        exact_tiles = tile_max(exact)  # [B, H, c, nt]
        seen = torch.cummax(exact_tiles[..., order], dim=-1).values
        enter = torch.full_like(exact_tiles, neg)
        enter[..., order[1:]] = seen[..., :-1]
        t_enter = torch.where(enter > neg, enter - mgn, enter)  # threshold entering each tile

        planes = torch.zeros(shape.batch, shape.heads, c, width, dtype=torch.int8, device=dev)
        nobs = 0.0  # per (row, lane) cycles without bidirectional sparsity, for the sampled rows
        prev_thr = None
        alive = None
        for r in range(1, bits + 1):
            # keys executing plane r: all valid keys at r = 1, else those alive after round r - 1
            running = alive
            s_r = exact if r == bits else score(k_rounds[r - 1])
            thr = torch.maximum(t_enter, tile_max(s_r) + imin[:, :, a:b, r - 1 : r] - mgn)
            if prev_thr is not None:
                monotone &= bool((thr >= prev_thr).all())
            prev_thr = thr
            # keep iff upper bound S^r + I^{r,max} > T; monotone in r, so no running AND is needed
            alive = s_r.view(*s_r.shape[:-1], nt, tile) > (thr - imax[:, :, a:b, r - 1 : r]).unsqueeze(-1)
            alive = alive.view(s_r.shape)
            alive[..., edge:] &= edge_valid
            if running is None:  # round 1: every valid key fetched its first plane
                running = torch.ones_like(alive)
                running[..., edge:] = edge_valid
            planes += running.view(torch.int8)
            counts = running.view(shape.batch, shape.kv_heads, g * c, width).sum(dim=2, dtype=torch.int32)
            tot["elements"] += float((counts.double() * elements[:, :, :width, r - 1]).sum())
            at_least[r - 1] += float(counts.sum())  # (row, key) pairs that fetched at least r planes
            nobs = nobs + _lane_sum(
                running[:, :, : p.parallel_queries], cycles_nobs[:, :, :width, r - 1], g, p.lanes_per_row
            )
        survivors = alive
        if p.final_mask:
            rowmax = exact_tiles.amax(dim=-1, keepdim=True)
            survivors = survivors & (exact > rowmax - mgn)
        logits = (exact[..., :reach] * fac).to(torch.float32)
        out[:, :, a:b] = attend_kept(logits, survivors[..., :reach], v_deq[:, :, :reach], call.q.dtype)
        keep[:, :, a:b, :reach] = survivors[..., :reach]

        # ---- cost model of the chunk
        # dense INT8 reads every valid key once per group of parallel rows: the group's last row sees the most
        groups = torch.arange(0, c, p.parallel_queries, device=dev)
        last = torch.clamp(groups + p.parallel_queries, max=c) - 1 + a
        seen_keys = (last + offset + 1).clamp(max=shape.k_len) if shape.causal else torch.full_like(last, shape.k_len)
        dense_reads = float(seen_keys.sum()) * shape.batch * shape.kv_heads
        tot["k_planes"] += float(_shared_rows(planes, g, p.parallel_queries).sum(dtype=torch.float64))
        tot["k_planes_dense"] += bits * dense_reads
        tot["v_reads_dense"] += dense_reads
        tot["v_reads"] += float(_shared_rows(survivors.view(torch.int8), g, p.parallel_queries).sum())
        run = torch.cummax(tile_max(exact.masked_fill(~survivors, neg))[..., order], dim=-1).values
        tot["rescales"] += float(((run[..., 1:] > run[..., :-1]) & (run[..., :-1] > neg)).sum())
        tot["threshold_rises"] += float(((seen[..., 1:] > seen[..., :-1]) & (seen[..., :-1] > neg)).sum())
        # PE lanes: with bidirectional sparsity every plane of a 64-element slice takes one cycle
        sample = planes[:, :, : p.parallel_queries].to(torch.float64)
        work_bs = sample * (d / 64)
        for name, work, sb in (("in_order", work_bs, 1), ("out_of_order", work_bs, p.scoreboard)):
            u = lane_utilisation(work, sample, p.plane_latency, sb, p.lanes_per_row)
            util[name][0] += u * float(work.sum())
            util[name][1] += float(work.sum())
        u = _lane_utilisation_from_sums(nobs, sample, p.plane_latency, p.scoreboard, p.lanes_per_row)
        util["out_of_order_no_bs"][0] += u * float(nobs.sum())
        util["out_of_order_no_bs"][1] += float(nobs.sum())

    tot["histogram"] = [at_least[i] - (at_least[i + 1] if i + 1 < bits else 0.0) for i in range(bits)]
    return SparseResult(out=out, keep=keep, trace=_trace(shape, p, keep, tot, util, monotone))


def _lane_sum(running: torch.Tensor, cycles: torch.Tensor, g: int, lanes: int) -> torch.Tensor:
    """Cycles per (row, lane) of one round for the sampled rows: keys dealt to lanes round-robin."""
    w = running.shape[-1]
    per_key = running.to(torch.float64) * cycles.repeat_interleave(g, dim=1)[:, :, None, :]
    pad = (-w) % lanes
    return torch.nn.functional.pad(per_key, (0, pad)).unflatten(-1, (-1, lanes)).sum(dim=-2)


def _lane_utilisation_from_sums(work: torch.Tensor, planes: torch.Tensor, latency: float, sb: int, lanes: int) -> float:
    pad = (-planes.shape[-1]) % lanes
    p = torch.nn.functional.pad(planes, (0, pad)).unflatten(-1, (-1, lanes)).sum(dim=-2)
    lane_time = torch.maximum(work, (work + p * latency) / sb)
    total = float(lane_time.amax(dim=-1).sum()) * lanes
    return float(work.sum()) / total if total else 1.0


def _trace(shape, p: PadeParams, keep, tot, util, monotone) -> Workload:
    d, bits = shape.head_dim, p.bits
    acc = 2 * bits + math.ceil(math.log2(d))  # scoreboard partial-sum width
    valid = float(shape.valid_pairs)
    hist = [int(x) for x in tot["histogram"]]  # (row, key) pairs that fetched 1 .. bits planes
    plane_rounds = float(sum((i + 1) * n for i, n in enumerate(hist)))
    survivors = float(torch.count_nonzero(keep))
    rows = float(shape.rows)
    w = Workload(shape=shape, meta={"method": "pade", "params": p.model_dump()})
    w.add("qk", "add", bits, tot["elements"], Per.PAIR_DIM)  # AND-tree additions of active query elements
    w.add("qk", "add", bits + math.ceil(math.log2(p.group)), plane_rounds * (d // p.group), Per.PAIR_DIM)
    w.add("qk", "shift", acc, plane_rounds, Per.PAIR)  # weight the plane's sum by its bit position
    w.add("qk", "add", acc, plane_rounds, Per.PAIR)  # accumulate into the scoreboard
    w.add("select", "add", acc, 2 * plane_rounds, Per.PAIR)  # lower and upper bound (LUT offsets)
    w.add("select", "compare", acc, 2 * plane_rounds, Per.PAIR)  # decision + threshold update
    w.add("select", "add", 16, rows * (2 * d + 2 * bits), Per.ROW_DIM)  # BUI LUT: P, N and 8 entries each
    rescales = tot["rescales"]
    w.add("softmax", "compare", 16, survivors, Per.PAIR)
    w.add("softmax", "exp", 16, survivors + rescales, Per.PAIR)
    w.add("softmax", "add", 16, 2 * survivors, Per.PAIR)
    w.add("softmax", "mul", 16, rescales * (1 + d) + rows * d, Per.ROW_DIM)
    w.add("softmax", "div", 16, rows, Per.ROW)
    w.add("pv", "mac", 16, survivors * d, Per.PAIR_DIM)
    w.profile = SparsityProfile.from_keep(keep, shape)
    k_bytes = tot["k_planes"] * d / 8
    v_bytes = tot["v_reads"] * d * bits / 8
    w.add_read("k_bit_planes", k_bytes, Per.PAIR_DIM)  # planes are fetched per (row group, key)
    w.add_read("v_survivors", v_bytes, Per.PAIR_DIM)  # V rows of survivors
    dense_k = tot["k_planes_dense"] * d / 8
    dense_v = tot["v_reads_dense"] * d * bits / 8
    w.meta.update(
        {
            "planes_histogram": hist,  # (row, key) pairs that fetched 1 .. bits planes
            "avg_planes_per_key": plane_rounds / valid,
            "k_bits_read": tot["k_planes"] * d,
            "k_bits_dense_int8": tot["k_planes_dense"] * d,
            "k_read_fraction": tot["k_planes"] / tot["k_planes_dense"],
            "v_reads": tot["v_reads"],
            "v_reads_without_reuse": survivors,
            "v_reads_dense": tot["v_reads_dense"],
            "memory_fraction": (k_bytes + v_bytes) / (dense_k + dense_v),
            "qk_work_fraction": plane_rounds / (bits * valid),
            "pv_work_fraction": survivors / valid,
            "computation_fraction": (plane_rounds / bits + survivors) / (2 * valid),
            "survivors": survivors,
            "rescales": rescales,
            "threshold_rises": tot["threshold_rises"],
            "threshold_monotone": monotone,
            "and_tree_elements": tot["elements"],
            "pe_utilisation_sample": f"first {p.parallel_queries} query rows of every chunk",
            "pe_utilisation": {k: (u[0] / u[1] if u[1] else 1.0) for k, u in util.items()},
            "k_note": "K is read as bit planes: use extra_reads['k_bit_planes'] instead of dense K traffic",
        }
    )
    return w


@register("pade", PadeParams, "PADE: predictor-free bit-serial keys, BUI guard filtering, ISTA (HPCA'26)")
def pade(call: AttentionCall, p: PadeParams) -> SparseResult:
    return _pade(call, p)
