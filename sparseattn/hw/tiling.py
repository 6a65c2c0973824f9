"""Tiling: a trace's sparsity profile projected onto a target shape's tile grid (stage 2 of the simulator, with
:mod:`~sparseattn.hw.traffic`).

**Projection.** A trace's profile counts kept pairs per 16 x 16 tile of the shape it was captured on (SmolLM2 at
1024 tokens). :func:`project` carries it to a target shape's grid of the mapping's formal tile by normalised
position, the rule of :meth:`Workload.scaled_to`: a target tile takes the kept density of the source region it
covers. The grid is bundled into at most ``max_cells`` cells per axis (the source has no finer information), and
the statistics are kept per *source* instance with a multiplicity (target instances per source instance), so a
32-layer model at 128k tokens costs no more than SmolLM2 at 1k.

**Fetches.** A K/V tile is fetched for a query tile when any of its pairs is kept. Per cell, ``p`` is the
fraction of non-empty source base tiles in the region; an architecture tile spanning ``m`` of the region's ``n``
base tiles is non-empty unless all ``m`` it draws (without replacement) are empty -- exact when a cell is a single
architecture tile -- and one smaller than a base tile with probability ``p * (1 - (1 - rho)^(q_tile * k_tile))``
where ``rho`` is the density inside non-empty base tiles (:func:`_fetch_probability`).

**Valid tiles.** Causal cells on the diagonal are partly valid; the fraction of a cell's tiles that hold a valid
pair is :func:`valid_tile_fraction`, for the formal tile and for any other tile on the same cells
(:meth:`TiledSparsity.valid_keys`, used for a prediction stage tiled differently).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..core.shape import Shape
from ..core.workload import Workload, tile_valid_counts
from .config import ConfigError
from .mapping import Tile

MAX_CELLS = 64


@dataclass
class TiledSparsity:
    """A trace's sparsity projected onto a target shape's tile grid (see the module docstring)."""

    shape: Shape
    tile: Tile  # the formal tile the grid is made of
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

    def valid_keys(self, tile: Tile | None = None) -> np.ndarray:
        """Keys one target instance reads per cell when it reads every valid ``tile`` (default: the formal tile)
        once per query tile: ``[A, C]``. Another tile is laid on the same cells as a fractional number of tiles
        per cell (``tokens / tile`` on each axis; an estimate, exact for bidirectional attention)."""
        if tile is None or tile == self.tile:
            return self.valid_tiles * (self.q_tiles[:, None] * self.k_tiles[None, :] * self.tile.k)
        tq, tk = self.rows / tile.q, self.keys / tile.k
        frac = valid_tile_fraction(self.valid, self.rows, self.keys, tq, tk)
        return frac * (tq[:, None] * self.keys[None, :])


@lru_cache(maxsize=32)
def _valid_counts(shape: Shape, tile: int) -> np.ndarray:
    """Valid pairs per base tile of one source instance (float64, read-only; cached: every simulation of a trace
    needs them)."""
    counts = tile_valid_counts(shape, tile).astype(np.float64)
    counts.flags.writeable = False
    return counts


def _edges(n_tiles: int, max_cells: int) -> np.ndarray:
    cells = min(n_tiles, max_cells)
    return np.rint(np.linspace(0, n_tiles, cells + 1)).astype(np.int64)


def valid_tile_fraction(valid: np.ndarray, rows: np.ndarray, keys: np.ndarray, tiles_q: np.ndarray,
                        tiles_k: np.ndarray) -> np.ndarray:
    """Fraction of the ``tiles_q x tiles_k`` tiles of each cell that hold a valid pair, from the cell's valid
    pairs ``[A, C]``: all or none for full and empty cells; for a partly valid (diagonal) cell the valid fraction
    plus one tile's worth of the diagonal edge."""
    valid_frac = valid / (rows[:, None] * keys[None, :])
    edge = 1.0 / np.maximum(1.0, np.minimum(tiles_q[:, None], tiles_k[None, :]))
    return np.where((valid_frac > 0) & (valid_frac < 1), np.minimum(1.0, valid_frac + edge), valid_frac)


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


def _log_factorials(n: int) -> np.ndarray:
    """``log(x!)`` for ``x = 0 .. n`` (``torch.lgamma(x + 1)``)."""
    return torch.lgamma(torch.arange(n + 1, dtype=torch.float64) + 1).numpy()


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
    log_factorial = _log_factorials(int(n.max()))  # the counts are whole numbers: look lgamma(x + 1) up
    empty = n - k
    log_empty = (log_factorial[empty.astype(np.int64)] - log_factorial[np.maximum(empty - m, 0).astype(np.int64)]
                 - log_factorial[n.astype(np.int64)] + log_factorial[np.maximum(n - m, 0).astype(np.int64)])
    p_big = np.where(empty >= m, 1 - torch.exp(torch.as_tensor(log_empty)).numpy(), 1.0)
    frac = np.divide(k, n, out=np.zeros_like(k), where=n > 0)
    p_small = frac * (1 - (1 - np.clip(rho, 0, 1)) ** pairs_per_tile)
    return np.where(n > 0, np.where(span >= 1, p_big, p_small), 0.0)


@dataclass(frozen=True)
class _Grid:
    """The target's cells: edges in architecture tiles (``eq``, ``ek``) and tokens, and valid pairs per cell."""

    eq: np.ndarray
    ek: np.ndarray
    r_tok: np.ndarray
    c_tok: np.ndarray
    valid: np.ndarray  # [A, C]

    @property
    def rows(self) -> np.ndarray:
        return np.diff(self.r_tok)

    @property
    def keys(self) -> np.ndarray:
        return np.diff(self.c_tok)


def _target_grid(shape: Shape, tile: Tile, max_cells: int) -> _Grid:
    eq = _edges(-(-shape.q_len // tile.q), max_cells)
    ek = _edges(-(-shape.k_len // tile.k), max_cells)
    r_tok = np.minimum(eq * tile.q, shape.q_len)
    c_tok = np.minimum(ek * tile.k, shape.k_len)
    rows, keys = np.diff(r_tok), np.diff(c_tok)
    if shape.causal:
        valid = _rect_valid(r_tok[:-1][:, None], r_tok[1:][:, None], c_tok[:-1][None, :], c_tok[1:][None, :],
                            shape.offset)
    else:
        valid = (rows[:, None] * keys[None, :]).astype(np.float64)
    return _Grid(eq, ek, r_tok, c_tok, valid)


def _region_sums(grid: _Grid, shape: Shape, src_tiles: tuple[int, int]):
    """A function summing a ``[..., Tq, Tk]`` source array over each target cell's source region (normalised
    coordinates; queries relative to ``q_len``, keys to ``k_len``), via 2-D prefix sums."""
    sq0, sq1 = _source_range(grid.r_tok[:-1], grid.r_tok[1:], shape.q_len, src_tiles[0])
    sk0, sk1 = _source_range(grid.c_tok[:-1], grid.c_tok[1:], shape.k_len, src_tiles[1])
    a0, a1, b0, b1 = sq0[:, None], sq1[:, None], sk0[None, :], sk1[None, :]

    def region(x: np.ndarray) -> np.ndarray:
        prefix = _prefix(x)
        return prefix[..., a1, b1] - prefix[..., a0, b1] - prefix[..., a1, b0] + prefix[..., a0, b0]

    return region


def _check_projectable(trace: Workload, shape: Shape) -> None:
    if trace.profile is None:
        raise ConfigError("the trace has no sparsity profile; traces from sparseattn methods always carry one")
    if trace.shape.causal != shape.causal:
        raise ConfigError(
            f"the trace is {'causal' if trace.shape.causal else 'bidirectional'} but the model shape is "
            f"{'causal' if shape.causal else 'bidirectional'}; capture a trace of the same kind"
        )


def project(trace: Workload, shape: Shape, tile: Tile, max_cells: int = MAX_CELLS) -> TiledSparsity:
    """Project ``trace``'s sparsity profile onto ``shape`` tiled by ``tile`` (see the module docstring)."""
    _check_projectable(trace, shape)
    p = trace.profile
    counts = p.counts.astype(np.float64)
    valid_src = _valid_counts(trace.shape.replace(layers=1, batch=1), p.tile)
    nonempty = (counts > 0).astype(np.float64)
    group_ids = np.unique(p.group, return_inverse=True)[1]
    group_nonempty = np.zeros((group_ids.max() + 1, *counts.shape[1:]))
    np.maximum.at(group_nonempty, group_ids, nonempty)

    grid = _target_grid(shape, tile, max_cells)
    region = _region_sums(grid, shape, counts.shape[1:])
    kept_src = region(counts)
    valid_region = region(valid_src[None])[0]
    n_base = region((valid_src > 0)[None].astype(np.float64))[0]  # valid source base tiles per cell
    n_nonempty = region(nonempty)
    density = np.divide(kept_src, valid_region, out=np.zeros_like(kept_src), where=valid_region > 0)
    tiles_q, tiles_k = np.diff(grid.eq), np.diff(grid.ek)
    valid_tiles = valid_tile_fraction(grid.valid, grid.rows, grid.keys, tiles_q, tiles_k)
    # probability that an architecture tile of the cell has a kept pair
    span = n_base / np.maximum(valid_tiles * tiles_q[:, None] * tiles_k[None, :], 1e-9)  # base tiles per arch tile
    rho_nz = np.divide(kept_src, n_nonempty * p.tile * p.tile, out=np.zeros_like(kept_src), where=n_nonempty > 0)
    fetch = _fetch_probability(n_nonempty, n_base, span, rho_nz, tile.q * tile.k)
    g_nonempty = region(group_nonempty)
    g_fetch = _fetch_probability(g_nonempty, n_base, span, np.ones_like(g_nonempty), tile.q * tile.k)
    fetch_group = np.maximum(g_fetch[group_ids], fetch)
    return TiledSparsity(
        shape=shape, tile=tile, rows=grid.rows, keys=grid.keys, q_tiles=tiles_q, k_tiles=tiles_k, valid=grid.valid,
        kept=density * grid.valid[None], fetch=np.minimum(fetch, valid_tiles[None]),
        fetch_group=np.minimum(fetch_group, valid_tiles[None]), valid_tiles=valid_tiles,
        multiplicity=shape.instances / counts.shape[0],
    )
