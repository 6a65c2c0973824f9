"""Tiling and memory traffic: from a trace's sparsity profile to buffer needs and DRAM bytes per tensor.

**Projection.** A trace's profile counts kept pairs per 16 x 16 tile of the shape it was captured on (SmolLM2 at
1024 tokens). :func:`project` carries it to a target shape's tile grid by normalised position, the rule of
:meth:`Workload.scaled_to`: a target tile takes the kept density of the source region it covers. The grid is
bundled into at most ``max_cells`` cells per axis (the source has no finer information), and the statistics are
kept per *source* instance with a multiplicity (target instances per source instance), so a 32-layer model at
128k tokens costs no more than SmolLM2 at 1k.

**Fetches.** A K/V tile is fetched for a query tile when any of its pairs is kept. Per cell, ``p`` is the
fraction of non-empty source base tiles in the region; an architecture tile spanning ``m`` of the region's ``n``
base tiles is non-empty unless all ``m`` it draws (without replacement) are empty -- exact when a cell is a single
architecture tile -- and one smaller than a base tile with probability ``p * (1 - (1 - rho)^(q_tile * k_tile))``
where ``rho`` is the density inside non-empty base tiles (:func:`_fetch_probability`).

**Traffic rules** (per query tile; ``dataflow`` fields of the architecture):

* Q is read and O written once;
* formal compute reads the fetched K and V tiles (``kv_bits``); with GQA sharing the heads of a KV group read
  the union of their tiles once (estimated from the source's own GQA groups);
* a predictor that reads K (``predict_k_bits``) reads every valid K tile; with ``cross_stage_reuse`` (SOFA/STAR)
  that read is at full precision and formal compute reuses it on chip, so only V is read again for kept pairs;
* when all of one KV head's K and V fit in the K/V buffers they are read once per KV head, not per query tile;
* a tensor in ``replace_reads`` (PADE: K as bit planes, V for survivors) takes the trace's extra read instead,
  and every other extra read of the trace (re-fetches, predictor operands) is added as its own tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.shape import Shape
from ..core.workload import Per, Workload, tile_valid_counts
from .schema import AcceleratorArch, ConfigError

MAX_CELLS = 64


@dataclass(frozen=True)
class Tiling:
    """Query and key tile of the formal stage (and of every K/V fetch), in tokens."""

    q_tile: int
    k_tile: int

    def __post_init__(self) -> None:
        for name in ("q_tile", "k_tile"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"Tiling.{name} must be a positive int, got {v!r}")

    @classmethod
    def of(cls, arch: AcceleratorArch) -> Tiling:
        return cls(arch.dataflow.q_tile, arch.dataflow.k_tile)


@dataclass
class TiledSparsity:
    """A trace's sparsity projected onto a target shape's tile grid (see the module docstring)."""

    shape: Shape
    tiling: Tiling
    rows: np.ndarray  # [A] query rows per cell
    keys: np.ndarray  # [C] keys per cell
    q_tiles: np.ndarray  # [A] architecture query tiles per cell
    k_tiles: np.ndarray  # [C]
    valid: np.ndarray  # [A, C] valid pairs of one target instance
    kept: np.ndarray  # [n, A, C] kept pairs of one target instance, per source instance
    fetch: np.ndarray  # [n, A, C] fraction of architecture tiles with a kept pair
    fetch_group: np.ndarray  # [n, A, C] the same for the union over the source instance's KV group
    valid_tiles: np.ndarray  # [A, C] fraction of architecture tiles with a valid pair
    multiplicity: float  # target instances per source instance

    @property
    def density(self) -> float:
        return float(self.kept.sum() / (self.valid.sum() * self.kept.shape[0]))


def _edges(n_tiles: int, max_cells: int) -> np.ndarray:
    cells = min(n_tiles, max_cells)
    return np.rint(np.linspace(0, n_tiles, cells + 1)).astype(np.int64)


def _rect_valid(r0: np.ndarray, r1: np.ndarray, c0: np.ndarray, c1: np.ndarray, offset: int) -> np.ndarray:
    """Causal valid pairs in token rectangles ``[r0, r1) x [c0, c1)`` (row r sees keys <= r + offset)."""
    w = (c1 - c0).astype(np.float64)

    def g(x: np.ndarray) -> np.ndarray:  # sum_{t <= x} clip(t, 0, w)
        x = x.astype(np.float64)
        inner = np.clip(x, 0, None) * (np.clip(x, 0, None) + 1) / 2
        return np.where(x <= w, inner, w * (w + 1) / 2 + (x - w) * w)

    t0 = r0 + offset + 1 - c0
    t1 = r1 - 1 + offset + 1 - c0
    return g(t1) - g(t0 - 1)


def _prefix(x: np.ndarray) -> np.ndarray:
    out = np.zeros((*x.shape[:-2], x.shape[-2] + 1, x.shape[-1] + 1))
    out[..., 1:, 1:] = x.cumsum(-2).cumsum(-1)
    return out


def _source_range(
    lo: np.ndarray, hi: np.ndarray, n_target: int, n_source_tiles: int
) -> tuple[np.ndarray, np.ndarray]:
    """Source base-tile index edges covering normalised target ranges (at least one tile each)."""
    start = np.floor(lo / n_target * n_source_tiles).astype(np.int64)
    stop = np.ceil(hi / n_target * n_source_tiles).astype(np.int64)
    start = np.minimum(start, n_source_tiles - 1)
    return start, np.maximum(stop, start + 1)


def _fetch_probability(
    k: np.ndarray, n: np.ndarray, span: np.ndarray, rho: np.ndarray, pairs_per_tile: int
) -> np.ndarray:
    """Chance that an architecture tile has a kept pair, given ``k`` of the ``n`` source base tiles of its cell
    are non-empty and each architecture tile covers ``span`` base tiles.

    ``span >= 1``: the tile draws ``round(span)`` of the ``n`` base tiles without replacement (hypergeometric;
    exact when the cell is one architecture tile). ``span < 1``: it lies inside one base tile, non-empty with
    chance ``k / n``, and then holds a kept pair with chance ``1 - (1 - rho)^pairs`` (``rho``: density inside
    non-empty base tiles).
    """
    n = np.maximum(np.rint(n), 0.0)
    k = np.clip(np.rint(k), 0.0, n)
    m = np.clip(np.rint(span), 1.0, np.maximum(n, 1.0))
    nt, kt, mt = (torch.as_tensor(x, dtype=torch.float64) for x in (n, k, m))
    possible = (nt - kt) >= mt
    log_empty = (
        torch.lgamma(nt - kt + 1) - torch.lgamma((nt - kt - mt).clamp(min=0) + 1)
        - torch.lgamma(nt + 1) + torch.lgamma(nt - mt + 1)
    )
    p_big = torch.where(possible, 1 - torch.exp(log_empty), torch.ones_like(nt)).numpy()
    frac = np.divide(k, n, out=np.zeros_like(k), where=n > 0)
    p_small = frac * (1 - (1 - np.clip(rho, 0, 1)) ** pairs_per_tile)
    return np.where(n > 0, np.where(span >= 1, p_big, p_small), 0.0)


def project(trace: Workload, shape: Shape, tiling: Tiling, max_cells: int = MAX_CELLS) -> TiledSparsity:
    """Project ``trace``'s sparsity profile onto ``shape`` tiled by ``tiling`` (see the module docstring)."""
    if trace.profile is None:
        raise ConfigError("the trace has no sparsity profile; traces from sparseattn methods always carry one")
    if trace.shape.causal != shape.causal:
        raise ConfigError(
            f"the trace is {'causal' if trace.shape.causal else 'bidirectional'} but the workload is "
            f"{'causal' if shape.causal else 'bidirectional'}; capture a trace of the same kind"
        )
    p = trace.profile
    src = trace.shape.replace(layers=1, batch=1)
    counts = p.counts.astype(np.float64)
    n_src = counts.shape[0]
    valid_src = tile_valid_counts(src, p.tile).astype(np.float64)
    nonempty = (counts > 0).astype(np.float64)
    group_ids = np.unique(p.group, return_inverse=True)[1]
    group_nonempty = np.zeros((group_ids.max() + 1, *counts.shape[1:]))
    np.maximum.at(group_nonempty, group_ids, nonempty)

    # target cells, in architecture tiles, then tokens
    eq = _edges(-(-shape.q_len // tiling.q_tile), max_cells)
    ek = _edges(-(-shape.k_len // tiling.k_tile), max_cells)
    r_tok = np.minimum(eq * tiling.q_tile, shape.q_len)
    c_tok = np.minimum(ek * tiling.k_tile, shape.k_len)
    rows, keys = np.diff(r_tok), np.diff(c_tok)
    r0, r1 = r_tok[:-1][:, None], r_tok[1:][:, None]
    k0, k1 = c_tok[:-1][None, :], c_tok[1:][None, :]
    if shape.causal:
        valid = _rect_valid(r0, r1, k0, k1, shape.offset)
    else:
        valid = (rows[:, None] * keys[None, :]).astype(np.float64)

    # source regions (normalised coordinates; queries relative to q_len, keys to k_len)
    sq0, sq1 = _source_range(r_tok[:-1], r_tok[1:], shape.q_len, counts.shape[1])
    sk0, sk1 = _source_range(c_tok[:-1], c_tok[1:], shape.k_len, counts.shape[2])
    # rectangle sums over arbitrary (possibly overlapping) index ranges
    def region(prefix: np.ndarray) -> np.ndarray:
        a0, a1 = sq0[:, None], sq1[:, None]
        b0, b1 = sk0[None, :], sk1[None, :]
        return prefix[..., a1, b1] - prefix[..., a0, b1] - prefix[..., a1, b0] + prefix[..., a0, b0]

    kept_src = region(_prefix(counts))
    valid_region = region(_prefix(valid_src[None]))[0]
    valid_tiles_src = region(_prefix((valid_src > 0)[None].astype(np.float64)))[0]
    n_nonempty = region(_prefix(nonempty))
    density = np.divide(kept_src, valid_region, out=np.zeros_like(kept_src), where=valid_region > 0)
    kept = density * valid[None]
    # fraction of architecture tiles that hold a valid pair (diagonal cells of causal attention are partial)
    tiles_q, tiles_k = np.diff(eq), np.diff(ek)
    valid_frac = valid / (rows[:, None] * keys[None, :])
    edge = 1.0 / np.maximum(1, np.minimum(tiles_q[:, None], tiles_k[None, :]))
    valid_tiles = np.where((valid_frac > 0) & (valid_frac < 1), np.minimum(1.0, valid_frac + edge), valid_frac)
    # probability that an architecture tile of the cell has a kept pair
    n_base = valid_tiles_src  # valid source base tiles in each cell's region
    n_arch = np.maximum(valid_tiles * tiles_q[:, None] * tiles_k[None, :], 1e-9)
    span = n_base / n_arch  # base tiles per architecture tile
    rho_nz = np.divide(kept_src, n_nonempty * p.tile * p.tile, out=np.zeros_like(kept_src), where=n_nonempty > 0)

    def fetch_prob(nonempty_tiles: np.ndarray, rho: np.ndarray) -> np.ndarray:
        return _fetch_probability(nonempty_tiles, n_base, span, rho, tiling.q_tile * tiling.k_tile)

    fetch = fetch_prob(n_nonempty, rho_nz)
    g_nonempty = region(_prefix(group_nonempty))
    fetch_group = np.maximum(fetch_prob(g_nonempty, np.ones_like(g_nonempty))[group_ids], fetch)
    fetch = np.minimum(fetch, valid_tiles[None])
    fetch_group = np.minimum(fetch_group, valid_tiles[None])
    return TiledSparsity(
        shape=shape, tiling=tiling, rows=rows, keys=keys, q_tiles=tiles_q, k_tiles=tiles_k, valid=valid,
        kept=kept, fetch=fetch, fetch_group=fetch_group, valid_tiles=valid_tiles,
        multiplicity=shape.instances / n_src,
    )


# ------------------------------------------------------------------------------------------------ traffic
def buffer_needs(arch: AcceleratorArch, shape: Shape, tiling: Tiling) -> dict[str, float]:
    """KB each tensor class needs on chip for one tile (double buffered when the dataflow is)."""
    df, d = arch.dataflow, shape.head_dim
    copies = 2 if df.double_buffered else 1
    return {
        "q": copies * tiling.q_tile * d * df.q_bits / 8 / 1024,
        "k": copies * tiling.k_tile * d * df.kv_bits / 8 / 1024,
        "v": copies * tiling.k_tile * d * df.kv_bits / 8 / 1024,
        "o": tiling.q_tile * d * df.q_bits / 8 / 1024,  # the output tile (accumulators live in the PEs)
        "scores": tiling.q_tile * tiling.k_tile * df.score_bits / 8 / 1024,
    }


def check_fit(arch: AcceleratorArch, shape: Shape, tiling: Tiling) -> dict[str, float]:
    """Raise :class:`ConfigError` (saying by how much) when a tile does not fit the buffers; returns the needs."""
    needs = buffer_needs(arch, shape, tiling)
    for tensor in needs:
        holders = arch.buffer_for(tensor)
        if not holders:
            if tensor == "scores":
                continue  # scores stay in the PE array
            raise ConfigError(f"architecture {arch.name!r} has no buffer that holds {tensor!r} (buffers[*].holds)")
        pooled = [t for t in needs if {b.name for b in arch.buffer_for(t)} & {b.name for b in holders}]
        need = sum(needs[t] for t in pooled)
        have = sum(b.kb for b in {b.name: b for t in pooled for b in arch.buffer_for(t)}.values())
        if need > have:
            names = ", ".join(sorted({b.name for t in pooled for b in arch.buffer_for(t)}))
            raise ConfigError(
                f"tiling q_tile={tiling.q_tile}, k_tile={tiling.k_tile} (head_dim {shape.head_dim}) does not fit "
                f"{arch.name!r}: {'+'.join(pooled)} need {need:.1f} KB in buffer(s) {names} of {have:.1f} KB, "
                f"over by {need - have:.1f} KB"
            )
    return needs


@dataclass
class Traffic:
    """DRAM and SRAM bytes per (source instance, query cell) and totals by tensor (all target instances)."""

    per_cell: np.ndarray  # [n, A] DRAM bytes (all target instances mapped to the source instance)
    dram_bytes: dict[str, float]
    sram_read_bytes: dict[str, float]
    resident: dict[str, bool]  # K / V kept on chip for a whole KV head


def traffic(arch: AcceleratorArch, trace: Workload, ts: TiledSparsity) -> Traffic:
    """DRAM bytes per tensor and per (source instance, query cell) for ``trace`` on ``arch``.

    ``trace`` is the trace at the target shape (its op counts and extra reads are target totals); ``ts`` its
    projected sparsity. See the module docstring for the rules.
    """
    df, shape = arch.dataflow, ts.shape
    d, m = shape.head_dim, ts.multiplicity
    kv_b, q_b = df.kv_bits / 8, df.q_bits / 8
    group = shape.group_size
    shared = df.gqa_share and group > 1
    fetch = ts.fetch_group if shared else ts.fetch
    share = 1.0 / group if shared else 1.0
    n_cells = len(ts.rows)
    tiles = ts.q_tiles[:, None] * ts.k_tiles[None, :] * df.k_tile  # keys fetched per cell if every tile is
    keys_kept = (fetch * tiles[None]).sum(-1) * share  # [n, A] keys fetched by formal compute, per query tile
    keys_valid = np.broadcast_to((ts.valid_tiles * tiles).sum(-1) * share, keys_kept.shape)
    # read once per KV head: each needed key tile once, spread evenly over the query cells
    once_kept = np.broadcast_to(
        ((fetch.max(axis=1) * ts.k_tiles[None] * df.k_tile).sum(-1) * share / n_cells)[:, None], keys_kept.shape
    )
    once_valid = np.full(keys_kept.shape, float(ts.keys.sum()) * share / n_cells)

    # residency: does one KV head's K (and V) fit beside the Q/O tiles?
    needs = buffer_needs(arch, shape, ts.tiling)
    kv_capacity = sum(b.kb for b in arch.buffers if {"k", "v"} & set(b.holds)) * 1024
    kv_capacity -= sum(needs[t] * 1024 for t in ("q", "o") if {b.name for b in arch.buffer_for(t)}
                       & {b.name for b in arch.buffers if {"k", "v"} & set(b.holds)})
    head_bytes = shape.k_len * d * kv_b
    both = 2 * head_bytes <= kv_capacity
    resident = {"k": both or head_bytes + needs["v"] * 1024 <= kv_capacity, "v": both}
    k_fetched = once_kept if resident["k"] else keys_kept
    k_all = once_valid if resident["k"] else keys_valid
    v_fetched = once_kept if resident["v"] else keys_kept

    cells: dict[str, np.ndarray] = {}
    rows = np.broadcast_to(ts.rows[None].astype(np.float64), keys_kept.shape)
    cells["q"] = rows * d * q_b
    cells["o"] = rows * d * q_b
    predict_bits = df.predict_k_bits or 0
    if predict_bits and df.cross_stage_reuse:
        cells["k"] = k_all * d * max(predict_bits, df.kv_bits) / 8
    else:
        cells["k"] = k_fetched * d * kv_b
        if predict_bits:
            cells["k_predict"] = k_all * d * predict_bits / 8
    cells["v"] = v_fetched * d * kv_b
    w_kept = ts.kept.sum(-1) / max(ts.kept.sum(), 1e-30)
    w_valid = np.broadcast_to(ts.valid.sum(-1)[None] / (ts.valid.sum() * len(ts.kept)), w_kept.shape)
    for tensor, read in df.replace_reads.items():
        if read not in trace.extra_reads:
            raise ConfigError(
                f"{arch.name!r} replaces {tensor!r} traffic by the trace's extra read {read!r}, which this "
                f"{trace.meta.get('method')!r} trace does not have (it has {sorted(trace.extra_reads)})"
            )
    for name, nbytes in trace.extra_reads.items():
        replaced = [t for t, r in df.replace_reads.items() if r == name]
        key = replaced[0] if replaced else name
        pair_based = trace.basis_of_read(name) in (Per.PAIR, Per.PAIR_DIM, Per.PAIR_LOG)
        weights = w_kept if (pair_based and key == "v") else w_valid
        extra = weights * nbytes / m
        if replaced and resident[key]:  # on chip for the whole head: never more than one read of what is needed
            extra = np.minimum(extra, cells[key])
        cells[key] = extra
    per_cell = sum(cells.values()) * m
    total = {name: float(c.sum() * m) for name, c in cells.items()}
    sram = {
        "k": float((keys_kept + (keys_valid if predict_bits else 0)).sum() * d * kv_b * m),
        "v": float(keys_kept.sum() * d * kv_b * m),
        "q": total["q"],
    }
    for t in df.replace_reads:
        sram[t] = max(total[t], sram[t])
    return Traffic(per_cell=per_cell, dram_bytes=total, sram_read_bytes=sram, resident=resident)
