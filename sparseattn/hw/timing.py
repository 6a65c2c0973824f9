"""Stage 3 of the simulator: busy cycles per unit and stage, their overlap, memory time and the run's latency.

Per (source instance, query cell) of the projected grid (:mod:`~sparseattn.hw.tiling`):

1. **Busy cycles.** A binding's work is ``count x passes / (PEs x ops per PE per cycle x efficiency)``, spread over
   the cells by kept pairs, rows or valid pairs (:mod:`~sparseattn.hw.binding`). The efficiency is the unit's
   attained fraction of peak -- its ``utilisation`` field, or for bit-serial lanes with a ``lanes`` model the
   utilisation modelled from the trace's samples (:mod:`~sparseattn.hw.bitserial`) -- times, for systolic arrays
   (``rows`` x ``cols``), the fill/drain efficiency of one formal tile (:func:`systolic_efficiency`).
2. **Per unit and stage.** A PE whose ops are ``concurrent`` spends the maximum over its op kinds, otherwise the sum.
3. **Overlap** (``mapping.stage_overlap``): overlapping stages cost the busiest unit's time over all stages;
   otherwise the stages run one after another, each as long as its busiest unit.
4. **Memory.** DRAM bytes per cell over the attained bandwidth; ``mapping.double_buffered`` overlaps it with
   compute (a cell costs ``max(compute, memory)``), otherwise they add. The first DRAM access latency is paid once
   (``fixed_cycles``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .binding import Binding, Spread
from .mapping import Mapping, Tile
from .schema import AcceleratorArch, ComputeUnit
from .systolic import gemm_cycles
from .tiling import TiledSparsity
from .traffic import Traffic


@dataclass
class Timing:
    """Cycles of one run (arrays are per source instance x query cell, all target instances included)."""

    busy: dict[tuple[str, str], np.ndarray]  # (unit, stage) -> busy cycles
    compute: np.ndarray
    memory: np.ndarray
    cycles: float
    fixed_cycles: float  # the first DRAM access, paid once
    latency_s: float
    utilisation: dict[str, float]  # busy / total cycles, per unit
    stage_cycles: dict[str, float]  # busy cycles per stage summed over units, and "memory"
    compute_bound_fraction: float  # cells whose compute time is at least their memory time


def work_weights(ts: TiledSparsity) -> dict[Spread, np.ndarray]:
    """The share of a binding's work each (source instance, query cell) gets, for each way of spreading it."""
    kept = ts.kept.sum(-1)
    kept = kept / max(kept.sum(), 1e-30)
    n = kept.shape[0]
    valid = np.broadcast_to(ts.valid.sum(-1)[None], kept.shape) / (ts.valid.sum() * n)
    rows = np.broadcast_to(ts.rows[None].astype(np.float64), kept.shape) / (ts.rows.sum() * n)
    return {"kept": kept, "valid": valid, "row": rows}


def systolic_efficiency(unit: ComputeUnit, stage: str, tile: Tile, head_dim: int) -> float:
    """Ideal cycles / modelled cycles of one formal tile's Q.K^T (``tile.q x head_dim x tile.k``) or P.V on a
    systolic unit; 1 for other units and stages.

    ``overlap_folds`` (the default) is **our model**: the next fold's operands enter while the last one drains, so
    fill and drain are paid once per tile (``folds x K + rows + cols - 2`` cycles); for a single fold it equals
    :func:`~sparseattn.hw.systolic.gemm_cycles` and it is never above it. ``overlap_folds: false`` is the
    fold-by-fold count of ``gemm_cycles`` (SCALE-Sim's model, checked against it in the tests).
    """
    if unit.rows is None or unit.cols is None or stage not in ("qk", "pv"):
        return 1.0
    m, k, n = (tile.q, head_dim, tile.k) if stage == "qk" else (tile.q, tile.k, head_dim)
    ideal = m * k * n / (unit.rows * unit.cols)
    return ideal / tile_cycles(m, k, n, unit.rows, unit.cols, unit.overlap_folds)


def tile_cycles(m: int, k: int, n: int, rows: int, cols: int, overlap_folds: bool) -> int:
    """Cycles of an output-stationary ``(m x k) @ (k x n)`` on a ``rows x cols`` array, folds overlapped or not."""
    if overlap_folds:
        folds = -(-m // rows) * -(-n // cols)
        return folds * k + rows + cols - 2
    return gemm_cycles(m, k, n, rows, cols, "os")


def busy_cycles(bindings: list[Binding], weights: dict[Spread, np.ndarray],
                efficiency: Callable[[ComputeUnit, str], float]) -> dict[tuple[str, str, str], np.ndarray]:
    """Busy cycles per (unit, stage, op) and cell."""
    out: dict[tuple[str, str, str], np.ndarray] = {}
    for b in bindings:
        u = b.unit
        cyc = b.count * b.passes / (u.count * u.rate(b.op) * efficiency(u, b.stage))
        slot = (u.name, b.stage, b.op)
        out[slot] = out.get(slot, 0.0) + cyc * weights[b.spread]
    return out


def per_unit_stage(per_op: dict[tuple[str, str, str], np.ndarray],
                   units: dict[str, ComputeUnit]) -> dict[tuple[str, str], np.ndarray]:
    """Busy cycles per (unit, stage): concurrent op kinds of a PE overlap, others add."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for (uname, stage, _op), arr in per_op.items():
        prev = out.get((uname, stage))
        if prev is None:
            out[(uname, stage)] = arr
        else:
            out[(uname, stage)] = np.maximum(prev, arr) if units[uname].concurrent else prev + arr
    return out


def compute_cycles(busy: dict[tuple[str, str], np.ndarray], overlap: bool) -> np.ndarray:
    """Compute cycles per cell: the busiest unit over all stages when stages overlap, else the sum over stages of
    each stage's busiest unit."""
    if overlap:
        per_unit: dict[str, np.ndarray] = {}
        for (uname, _stage), arr in busy.items():
            per_unit[uname] = per_unit.get(uname, 0) + arr
        return np.max(np.stack(list(per_unit.values())), axis=0)
    stages = sorted({s for (_u, s) in busy})
    return sum(np.max(np.stack([a for (_u, s), a in busy.items() if s == stage]), axis=0) for stage in stages)


def timing(arch: AcceleratorArch, mapping: Mapping, bindings: list[Binding], ts: TiledSparsity, mem: Traffic,
           efficiency: Callable[[ComputeUnit, str], float]) -> Timing:
    """Stage 3: see the module docstring. ``efficiency(unit, stage)`` is the unit's attained fraction of peak."""
    units = {u.name: u for u in arch.units}
    busy = per_unit_stage(busy_cycles(bindings, work_weights(ts), efficiency), units)
    compute = compute_cycles(busy, mapping.stage_overlap)
    clock_hz = arch.clock_mhz * 1e6
    memory = mem.per_cell / (arch.dram.gbps * 1e9 * arch.dram.efficiency) * clock_hz
    per_cell = np.maximum(compute, memory) if mapping.double_buffered else compute + memory
    fixed = arch.dram.latency_ns * 1e-9 * clock_hz
    cycles = float(per_cell.sum()) + fixed
    stage_cycles = {s: float(sum(a.sum() for (_u, st), a in busy.items() if st == s))
                    for s in sorted({s for (_u, s) in busy})}
    stage_cycles["memory"] = float(memory.sum())
    utilisation = {n: sum(float(a.sum()) for (u, _s), a in busy.items() if u == n) / cycles if cycles else 0.0
                   for n in units}
    return Timing(busy=busy, compute=compute, memory=memory, cycles=cycles, fixed_cycles=fixed,
                  latency_s=cycles / clock_hz, utilisation=utilisation, stage_cycles=stage_cycles,
                  compute_bound_fraction=float((compute >= memory).mean()))
