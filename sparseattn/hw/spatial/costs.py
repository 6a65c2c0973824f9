"""What one mesh core spends on each piece of an attention layer, from the single-core simulator's own stages.

The mesh never re-derives a core's costs: it runs the single-core pipeline's stages on the whole layer and keeps
their results per **cell** of the projected grid -- (source instance, query cell, key cell) -- instead of per query
cell, so that a dataflow can hand any set of cells to any core:

1. :func:`~sparseattn.hw.tiling.project` carries the trace's sparsity profile to the target shape on the core's
   formal tile, with enough cells per axis for every core to own several (:func:`cells_for`);
2. :func:`~sparseattn.hw.binding.bind` binds every trace operation to the core's unit, and
   :func:`~sparseattn.hw.timing.busy_cycles` / :func:`~sparseattn.hw.timing.per_unit_stage` give busy cycles
   per (unit, stage), spread over the 2-D cells by kept pairs, valid pairs or rows (the single core's rule, one axis
   finer: summed over key cells they are exactly the single core's per-query-cell cycles);
3. :func:`~sparseattn.hw.traffic.traffic` gives the bytes of every tensor the core's streaming schedule reads
   (K/V re-read per query tile: at 32k-1M tokens no head's K/V fits a core), which are spread over the cells by the
   same rule that produced them (Q/O by rows, a predictor's scan by valid keys, fetched K/V by fetched tiles, an
   extra read by kept or valid pairs).

So corrections to the single-core stages (binding, efficiencies, traffic rules) flow into every mesh number.
Arrays hold the cost of **one** target instance (head of one layer and batch entry) whose source instance is the
first index; target instance ``j`` maps to source ``j mod n`` (:meth:`~sparseattn.core.workload.Workload.scaled_to`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.shape import Shape
from ...core.workload import PAIR_BASES, Workload
from ..accelerator import at_shape, efficiency_of, lane_utilisations
from ..binding import Binding, bind
from ..mapping import Mapping
from ..schema import AcceleratorArch
from ..tiling import TiledSparsity, project
from ..timing import busy_cycles, per_unit_stage
from ..traffic import Traffic, traffic

MIN_CELLS, MAX_CELLS = 64, 128


def cells_for(cores: int) -> int:
    """Cells per axis of the projected grid: at least 64 (the single core's), two per core so a shard can be
    balanced, at most 128 (the source trace has 64 base tiles per axis, so finer cells add no information)."""
    return int(min(MAX_CELLS, max(MIN_CELLS, 2 * cores)))


@dataclass
class CoreCosts:
    """Per-cell costs of one target instance on one core (see the module docstring)."""

    shape: Shape
    core: AcceleratorArch
    mapping: Mapping
    ts: TiledSparsity
    bindings: list[Binding]
    target: Workload  # the trace's counts at the target shape
    busy: dict[tuple[str, str], np.ndarray]  # (unit, stage) -> [n, A, C] cycles
    kv_shared: np.ndarray  # [n, A, C] key-side bytes, the heads of a KV group sharing their fetches (single core)
    kv_alone: np.ndarray  # [n, A, C] key-side bytes of one head alone
    predict_alone: np.ndarray  # [n, A] of which the predictor's K scan (0 when the core's predictor reads no K)
    q_bytes: np.ndarray  # [n, A]
    o_bytes: np.ndarray  # [n, A]
    streamed: Traffic  # the single core's streaming traffic, GQA-shared (totals by tensor)
    notes: list[str] = field(default_factory=list)

    @property
    def sources(self) -> int:
        return self.kv_shared.shape[0]

    @property
    def units(self) -> list[str]:
        return list(dict.fromkeys(u for u, _ in self.busy))

    def unit_busy(self, stages: tuple[str, ...] | None = None) -> np.ndarray:
        """``[U, n, A, C]`` busy cycles per unit (summed over ``stages``, default all) in :attr:`units` order."""
        out = []
        for unit in self.units:
            parts = [a for (u, s), a in self.busy.items() if u == unit and (stages is None or s in stages)]
            out.append(sum(parts) if parts else np.zeros_like(self.kv_shared))
        return np.stack(out)

    def source_of(self, instances: np.ndarray) -> np.ndarray:
        return np.asarray(instances) % self.sources


def _weights(ts: TiledSparsity) -> dict[str, np.ndarray]:
    """Shares of a binding's work per 2-D cell that sum, over key cells, to :func:`~sparseattn.hw.timing.
    work_weights`' shares per query cell (row work follows the row's valid pairs)."""
    n = ts.kept.shape[0]
    kept = ts.kept / max(ts.kept.sum(), 1e-30)
    valid = np.broadcast_to(ts.valid[None] / (ts.valid.sum() * n), kept.shape)
    row_share = np.divide(ts.valid, ts.valid.sum(-1, keepdims=True), out=np.zeros_like(ts.valid),
                          where=ts.valid.sum(-1, keepdims=True) > 0)
    rows = ts.rows[:, None] / (ts.rows.sum() * n) * row_share
    return {"kept": kept, "valid": valid, "row": np.broadcast_to(rows[None], kept.shape)}


def _key_patterns(core: AcceleratorArch, mapping: Mapping, ts: TiledSparsity, trace: Workload) -> dict[str, np.ndarray]:
    """Per-cell weights ``[n, A, C]`` of each key-side tensor the streaming schedule reads (see the module
    docstring): the tensor's total bytes are spread over the cells in proportion."""
    n = ts.kept.shape[0]
    scan = np.broadcast_to(ts.valid_keys(mapping.prediction)[None], ts.kept.shape)
    grid = ts.q_tiles[:, None] * ts.k_tiles[None, :] * ts.tile.k
    shared = mapping.gqa_share and ts.shape.group_size > 1
    fetched = (ts.fetch_group if shared else ts.fetch) * grid[None]
    kept = ts.kept
    patterns = {"v": fetched, "k_predict": scan,
                "k": scan if core.operands.predict_k_bits and mapping.shares_k_read else fetched}
    for name in trace.extra_reads:
        patterns.setdefault(name, kept if trace.basis_of_read(name) in PAIR_BASES else scan)
    return {k: v / max(float(v.sum()), 1e-30) * n for k, v in patterns.items()}


def _spread(core: AcceleratorArch, mapping: Mapping, ts: TiledSparsity, trace: Workload,
            mem: Traffic) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Bytes of one target instance per cell: each key-side tensor ``[n, A, C]``, Q and O ``[n, A]``."""
    n, m = ts.kept.shape[0], ts.multiplicity
    rows = np.broadcast_to(ts.rows[None] / ts.rows.sum(), (n, len(ts.rows)))
    patterns = _key_patterns(core, mapping, ts, trace)
    keys = {t: patterns.get(t, patterns["k"]) * b / (m * n) for t, b in mem.dram_bytes.items() if t not in ("q", "o")}
    q = rows * mem.dram_bytes.get("q", 0.0) / (m * n)
    o = rows * mem.dram_bytes.get("o", 0.0) / (m * n)
    return keys, q, o


def core_costs(core: AcceleratorArch, trace: Workload, shape: Shape | None, mapping: Mapping | None,
               cells: int) -> CoreCosts:
    """Per-cell costs of ``trace`` carried to ``shape`` on ``core`` under ``mapping`` (see the module
    docstring)."""
    mapping = mapping or core.mapping
    target = at_shape(trace, shape)
    shape = target.shape
    ts = project(trace, shape, mapping.formal, max_cells=cells)
    bindings = bind(core, target)
    lanes, notes = lane_utilisations(core, trace, shape.head_dim)
    units = {u.name: u for u in core.units}
    total = per_unit_stage(busy_cycles(bindings, _weights(ts), efficiency_of(mapping, shape.head_dim, lanes)), units)
    busy = {key: np.asarray(a) / ts.multiplicity for key, a in total.items()}
    streaming = mapping.model_copy(update={"kv_residency": "never"})
    shared = traffic(core, streaming, target, ts)
    alone_map = streaming.model_copy(update={"gqa_share": False})
    keys_shared, q, o = _spread(core, streaming, ts, target, shared)
    keys_alone, _, _ = _spread(core, alone_map, ts, target, traffic(core, alone_map, target, ts))
    predictor = "k_predict" if "k_predict" in keys_alone else "k"
    scans = core.operands.predict_k_bits and (predictor == "k_predict" or mapping.shares_k_read)
    return CoreCosts(shape=shape, core=core, mapping=mapping, ts=ts, bindings=bindings, target=target, busy=busy,
                     kv_shared=sum(keys_shared.values()), kv_alone=sum(keys_alone.values()), q_bytes=q, o_bytes=o,
                     predict_alone=keys_alone[predictor].sum(-1) if scans else np.zeros_like(q), streamed=shared,
                     notes=notes + shared.notes)
