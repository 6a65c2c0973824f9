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

Defaults where the paper is silent: quantisation per tensor (``head`` also
allowed; per-token K scales would make the BUI offsets key-dependent, so they are refused); ISTA tiles of
64 keys, head-tail order with 1 head and 2 tail tiles; rows are processed in chunks of whole tiles (the
tile order follows the chunk's last row); ``final_mask`` off -- on, survivors are cut to
``logit > rowmax - alpha*radius``, the oracle set; ``alpha`` must be > 0 (at 0 the threshold equals the row
maximum and the paper's ``<=`` rule would prune the maximum itself).

Steps (:mod:`sparseattn.core.driver`). PADE has no separate predictor: bit-serial stage fusion (BSF) makes the
predictor's work the first planes of the formal Q.K. ``predict`` sets up a block's bit-serial speculation (exact
INT8 scores, ISTA tile order, the threshold entering each tile); ``select`` runs the rounds of BUI guard
filtering; ``attend`` is the softmax over the survivors' exact INT8 logits times INT8 V; ``count`` writes the trace.

Trace (work counted, never timed -- hardware turns it into cycles): planes fetched per (row, key), AND-tree
additions with bidirectional sparsity in 8-element sub-groups, scoreboard accumulations, bound checks and
threshold updates; softmax and PV on survivors with the online-softmax rescales of the ISTA order; K plane
traffic with GQA heads and the 8 parallel query rows sharing each fetched plane; V reads with and without reuse
across those 8 rows (what PADE's reorder scheduler exploits). For the PE-lane timing model of BS-OOE
(:mod:`sparseattn.hw.bitserial`), the trace carries a sample of rows (``lane_sample_rows`` per block and head,
batch 0): ``samples["bitserial_planes"]`` (planes each sampled row fetched per key) and
``samples["bitserial_busiest_nobs"]`` (``[rows, keys x group]``: over those planes, the 64-element slices whose
busiest sub-group has ``m = 1 .. group`` active elements without bidirectional sparsity). The method counts; the
lane cycles those counts cost are ``hw``'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from ...core.attention import attend_kept
from ...core.bits import PLANE_SLICE
from ...core.call import AttentionCall
from ...core.driver import Method, RowBlock, Tally
from ...core.errors import InvalidInputError, InvalidParameterError
from ...core.quant import quantize_symmetric
from ...core.records import BitplaneReads
from ...core.workload import Per, SparsityProfile, Workload
from ..registry import Knob, MethodParams, register
from .bui import active_elements, bui_offsets, truncated_keys
from .ista import tile_order


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
    formal: Literal["integer", "exact"] = Field(
        "integer", description="survivors' attention on the INT-bits logits and V (paper), or exact (differentiable)")
    formal_bits: int = Field(16, ge=4, le=32, description="width of the softmax and P.V arithmetic")
    lut_bits: int = Field(16, ge=4, le=32, description="width of the BUI generator's LUT arithmetic")
    lane_sample_rows: int = Field(1, ge=0, description="rows per block and head sampled for the lane timing model")


def _shared_rows(x: torch.Tensor, g: int, rows_per_group: int) -> torch.Tensor:
    """Max over the GQA heads of a KV head and over groups of ``rows_per_group`` query rows:
    ``[B, H, c, W]`` -> ``[B, Hkv, ceil(c/rows), W]``."""
    b, h, c, w = x.shape
    pad = (-c) % rows_per_group
    y = torch.nn.functional.pad(x, (0, 0, 0, pad)).view(b, h // g, g, (c + pad) // rows_per_group, rows_per_group, w)
    return y.amax(dim=(2, 4))


def _busiest_subgroups(active: torch.Tensor, group: int) -> torch.Tensor:
    """Per (key, plane), how many ``PLANE_SLICE``-element slices have their busiest ``group``-element sub-group at
    ``m`` active elements, ``m = 1 .. group``: ``[..., keys, G, bits]`` -> float64 ``[..., keys, bits, group]``.
    Counts, not cycles: :func:`sparseattn.hw.bitserial.work_without_bs` turns them into lane cycles."""
    per_slice = max(1, PLANE_SLICE // group)
    a = torch.nn.functional.pad(active, (0, 0, 0, (-active.shape[-2]) % per_slice))
    busiest = a.unflatten(-2, (-1, per_slice)).amax(dim=-2)  # [..., keys, slices, bits]
    return torch.stack([(busiest == m).sum(dim=-2) for m in range(1, group + 1)], dim=-1).double()


@dataclass
class PadeSetup:
    """Per call: integer operands, their rounds, the per-query BUI LUT and the guard margin."""

    q_int: torch.Tensor  # [B, H, Nq, D] INT-bits queries (compute dtype)
    k_rounds: list[torch.Tensor]  # k^(r) for r = 1..bits, zero-padded to whole tiles [B, Hkv, Nk', D]
    v: torch.Tensor  # dequantised INT-bits values, float32
    imin: torch.Tensor  # BUI LUT [B, H, Nq, bits]
    imax: torch.Tensor
    factor: torch.Tensor  # integer score -> logit, [B, H, Nq, 1] float64
    margin: torch.Tensor  # alpha*radius in integer-score units, [B, H, Nq, 1]
    elements: torch.Tensor  # AND-tree additions per (key, plane) with bidirectional sparsity [B, Hkv, Nk', bits]
    busiest_nobs: torch.Tensor  # slices per (key, plane) by busiest sub-group without bidirectional sparsity
    #                             [B, Hkv, Nk', bits, group] (see _busiest_subgroups)


@dataclass
class Speculation:
    """A block's bit-serial setup (ISTA geometry, exact scores, entering thresholds)."""

    tiles: int  # key tiles the block visits
    width: int  # keys covered by the block's tiles (tiles x tile)
    reach: int  # keys the block's last row sees
    edge: int  # tiles from here on hold keys invalid for some row
    edge_valid: torch.Tensor  # [rows, width - edge]
    score: Callable[[torch.Tensor], torch.Tensor]  # integer scores of the block against k^(r)
    exact: torch.Tensor  # exact integer scores [B, H, rows, width]
    order: torch.Tensor  # ISTA tile visiting order
    seen: torch.Tensor  # running max of exact tile maxima in visiting order [B, H, rows, nt]
    t_enter: torch.Tensor  # threshold entering each tile [B, H, rows, nt]
    neg: float

    def tile_max(self, s: torch.Tensor, tile: int) -> torch.Tensor:
        """Max over each tile's valid keys (only the edge tiles need masking)."""
        m = s.view(*s.shape[:-1], self.tiles, tile).amax(dim=-1)
        tail = s[..., self.edge :].masked_fill(~self.edge_valid, self.neg)
        m[..., self.edge // tile :] = tail.view(*s.shape[:-1], -1, tile).amax(dim=-1)
        return m


@dataclass
class Survivors:
    """BUI-GF's outcome for a block."""

    keep: torch.Tensor  # [B, H, rows, reach] survivors
    padded: torch.Tensor  # [B, H, rows, width] survivors (before cutting to reach)
    planes: torch.Tensor  # int8 [B, H, rows, width] planes fetched per (row, key)


@dataclass
class PadeCounts:
    """What PADE's steps count (summed over the call's blocks): AND-tree elements, K planes fetched and the dense
    reads they replace, surviving V rows read, online-softmax rescales, threshold rises and decreases; per block,
    the (row, key) pairs fetching at least 1 .. bits planes and the sampled lanes' planes."""

    elements: float = 0.0
    k_planes: float = 0.0
    dense_reads: float = 0.0
    v_reads: float = 0.0
    rescales: float = 0.0
    threshold_rises: float = 0.0
    threshold_decreases: float = 0.0
    at_least: list[list[float]] = field(default_factory=list)
    bitserial_planes: list[np.ndarray] = field(default_factory=list)
    bitserial_busiest_nobs: list[np.ndarray] = field(default_factory=list)


@register("pade", PadeParams, "PADE: predictor-free bit-serial keys, BUI guard filtering, ISTA (HPCA'26)",
          (Knob("radius", 1.0, 64.0, "up", "log", source="logit units; the paper's default 5 mid-range in decades"),
           Knob("alpha", 0.05, 1.0, "up", "linear", grid=(0.5, 0.6), source="the paper's stated range 0.5-0.6")))
class Pade(Method[PadeSetup, Speculation, Survivors, PadeCounts]):
    counts = PadeCounts

    def block_rows(self, call: AttentionCall) -> int:
        """Rows are processed in chunks of whole tiles (about 128 rows)."""
        return self.p.tile * max(1, 128 // self.p.tile)

    def prepare(self, call: AttentionCall) -> PadeSetup:
        shape, p = call.shape, self.p
        if shape.head_dim % p.group:
            raise InvalidParameterError(f"head_dim {shape.head_dim} must be a multiple of group={p.group}")
        qq, kq, vq = (quantize_symmetric(x, p.bits, p.granularity) for x in (call.q, call.k, call.v))
        dt = torch.float32 if p.bits <= 8 else torch.float64  # integer dot products stay exact
        nk_pad = math.ceil(shape.k_len / p.tile) * p.tile  # zero keys pad the last tile; they are never valid
        k_pad = torch.nn.functional.pad(kq.values, (0, 0, 0, nk_pad - shape.k_len))
        k_rounds = [truncated_keys(k_pad, p.bits, r).to(dt) for r in range(1, p.bits)] + [k_pad.to(dt)]
        imin, imax = (x.to(dt) for x in bui_offsets(qq.values, p.bits))
        k_scale = kq.scale.double().expand(shape.batch, shape.kv_heads, 1, 1).repeat_interleave(shape.group_size, 1)
        factor = (qq.scale.double() * k_scale * call.scale).expand(shape.batch, shape.heads, shape.q_len, 1)
        elements = active_elements(k_pad, p.bits, p.group, bidirectional=True).sum(dim=-2).double()
        busiest = _busiest_subgroups(active_elements(k_pad, p.bits, p.group, bidirectional=False), p.group)
        return PadeSetup(qq.values.to(dt), k_rounds, vq.dequantize().to(torch.float32), imin, imax, factor,
                         (p.alpha * p.radius / factor).to(dt), elements, busiest)

    def predict(self, ctx: PadeSetup, block: RowBlock, tally: Tally[PadeCounts]) -> Speculation:
        """ISTA geometry, exact scores and the threshold entering each tile (``max exact score of the tiles
        visited before - alpha*radius``: the best key so far is never pruned)."""
        shape, p = block.call.shape, self.p
        dev = block.call.q.device
        nt = math.ceil(block.width / p.tile)
        width = nt * p.tile
        full = min(shape.offset + block.row0 + 1, block.width) if shape.causal else block.width
        # tiles from `edge` on hold keys invalid for some row (future keys, padding; with a sliding window, all)
        edge = 0 if shape.window is not None else (full // p.tile) * p.tile
        edge_valid = torch.nn.functional.pad(block.valid, (0, width - block.width), value=False)[:, edge:]
        qi = ctx.q_int.view(shape.batch, shape.kv_heads, shape.group_size, shape.q_len, -1)[:, :, :, block.row0 :
                                                                                             block.row1]
        qi = qi.reshape(shape.batch, shape.kv_heads, -1, shape.head_dim)

        def score(kr: torch.Tensor) -> torch.Tensor:
            s = torch.matmul(qi, kr[:, :, :width].transpose(-1, -2))
            return s.view(shape.batch, shape.heads, block.rows, width)

        neg = torch.finfo(qi.dtype).min
        exact = score(ctx.k_rounds[-1])
        order = torch.tensor(tile_order(nt, p.order, p.head_tiles, p.tail_tiles), device=dev)
        spec = Speculation(nt, width, block.width, edge, edge_valid, score, exact, order, exact, exact, neg)
        exact_tiles = spec.tile_max(exact, p.tile)
        spec.seen = torch.cummax(exact_tiles[..., order], dim=-1).values
        enter = torch.full_like(exact_tiles, neg)
        enter[..., order[1:]] = spec.seen[..., :-1]
        mgn = ctx.margin[:, :, block.row0 : block.row1]
        spec.t_enter = torch.where(enter > neg, enter - mgn, enter)
        return spec

    def score(self, spec: Speculation) -> torch.Tensor:
        return spec.exact[..., : spec.reach]

    def select(self, ctx: PadeSetup, block: RowBlock, spec: Speculation, tally: Tally[PadeCounts]) -> Survivors:
        """BUI-GF: round by round, keep a key iff its upper bound ``S^r + I^{r,max}`` exceeds the row's threshold
        ``max(T entering its tile, max over the tile of S^r + I^{r,min} - alpha*radius)``."""
        p, shape = self.p, block.call.shape
        planes = torch.zeros(*spec.exact.shape, dtype=torch.int8, device=spec.exact.device)
        n_sample = min(p.lane_sample_rows, block.rows)
        alive, prev_thr = None, None
        per_round: list[float] = []  # (row, key) pairs fetching at least r planes, r = 1 .. bits
        busiest_nobs = torch.zeros(*planes[0, :, :n_sample].shape, p.group, dtype=torch.float64, device=planes.device)
        for r in range(1, p.bits + 1):
            running = alive if alive is not None else self._first_round(spec)
            alive, thr = self._round(ctx, block, spec, r)
            if prev_thr is not None and not bool((thr >= prev_thr).all()):
                tally.add(threshold_decreases=1)
            prev_thr = thr
            planes += running.view(torch.int8)
            counts = running.view(shape.batch, shape.kv_heads, -1, spec.width).sum(dim=2, dtype=torch.int32)
            tally.add(elements=(counts.double() * ctx.elements[:, :, : spec.width, r - 1]).sum())
            per_round.append(float(counts.sum()))
            busiest = ctx.busiest_nobs[0, :, : spec.width, r - 1].repeat_interleave(shape.group_size, dim=0)
            busiest_nobs += running[0, :, :n_sample, :, None] * busiest[:, None]
        tally.append("at_least", per_round)
        rowmax = spec.tile_max(spec.exact, p.tile).amax(dim=-1, keepdim=True)
        survivors = alive
        if p.final_mask:
            survivors = survivors & (spec.exact > rowmax - ctx.margin[:, :, block.row0 : block.row1])
        survivors = survivors | self._best_keys(spec, rowmax)
        self._sample_lanes(block, planes, busiest_nobs, tally)
        self._count_k_reads(block, planes, tally)
        return Survivors(survivors[..., : spec.reach], survivors, planes)

    @staticmethod
    def _best_keys(spec: Speculation, rowmax: torch.Tensor) -> torch.Tensor:
        """A row always keeps its best valid key(s): BUI-GF never prunes the running maximum (its bound is its
        exact score), and STAR's MAX-ensure module guards the same invariant in hardware. When ``alpha*radius`` falls
        below the precision of the integer scores (huge Q/K or ``scale``, a tiny ``radius``, one key dominating
        the quantisation) the guard threshold equals the row maximum and the ``<=`` rule would prune every key;
        with integer scores, ``s > max - margin`` for a margin under one unit is exactly ``s == max``."""
        best = spec.exact == rowmax
        best[..., spec.edge :] &= spec.edge_valid
        return best

    def _first_round(self, spec: Speculation) -> torch.Tensor:
        """Round 1: every valid key fetches its first plane."""
        running = torch.ones(spec.exact.shape, dtype=torch.bool, device=spec.exact.device)
        running[..., spec.edge :] = spec.edge_valid
        return running

    def _round(self, ctx: PadeSetup, block: RowBlock, spec: Speculation, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys alive after round ``r`` and the threshold of round ``r`` per tile. Keeping is monotone in ``r``
        (nested intervals, rising threshold), so no running AND is needed."""
        p = self.p
        rows = slice(block.row0, block.row1)
        s_r = spec.exact if r == p.bits else spec.score(ctx.k_rounds[r - 1])
        lower = spec.tile_max(s_r, p.tile) + ctx.imin[:, :, rows, r - 1 : r] - ctx.margin[:, :, rows]
        thr = torch.maximum(spec.t_enter, lower)
        bound = (thr - ctx.imax[:, :, rows, r - 1 : r]).unsqueeze(-1)
        alive = (s_r.view(*s_r.shape[:-1], -1, p.tile) > bound).view(s_r.shape)
        alive[..., spec.edge :] &= spec.edge_valid
        return alive, thr

    def _sample_lanes(self, block: RowBlock, planes: torch.Tensor, busiest_nobs: torch.Tensor,
                      tally: Tally[PadeCounts]) -> None:
        """The first ``lane_sample_rows`` rows of the block, every head of batch 0, for the lane timing model."""
        n, width = busiest_nobs.shape[1], planes.shape[-1]
        if n:
            tally.append("bitserial_planes", planes[0, :, :n].reshape(-1, width).cpu().numpy())
            tally.append("bitserial_busiest_nobs", busiest_nobs.reshape(-1, width * self.p.group).cpu().numpy())

    def _count_k_reads(self, block: RowBlock, planes: torch.Tensor, tally: Tally[PadeCounts]) -> None:
        """K planes fetched (shared by the GQA heads and the parallel query rows), and what dense INT8 reads:
        every valid key once per group of parallel rows (the group's last row sees the most)."""
        shape, p, dev = block.call.shape, self.p, planes.device
        first = torch.arange(0, block.rows, p.parallel_queries, device=dev)
        last = torch.clamp(first + p.parallel_queries, max=block.rows) - 1 + block.row0
        if not shape.causal:
            seen = torch.full_like(last, shape.k_len)
        else:  # the union of the group's rows: up to the last row's position, from the first row's window start
            lo = (first + block.row0 + shape.offset - shape.window + 1).clamp(min=0) if shape.window else 0
            seen = (last + shape.offset + 1).clamp(max=shape.k_len) - lo
        tally.add(k_planes=_shared_rows(planes, shape.group_size, p.parallel_queries).sum(dtype=torch.float64),
                  dense_reads=float(seen.sum()) * shape.batch * shape.kv_heads)

    def check_differentiable(self) -> None:
        if self.p.formal == "integer":
            raise InvalidInputError(
                "pade computes its output from INT-quantised Q, K and V (formal='integer'), whose rounding has no "
                "useful gradient; for gradients use formal='exact' (PADE's selection, exact attention on the "
                "survivors) or pass tensors that do not require grad")

    def attend(self, ctx: PadeSetup, block: RowBlock, spec: Speculation, chosen: Survivors, tally: Tally[PadeCounts]):
        """Softmax over the survivors' exact INT8 logits, times INT8 V (``formal="exact"``: exact logits and V);
        V reads and online-softmax rescales in the ISTA order are counted."""
        shape, p = block.call.shape, self.p
        if p.formal == "exact":
            out = attend_kept(block.scores, chosen.keep, block.v, block.call.q.dtype)
        else:
            fac = ctx.factor[:, :, block.row0 : block.row1].to(torch.float32)
            logits = (spec.exact[..., : spec.reach] * fac).to(torch.float32)
            out = attend_kept(logits, chosen.keep, ctx.v[:, :, : spec.reach], block.call.q.dtype)
        shared = _shared_rows(chosen.padded.view(torch.int8), shape.group_size, p.parallel_queries)
        run = torch.cummax(spec.tile_max(spec.exact.masked_fill(~chosen.padded, spec.neg), p.tile)[..., spec.order],
                           dim=-1).values
        seen = spec.seen
        tally.add(v_reads=shared.sum(), rescales=((run[..., 1:] > run[..., :-1]) & (run[..., :-1] > spec.neg)).sum(),
                  threshold_rises=((seen[..., 1:] > seen[..., :-1]) & (seen[..., :-1] > spec.neg)).sum())
        return out

    def count(self, ctx: PadeSetup, call: AttentionCall, keep: torch.Tensor, tally: Tally[PadeCounts]) -> Workload:
        bits = self.p.bits
        at_least = [sum(block[r] for block in tally.counts.at_least) for r in range(bits)]
        hist = [int(at_least[i] - (at_least[i + 1] if i + 1 < bits else 0.0)) for i in range(bits)]
        w = _trace(call.shape, self.p, keep, tally, hist)
        for name in ("bitserial_planes", "bitserial_busiest_nobs"):
            for rows in getattr(tally.counts, name):
                w.add_sample(name, np.rint(rows).astype(np.int64))
        return w


def _trace(shape, p: PadeParams, keep: torch.Tensor, tally: Tally[PadeCounts], hist: list[int]) -> Workload:
    d, bits = shape.head_dim, p.bits
    acc = 2 * bits + math.ceil(math.log2(d))  # scoreboard partial-sum width
    plane_rounds = float(sum((i + 1) * n for i, n in enumerate(hist)))
    survivors, rows = float(torch.count_nonzero(keep)), float(shape.rows)
    w = Workload(shape=shape, meta={"method": "pade", "params": p.model_dump()})
    w.add("qk", "add", bits, tally["elements"], Per.PAIR_DIM)  # AND-tree additions of active query elements
    w.add("qk", "add", bits + math.ceil(math.log2(p.group)), plane_rounds * (d // p.group), Per.PAIR_DIM)
    w.add("qk", "shift", acc, plane_rounds, Per.PAIR)  # weight the plane's sum by its bit position
    w.add("qk", "add", acc, plane_rounds, Per.PAIR)  # accumulate into the scoreboard
    w.add("select", "add", acc, 2 * plane_rounds, Per.PAIR)  # lower and upper bound (LUT offsets)
    w.add("select", "compare", acc, 2 * plane_rounds, Per.PAIR)  # decision + threshold update
    w.add("select", "add", p.lut_bits, rows * (2 * d + 2 * bits), Per.ROW_DIM)  # BUI LUT: P, N and 8 entries each
    rescales, fb = tally["rescales"], p.formal_bits
    w.add("softmax", "compare", fb, survivors, Per.PAIR)
    w.add("softmax", "exp", fb, survivors + rescales, Per.PAIR)
    w.add("softmax", "add", fb, 2 * survivors, Per.PAIR)
    w.add("softmax", "mul", fb, rescales * (1 + d) + rows * d, Per.ROW_DIM)
    w.add("softmax", "div", fb, rows, Per.ROW)
    w.add("pv", "mac", fb, survivors * d, Per.PAIR_DIM)
    w.profile = SparsityProfile.from_keep(keep, shape)
    w.add_read("k_bit_planes", tally["k_planes"] * d / 8, Per.PAIR_DIM)  # planes are fetched per (row group, key)
    w.add_read("v_survivors", tally["v_reads"] * d * bits / 8, Per.PAIR_DIM)  # V rows of survivors
    w.meta.update(_meta(shape, p, tally, hist, plane_rounds, survivors))
    w.put(_read_rates(shape, p, tally, keep, plane_rounds, survivors))
    return w


def _read_rates(shape, p: PadeParams, tally: Tally[PadeCounts], keep: torch.Tensor, plane_rounds: float,
                survivors: float) -> BitplaneReads:
    """Counts ``sparseattn.hw.bitplanes`` turns into K-plane and V read rates at another shape: planes fetched and
    surviving V rows per (row, key) -- one query row alone -- and per (group, key) -- the ``parallel_queries`` rows
    of every query head of a KV group sharing each fetch (the group's keys: those its last row sees) -- and the keys
    that survive for some row of their KV head. Counts, not ratios, so stacked layers add up
    (:class:`~sparseattn.core.records.BitplaneReads`)."""
    b, hkv, g = shape.batch, shape.kv_heads, shape.group_size
    union = keep.reshape(b, hkv, g * shape.q_len, shape.k_len).any(dim=2)
    seen = shape.valid_mask(keep.device).any(dim=0)  # keys some row sees
    return BitplaneReads(
        parallel_rows=p.parallel_queries,  # query rows of a head sharing one fetch
        group_heads=g,  # query heads of a KV group sharing it too (GQA)
        bits=p.bits,
        valid_pairs=float(shape.valid_pairs),
        plane_rounds=plane_rounds,
        survivors=survivors,
        group_keys=tally["dense_reads"],
        k_planes=tally["k_planes"],
        v_reads=tally["v_reads"],
        union_keys=float(union[..., seen].sum()),
        seen_keys=float(b * hkv * int(seen.sum())),
    )


def _meta(shape, p: PadeParams,
          tally: Tally[PadeCounts], hist: list[int], plane_rounds: float, survivors: float) -> dict:
    d, bits, valid = shape.head_dim, p.bits, float(shape.valid_pairs)
    k_bytes, v_bytes = tally["k_planes"] * d / 8, tally["v_reads"] * d * bits / 8
    dense_k, dense_v = tally["dense_reads"] * bits * d / 8, tally["dense_reads"] * d * bits / 8
    return {
        "planes_histogram": hist,  # (row, key) pairs that fetched 1 .. bits planes
        "avg_planes_per_key": plane_rounds / valid,
        "k_bits_read": tally["k_planes"] * d,
        "k_bits_dense_int8": tally["dense_reads"] * bits * d,
        "k_read_fraction": tally["k_planes"] / (bits * tally["dense_reads"]),
        "v_reads": tally["v_reads"],
        "v_reads_without_reuse": survivors,
        "v_reads_dense": tally["dense_reads"],
        "memory_fraction": (k_bytes + v_bytes) / (dense_k + dense_v),
        "qk_work_fraction": plane_rounds / (bits * valid),
        "pv_work_fraction": survivors / valid,
        "computation_fraction": (plane_rounds / bits + survivors) / (2 * valid),
        "survivors": survivors,
        "rescales": tally["rescales"],
        "threshold_rises": tally["threshold_rises"],
        "threshold_monotone": tally["threshold_decreases"] == 0,
        "and_tree_elements": tally["elements"],
        "lane_sample": f"first {p.lane_sample_rows} row(s) of every block, every head of batch 0",
        "k_note": "K is read as bit planes: use extra_reads['k_bit_planes'] instead of dense K traffic",
    }
