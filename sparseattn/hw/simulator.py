"""Pipeline simulator: a trace on an accelerator -> latency, utilisation, energy and area breakdowns.

Model (per query tile and stage, DESIGN.md "methods produce traces, hardware models consume them"):

1. **Mapping.** Every trace operation ``(stage, op, bits)`` runs on the first unit whose ``executes`` patterns
   match; an unmapped operation is an error naming it. An operation wider than the unit takes
   ``ceil(bits / unit.bits)`` passes (bit-sliced); a narrower one packs ``unit.bits // bits`` per PE when the
   unit is ``subword``. Cycles = ops x passes / (PEs x ops per PE per cycle x utilisation); a PE whose ops are
   ``concurrent`` spends the maximum over its op kinds, otherwise the sum. Systolic arrays (``rows`` x
   ``cols``) also pay fill and drain: once per tile when ``overlap_folds`` (the default: the next fold's operands
   enter while the last one drains), or per fold as in SCALE-Sim (:func:`~sparseattn.hw.systolic.gemm_cycles`,
   validated against SCALE-Sim within 0.4%).
2. **Tiles.** Work on kept pairs (``qk``, ``softmax``, ``pv``) is spread over query tiles by their kept pairs;
   prediction and selection by their valid pairs. Memory per tile comes from :mod:`~sparseattn.hw.tiling`.
3. **Overlap.** Within a tile, ``pipelined`` architectures overlap stages (a unit's busy time across stages is
   what counts, the slowest unit sets the tile time); otherwise stages run one after another. With
   ``double_buffered`` DRAM transfers overlap compute (tile time = max(compute, memory)), otherwise they add.
   One DRAM latency is added for the first tile.
4. **Energy** by (component, action): each operation at its width and the node / voltage
   (:mod:`~sparseattn.hw.technology`), SRAM reads of K/V/Q and writes of everything fetched, DRAM bytes x
   pJ/bit, and leakage of logic and SRAM over the run. **Area** by component: the published module area where
   the config gives one, otherwise PE arithmetic x overhead, plus SRAM by KB.

Everything is deterministic: the same trace, architecture and tiling give the same result.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.shape import Shape
from ..core.workload import OpKey, Per, Workload
from .gpu import attention_flops, simulate_gpu
from .schema import PE_CONTENTS, AcceleratorArch, ComputeUnit, ConfigError, GpuArch, UnitKind, load_arch
from .systolic import gemm_cycles
from .technology import Technology, load_technology
from .tiling import Tiling, check_fit, project, traffic
from .workloads import KEPT_STAGES, load_trace


@dataclass
class SimResult:
    """What a simulation measured. ``energy_pj`` is keyed ``"component/action"``; everything serialises."""

    arch: str
    method: str
    workload: dict[str, Any]
    normalised: str
    clock_mhz: float
    cycles: float
    latency_s: float
    dense_ops: float  # 4 x valid pairs x head_dim: the dense-equivalent operations of the workload
    energy_pj: dict[str, float] = field(default_factory=dict)
    area_mm2: dict[str, float] = field(default_factory=dict)
    dram_bytes: dict[str, float] = field(default_factory=dict)
    utilisation: dict[str, float] = field(default_factory=dict)
    stage_cycles: dict[str, float] = field(default_factory=dict)
    compute_bound_fraction: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def energy_j(self) -> float:
        return sum(self.energy_pj.values()) * 1e-12

    @property
    def power_w(self) -> float:
        return self.energy_j / self.latency_s

    @property
    def total_area_mm2(self) -> float:
        return sum(self.area_mm2.values())

    @property
    def effective_gops(self) -> float:
        """Dense-equivalent throughput (the papers' "effective GOPS": dense ops / time)."""
        return self.dense_ops / self.latency_s / 1e9

    @property
    def gops_per_w(self) -> float:
        return self.dense_ops / self.energy_j / 1e9

    @property
    def gops_per_mm2(self) -> float:
        return self.effective_gops / self.total_area_mm2

    def energy_by_component(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, pj in self.energy_pj.items():
            comp = key.split("/", 1)[0]
            out[comp] = out.get(comp, 0.0) + pj
        return out

    def summary(self) -> dict[str, float]:
        return {
            "latency_ms": self.latency_s * 1e3,
            "energy_mj": self.energy_j * 1e3,
            "power_w": self.power_w,
            "area_mm2": self.total_area_mm2,
            "effective_gops": self.effective_gops,
            "gops_per_w": self.gops_per_w,
            "gops_per_mm2": self.gops_per_mm2,
            "dram_mb": sum(self.dram_bytes.values()) / 1e6,
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary()
        return data

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2))

    def to_csv(self) -> str:
        """Long format: ``section,key,value`` rows for the summary and every breakdown."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["section", "key", "value"])
        for k, v in self.summary().items():
            w.writerow(["summary", k, f"{v:.6g}"])
        for section in ("energy_pj", "area_mm2", "dram_bytes", "utilisation", "stage_cycles"):
            for k, v in getattr(self, section).items():
                w.writerow([section, k, f"{v:.6g}"])
        return buf.getvalue()


# ------------------------------------------------------------------------------------------------ mapping
def map_ops(arch: AcceleratorArch, trace: Workload) -> dict[tuple[OpKey, Per], ComputeUnit]:
    """The unit each trace term runs on; raises :class:`ConfigError` listing every unmapped operation."""
    mapping, missing = {}, []
    for term in trace.terms:
        key = term[0]
        unit = next((u for u in arch.units if u.runs(key.stage, key.op)), None)
        if unit is None:
            missing.append(f"{key.stage}/{key.op}/{key.bits}")
        else:
            mapping[term] = unit
    if missing:
        raise ConfigError(
            f"architecture {arch.name!r} has no unit that executes {sorted(set(missing))} of the "
            f"{trace.meta.get('method')!r} trace; add a matching 'stage/op' pattern to a unit's executes list "
            f"(units: {', '.join(f'{u.name}={u.executes}' for u in arch.units)})"
        )
    return mapping


def passes(unit: ComputeUnit, bits: int) -> float:
    """PE cycles one operation of ``bits`` takes on ``unit`` (bit-sliced when wider, packed when subword)."""
    if bits > unit.bits:
        return float(math.ceil(bits / unit.bits))
    if unit.subword:
        return 1.0 / max(1, unit.bits // bits)
    return 1.0


def _systolic_efficiency(unit: ComputeUnit, stage: str, tiling: Tiling, head_dim: int) -> float:
    if unit.rows is None or unit.cols is None or stage not in ("qk", "pv"):
        return 1.0
    m, k, n = (tiling.q_tile, head_dim, tiling.k_tile) if stage == "qk" else (tiling.q_tile, tiling.k_tile, head_dim)
    ideal = m * k * n / (unit.rows * unit.cols)
    if unit.overlap_folds:  # the next fold's operands enter while this one drains: one fill/drain per tile
        folds = -(-m // unit.rows) * -(-n // unit.cols)
        return ideal / (folds * k + unit.rows + unit.cols - 2)
    return ideal / gemm_cycles(m, k, n, unit.rows, unit.cols, "os")


def unit_area_mm2(unit: ComputeUnit, node_nm: float, tech: Technology) -> float:
    if unit.area_mm2 is not None:
        return unit.area_mm2
    contents = dict(PE_CONTENTS[unit.kind])
    if unit.kind in (UnitKind.BIT_SERIAL_LANES, UnitKind.ADDER_TREE):
        contents = {op: n * unit.rate(op) for op, n in contents.items()}
    return unit.count * tech.pe_area_mm2(contents, unit.bits, node_nm)


def peak_formal_ops(arch: AcceleratorArch) -> float:
    """Peak dense-attention throughput of the units that run Q.K^T and P.V MACs, ops/s (2 per MAC).

    Bit-serial lanes count their AND-tree inputs per cycle divided by the plane width as 8-bit-MAC equivalents
    (PADE: 128 lanes x 41 / 8). Used to normalise comparisons to equal peak compute.
    """
    formal = {}
    for stage, op in (("qk", "mac"), ("qk", "add"), ("pv", "mac")):  # the unit each would be mapped to
        unit = next((u for u in arch.units if u.runs(stage, op)), None)
        if unit is not None and (op == "mac" or unit.kind == UnitKind.BIT_SERIAL_LANES):
            formal[unit.name] = unit
    macs = 0.0
    for u in formal.values():
        if u.kind == UnitKind.BIT_SERIAL_LANES:
            macs += u.count * u.rate("add") / u.bits
        else:
            macs += u.count * u.rate("mac")
    return 2 * macs * arch.clock_mhz * 1e6


# ------------------------------------------------------------------------------------------------ simulate
def simulate(
    arch: AcceleratorArch | GpuArch | str | Path,
    trace: Workload | str | Path,
    shape: Shape | None = None,
    tiling: Tiling | None = None,
    tech: Technology | None = None,
) -> SimResult:
    """Simulate ``trace`` (carried to ``shape`` when given) on ``arch``; see the module docstring.

    ``arch`` and ``trace`` may be objects, bundled names (``"pade"``) or file paths. A GPU runs dense attention
    of the shape (:mod:`~sparseattn.hw.gpu`).
    """
    if isinstance(arch, str | Path):
        arch = load_arch(arch)
    if isinstance(trace, str | Path):
        trace = load_trace(trace)
    if not isinstance(trace, Workload):
        raise ConfigError(f"trace must be a Workload, a bundled trace name or a JSON path, got {type(trace).__name__}")
    if isinstance(arch, GpuArch):
        return simulate_gpu(arch, shape or trace.shape)
    if not isinstance(arch, AcceleratorArch):
        raise ConfigError(f"arch must be an architecture, a bundled name or a YAML path, got {type(arch).__name__}")
    tech = tech or load_technology()
    tiling = tiling or Tiling.of(arch)
    if trace.profile is None:
        raise ConfigError("the trace has no sparsity profile")
    source = trace
    if shape is not None and shape != trace.shape:
        trace = trace.scaled_to(shape, with_profile=False)  # the profile is projected by `project` below
    shape = trace.shape
    check_fit(arch, shape, tiling)
    ts = project(source, shape, tiling)
    mem = traffic(arch, trace, ts)
    mapping = map_ops(arch, trace)
    vdd = arch.vdd

    # work weights per (source instance, query cell)
    kept_w = ts.kept.sum(-1)
    kept_w = kept_w / max(kept_w.sum(), 1e-30)
    valid_w = np.broadcast_to(ts.valid.sum(-1)[None], kept_w.shape) / (ts.valid.sum() * kept_w.shape[0])
    row_w = np.broadcast_to(ts.rows[None].astype(np.float64), kept_w.shape) / (ts.rows.sum() * kept_w.shape[0])

    # busy cycles per (unit, stage, op kind) and query tile, and the energy of every operation
    weights = {"kept": kept_w, "valid": valid_w, "row": row_w}
    per_us: dict[tuple[str, str, str], np.ndarray] = {}
    energy: dict[str, float] = {}
    for (key, per), count in trace.terms.items():
        if count == 0:
            continue
        unit = mapping[(key, per)]
        eff = unit.utilisation * _systolic_efficiency(unit, key.stage, tiling, shape.head_dim)
        cyc = count * passes(unit, key.bits) / (unit.count * unit.rate(key.op) * eff)
        basis = "kept" if key.stage in KEPT_STAGES and per in (Per.PAIR, Per.PAIR_DIM, Per.PAIR_LOG) else (
            "row" if per in (Per.ROW, Per.ROW_DIM) else "valid")
        slot = (unit.name, key.stage, key.op)
        per_us[slot] = per_us.get(slot, 0.0) + cyc * weights[basis]
        action = f"{unit.name}/{key.stage}:{key.op}{key.bits}"
        energy[action] = energy.get(action, 0.0) + count * tech.op_energy_pj(key.op, key.bits, arch.node_nm, vdd)

    units = {u.name: u for u in arch.units}
    stages = sorted({s for (_, s, _) in per_us})
    # per (unit, stage): concurrent op kinds of a PE overlap, others add
    unit_stage: dict[tuple[str, str], np.ndarray] = {}
    for (uname, stage, _op), arr in per_us.items():
        prev = unit_stage.get((uname, stage))
        if prev is None:
            unit_stage[(uname, stage)] = arr
        elif units[uname].concurrent:
            unit_stage[(uname, stage)] = np.maximum(prev, arr)
        else:
            unit_stage[(uname, stage)] = prev + arr
    if arch.dataflow.pipelined:
        unit_total: dict[str, np.ndarray] = {}
        for (uname, _stage), arr in unit_stage.items():
            unit_total[uname] = unit_total.get(uname, 0) + arr
        compute = np.max(np.stack(list(unit_total.values())), axis=0)
    else:
        compute = np.zeros_like(kept_w)
        for stage in stages:
            arrs = [a for (u, s), a in unit_stage.items() if s == stage]
            compute = compute + np.max(np.stack(arrs), axis=0)
    clock_hz = arch.clock_mhz * 1e6
    bw = arch.dram.gbps * 1e9 * arch.dram.efficiency
    memory = mem.per_cell / bw * clock_hz  # cycles per (instance, cell)
    tile_cycles = np.maximum(compute, memory) if arch.dataflow.double_buffered else compute + memory
    cycles = float(tile_cycles.sum()) + arch.dram.latency_ns * 1e-9 * clock_hz
    latency = cycles / clock_hz

    # energy: memories and leakage
    dram_pj_bit = arch.dram.pj_per_bit or tech.dram_pj_per_bit(arch.dram.kind)
    for tensor, nbytes in mem.dram_bytes.items():
        energy[f"dram/{tensor}"] = nbytes * 8 * dram_pj_bit
    for tensor, nbytes in mem.sram_read_bytes.items():
        buf = (arch.buffer_for(tensor if tensor in ("q", "k", "v") else "k") or arch.buffers)[0]
        bank = buf.kb / buf.banks
        energy[f"sram:{buf.name}/read_{tensor}"] = nbytes * tech.sram_pj_per_byte(bank, arch.node_nm, vdd)
    written = sum(mem.dram_bytes.values()) - mem.dram_bytes.get("o", 0.0)
    buf0 = (arch.buffer_for("k") or arch.buffers)[0]
    energy[f"sram:{buf0.name}/write_fills"] = written * tech.sram_pj_per_byte(
        buf0.kb / buf0.banks, arch.node_nm, vdd, write=True)
    area = {f"unit:{u.name}": unit_area_mm2(u, arch.node_nm, tech) for u in arch.units}
    for b in arch.buffers:
        area[f"sram:{b.name}"] = tech.sram_area_mm2(b.kb, arch.node_nm)
    logic_area = sum(v for k, v in area.items() if k.startswith("unit:"))
    leak_mw = tech.logic_leakage_mw(logic_area, arch.node_nm) + tech.sram_leakage_mw(arch.sram_kb, arch.node_nm)
    energy["static/leakage"] = leak_mw * 1e-3 * latency * 1e12

    util = {}
    for uname in units:
        total_busy = sum(float(a.sum()) for (u, _s), a in unit_stage.items() if u == uname)
        util[uname] = total_busy / cycles if cycles else 0.0
    stage_cycles = {s: float(sum(a.sum() for (u, st), a in unit_stage.items() if st == s)) for s in stages}
    stage_cycles["memory"] = float(memory.sum())
    notes = [f"resident on chip for a whole KV head: {mem.resident}", f"projected density {ts.density:.4f}"]
    if "scaled_from" in trace.meta:
        notes.append(f"trace scaled from {trace.meta['scaled_from']}")
    return SimResult(
        arch=arch.name,
        method=str(trace.meta.get("method")),
        workload={**shape.to_dict(), "density": ts.density},
        normalised=arch.normalised,
        clock_mhz=arch.clock_mhz,
        cycles=cycles,
        latency_s=latency,
        dense_ops=attention_flops(shape),
        energy_pj=energy,
        area_mm2=area,
        dram_bytes=mem.dram_bytes,
        utilisation=util,
        stage_cycles=stage_cycles,
        compute_bound_fraction=float((compute >= memory).mean()),
        notes=notes,
    )
