"""The dataflows of one attention layer on the mesh, each built as :class:`~.plan.Stream` s from a core's per-cell
costs (:mod:`.costs`). Design choices (STAR's body is not public, only its abstract, arXiv 2512.20198):

(a) **KV-sequence sharding** (``tree``): a region's cores split the key cells of a KV group; a query tile is read
    once and multicast down a spanning tree; every core predicts (DLZS), sorts (SADS already keeps top-(k/n) per
    sub-segment, so a shard sorts alone) and runs SU-FA on its keys, and the partials (m, l, o) are merged by
    log-sum-exp up the same tree (SU-FA's "different-tiles synchronisation", SOFA Fig. 10 line 6), ``o`` at the
    core's ``q_bits`` and ``m``, ``l`` at ``orchestration.partial_bits``. With ``balance`` the key cells are dealt
    zig-zag (0, 1, .., P-1, P-1, .., 0, ..), so a causal query tile finds work on every core; without it each core
    takes a contiguous key range (the naive split, whose last cores idle on early query tiles).
(b) **Query sharding with a K/V ring** (``ring``): the region's cores hold query tiles (one head's tile of a query
    cell each); the KV group's K/V chunks enter the ring's head from HBM once per wave and pass core to core along
    a snake path, so a K/V byte read from HBM serves every core of the region. With ``balance`` the query units are
    dealt in descending order of their modelled cycles -- which follow the trace's kept-pair counts -- snake-wise,
    so the units of a wave have equal work (and a shared causal extent); without it each core takes a contiguous
    block of query cells.
(c) **Head parallel** (``local``): every core takes whole KV groups and streams their K/V from HBM itself (the
    single core's schedule on 1/P of the heads).
(d) **Hybrid** (:mod:`.orchestrator`): the mesh is cut into equal rectangular regions; KV groups are dealt to
    regions (heaviest first to the least loaded region, with ``balance``; round robin without) and each region runs
    (a) or (b). (a), (b) and (c) are its special cases: one region, or one core per region.

A core's work on a set of cells costs what the single core's stages say: per head and query cell the busiest unit
over the core's key cells (stages overlap within a core, as in the single-core model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..binding import passes, unit_for
from .costs import CoreCosts
from .plan import Stream

MERGE_OPS = (("exp", "partial", 2), ("compare", "partial", 1), ("mul", "o", 2), ("mul", "partial", 2),
             ("add", "o", 1), ("add", "partial", 1))  # (op, operand, count per row; "o" ops are per head_dim)


@dataclass
class Tables:
    """Cost tables of one workload on one core, shared by every dataflow (derived from :class:`CoreCosts`)."""

    costs: CoreCosts
    partial_bits: int
    stages: tuple[str, ...] | None = None  # restrict compute to these stages (the stage-isolated baseline)
    _by_core: dict = field(default_factory=dict)

    @cached_property
    def unit_busy(self) -> np.ndarray:
        return self.costs.unit_busy(self.stages)

    @cached_property
    def pass_full(self) -> np.ndarray:
        """``[n, A]`` cycles of one head's query cell against all its keys (busiest unit)."""
        return self.unit_busy.sum(-1).max(0)

    @cached_property
    def kv_tile(self) -> np.ndarray:
        """``[n, A, C]`` key-side bytes one query tile of one head reads per key cell (no GQA sharing)."""
        return self.costs.kv_alone / self.costs.ts.q_tiles[None, :, None]

    @cached_property
    def chunk_share(self) -> np.ndarray:
        """``[n, A, C]`` share of a query cell's pass time spent on each key cell: the busiest unit on each key cell,
        normalised (within a pass the stages overlap across key tiles, so the slowest unit on a chunk paces it)."""
        part = self.unit_busy.max(axis=0)
        return part / np.maximum(part.sum(-1, keepdims=True), 1e-30)

    @property
    def rows(self) -> np.ndarray:
        return self.costs.ts.rows.astype(np.float64)

    @property
    def cells(self) -> int:
        return self.costs.kv_alone.shape[2]

    def source(self, instances: np.ndarray) -> np.ndarray:
        return self.costs.source_of(instances)

    # ------------------------------------------------------------------ KV sharding
    def key_owner(self, cores: int, balance: bool) -> np.ndarray:
        """``[C]`` the core (tree position) that owns each key cell: zig-zag dealt with ``balance``, contiguous
        ranges without."""
        c = np.arange(self.cells)
        if not balance:
            return c * cores // self.cells
        k = c % (2 * cores)
        return np.where(k < cores, k, 2 * cores - 1 - k)

    def by_core(self, cores: int, balance: bool) -> tuple[np.ndarray, np.ndarray]:
        """Unit cycles ``[U, n, A, P]`` and key-side bytes ``[n, A, P]`` of each core's key cells (GQA-shared)."""
        key = (cores, balance)
        if key not in self._by_core:
            owner = self.key_owner(cores, balance)
            order = np.argsort(owner, kind="stable")
            starts = np.searchsorted(owner[order], np.arange(cores))  # == cells for cores past the last owner

            def per_core(x: np.ndarray) -> np.ndarray:  # a zero cell at the end keeps every start a valid index
                padded = np.concatenate([x[..., order], np.zeros((*x.shape[:-1], 1))], axis=-1)
                return np.add.reduceat(padded, starts, axis=-1)

            ub, kv = per_core(self.unit_busy), per_core(self.costs.kv_shared)
            empty = np.bincount(owner, minlength=cores) == 0
            ub[..., empty], kv[..., empty] = 0.0, 0.0
            self._by_core[key] = (ub, kv)
        return self._by_core[key]

    def tile_bytes(self) -> dict[str, float]:
        """Bytes of one head's formal Q tile, K/V tile (K at the wider of the predictor's and the formal width), O
        tile and partial (m, l, o) tile: what a pipeline must move before its first step and after its last."""
        core, d, tile = self.costs.core, self.costs.shape.head_dim, self.costs.mapping.formal
        ops = core.operands
        k_bits = max(ops.kv_bits, ops.predict_k_bits or 0)
        return {"q": tile.q * d * ops.q_bits / 8, "kv": tile.k * d * (k_bits + ops.kv_bits) / 8,
                "o": tile.q * d * ops.q_bits / 8, "partial": tile.q * self.partial_bytes_per_row()}

    def partial_bytes_per_row(self) -> float:
        ops, d = self.costs.core.operands, self.costs.shape.head_dim
        return (d * ops.q_bits + 2 * self.partial_bits) / 8

    def merge_ops_per_row(self) -> dict[tuple[str, str, int], float]:
        """Operations to merge one partial row into another by log-sum-exp: ``m = max(m1, m2)``, two exponentials,
        ``l = a l1 + b l2``, ``o = a o1 + b o2`` (per head_dim for ``o``)."""
        d, q_bits = self.costs.shape.head_dim, self.costs.core.operands.q_bits
        out: dict[tuple[str, str, int], float] = {}
        for op, operand, n in MERGE_OPS:
            bits = q_bits if operand == "o" else self.partial_bits
            key = ("softmax", op, bits)
            out[key] = out.get(key, 0.0) + n * (d if operand == "o" else 1)
        return out

    @cached_property
    def merge_cycles_per_row(self) -> float:
        """Cycles of one row's merge on the core's softmax units (units in parallel, ops on one unit in turn)."""
        per_unit: dict[str, float] = {}
        for (stage, op, bits), n in self.merge_ops_per_row().items():
            unit = unit_for(self.costs.core, stage, op)
            if unit is None:
                raise ValueError(f"core {self.costs.core.name!r} has no unit for {stage}/{op}: it cannot merge "
                                 "partials (KV sharding needs one)")
            per_unit[unit.name] = per_unit.get(unit.name, 0.0) + n * passes(unit, bits) / (unit.count * unit.rate(op))
        return max(per_unit.values())


def layer_groups(costs: CoreCosts, layer: int) -> list[np.ndarray]:
    """The target instances of each KV group of ``layer`` (layer-major, then batch, then head)."""
    s = costs.shape
    g = s.group_size
    out = []
    for b in range(s.batch):
        base = (layer * s.batch + b) * s.heads
        out += [base + np.arange(kv * g, (kv + 1) * g) for kv in range(s.kv_heads)]
    return out


def group_work(t: Tables, groups: list[np.ndarray]) -> np.ndarray:
    """Modelled cycles of each group on one core (kept-pair aware: the formal stages follow the kept pairs)."""
    return np.array([t.pass_full[t.source(g)].sum() for g in groups])


def deal_groups(work: np.ndarray, regions: int, balance: bool) -> list[list[int]]:
    """Groups per region: heaviest first to the least loaded region (``balance``), else round robin."""
    out: list[list[int]] = [[] for _ in range(regions)]
    if not balance:
        for g in range(len(work)):
            out[g % regions].append(g)
        return out
    load = np.zeros(regions)
    for g in np.argsort(-work, kind="stable"):
        r = int(load.argmin())
        out[r].append(int(g))
        load[r] += work[g]
    return [sorted(o) for o in out]


# ---------------------------------------------------------------------------------------------- (c) local
def local_stream(t: Tables, groups: list[np.ndarray], core: int) -> Stream:
    """Head parallel: ``core`` runs the single core's schedule on ``groups`` (one step per query cell)."""
    comp, read, write = [], [], []
    for inst in groups:
        src = t.source(inst)
        comp.append(t.pass_full[src].sum(0))
        read.append(t.costs.kv_shared[src].sum(axis=(0, 2)) + t.costs.q_bytes[src].sum(0))
        write.append(t.costs.o_bytes[src].sum(0))
    tb = t.tile_bytes()
    return local_from(core, comp, read, write, tb["q"] + tb["kv"], tb["o"])


def local_from(core: int, comp: list[np.ndarray], read: list[np.ndarray], write: list[np.ndarray],
               first: float = 0.0, last: float = 0.0) -> Stream:
    """A ``local`` stream of one core from per-step compute, reads and writes (concatenated in order)."""

    def column(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts)[:, None] if parts else np.zeros((0, 1))

    return Stream("local", np.array([core]), column(comp), column(read), column(write), first_bytes=first,
                  last_bytes=last)


def idle_stream(kind: str, cores: np.ndarray, parent: np.ndarray | None = None) -> Stream:
    """A region with no KV group to run this layer."""
    none = np.zeros((0, len(cores)))
    return Stream(kind, cores, none, none, none, relay=np.zeros(0), down=np.zeros(0), up=np.zeros(0), merge=none,
                  root_write=np.zeros(0), parent=parent)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- (b) ring
def _deal_units(work: np.ndarray, cores: int, balance: bool) -> np.ndarray:
    """``[W, P]`` unit index per wave and core (-1: idle): snake-dealt by descending work, or contiguous blocks."""
    n = len(work)
    waves = -(-n // cores)
    grid = np.full(waves * cores, -1)
    if balance:
        order = np.argsort(-work, kind="stable")
        k = np.arange(n)
        wave, pos = k // cores, k % cores
        core = np.where(wave % 2 == 0, pos, cores - 1 - pos)
        grid[wave * cores + core] = order
        return grid.reshape(waves, cores)
    per = -(-n // cores)
    k = np.arange(n)
    grid[(k % per) * cores + k // per] = k
    return grid.reshape(waves, cores)


def ring_stream(t: Tables, groups: list[np.ndarray], cores: np.ndarray, balance: bool, detail: bool = False) -> Stream:
    """Query sharding with K/V passed along a ring through ``cores`` (snake order, head first)."""
    p = len(cores)
    if not groups:
        return idle_stream("ring", cores)
    parts: dict[str, list] = {k: [] for k in ("comp", "read", "write", "relay", "cc", "cb")}
    for inst in groups:
        src = np.repeat(t.source(inst), t.pass_full.shape[1])
        cell = np.tile(np.arange(t.pass_full.shape[1]), len(inst))
        work = t.pass_full[src, cell]
        grid = _deal_units(work, p, balance)
        live = grid >= 0
        u = np.where(live, grid, 0)
        s, a = src[u], cell[u]
        parts["comp"].append(np.where(live, work[u], 0.0))
        parts["read"].append(np.where(live, t.costs.q_bytes[s, a], 0.0))
        parts["write"].append(np.where(live, t.costs.o_bytes[s, a], 0.0))
        tiles = np.where(live, t.costs.ts.q_tiles[a], 0).max(axis=1)  # passes of the K/V stream per wave
        chunk = np.where(live[..., None], t.kv_tile[s, a], 0.0).max(axis=1) * tiles[:, None]  # [W, C]
        parts["relay"].append(chunk.sum(-1))
        if detail:
            parts["cb"].append(chunk)
            parts["cc"].append(np.where(live, work[u], 0.0)[..., None] * t.chunk_share[s, a])
    cat = {k: np.concatenate(v) if v else None for k, v in parts.items()}
    tb = t.tile_bytes()
    return Stream("ring", cores, cat["comp"], cat["read"], cat["write"], relay=cat["relay"],
                  chunk_compute=cat["cc"], chunk_bytes=cat["cb"], first_bytes=tb["q"] + tb["kv"], last_bytes=tb["o"])


# ---------------------------------------------------------------------------------------------- (a) tree
def tree_stream(t: Tables, groups: list[np.ndarray], cores: np.ndarray, parent: np.ndarray, balance: bool) -> Stream:
    """KV-sequence sharding over ``cores`` (tree order, root first) with a log-sum-exp reduction up ``parent``."""
    p = len(cores)
    if not groups:
        return idle_stream("tree", cores, parent)
    ub, kv = t.by_core(p, balance)
    children = np.bincount(parent[parent >= 0], minlength=p).astype(np.float64)
    per_row = t.partial_bytes_per_row()
    parts: dict[str, list] = {k: [] for k in ("comp", "read", "down", "up", "merge", "root")}
    for inst in groups:
        src = t.source(inst)
        rows = t.rows * len(inst)  # the group's query rows of each cell
        parts["comp"].append(ub[:, src].max(axis=0).sum(axis=0))  # [A, P]: per head the busiest unit
        parts["read"].append(kv[src].sum(axis=0))
        parts["down"].append(t.costs.q_bytes[src].sum(axis=0))
        parts["up"].append(rows * per_row)
        parts["merge"].append(rows[:, None] * children[None, :] * t.merge_cycles_per_row)
        parts["root"].append(t.costs.o_bytes[src].sum(axis=0))
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    tb = t.tile_bytes()
    return Stream("tree", cores, cat["comp"], cat["read"], np.zeros_like(cat["comp"]), down=cat["down"],
                  up=cat["up"], merge=cat["merge"], root_write=cat["root"], parent=parent,
                  first_bytes=tb["q"] + tb["kv"], last_bytes=tb["partial"])


def merge_rows(t: Tables, groups: list[np.ndarray], cores: int) -> float:
    """Partial rows merged in one layer by a tree of ``cores`` (each non-root core's partial is merged once)."""
    return float(sum(t.rows.sum() * len(g) for g in groups) * (cores - 1))
