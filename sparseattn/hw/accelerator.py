"""The accelerator simulator: a trace on an accelerator under a mapping -> a :class:`~sparseattn.hw.result.SimResult`.

A pipeline of stages, each a small function returning a typed record::

    trace (+ model shape)        architecture            mapping (default: arch.mapping)
          |                            |                        |
          v                            v                        v
    1 bind ops to units  (binding.bind)           -> [Binding]
    2 tile & traffic     (tiling.project,          -> TiledSparsity, Traffic
                          traffic.traffic)
    3 time               (timing.timing; lanes     -> Timing (cycles, utilisation, per-stage cycles)
                          from bitserial)
    4 area               (technology.area_items)   -> [AreaItem]
    5 energy             (energy.*)                -> [EnergyItem]
          |
          v
    SimResult

Everything is deterministic: the same trace, shape, architecture and mapping give the same result.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.shape import Shape
from ..core.workload import Workload
from .binding import bind
from .bitserial import PLANES, trace_lane_utilisation
from .config import ConfigError
from .energy import compute_energy, leakage_energy, memory_energy
from .gpu import attention_flops
from .kvgen import generation_bindings
from .mapping import Mapping
from .registry import ArchKind, Capabilities, register_kind
from .result import SimResult
from .schema import AcceleratorArch, ComputeUnit
from .technology import Technology, area_items, load_technology
from .tiling import project
from .timing import systolic_efficiency, timing
from .traffic import check_fit, traffic


def lane_utilisations(arch: AcceleratorArch, source: Workload, head_dim: int) -> tuple[dict[str, float], list[str]]:
    """Modelled out-of-order utilisation of every unit with a ``lanes`` model, from the samples of the trace as
    captured (``source``), and what was done, for the notes; a unit falls back to its fixed ``utilisation`` when
    the trace carries no samples."""
    modelled, notes = {}, []
    for u in arch.units:
        if u.lanes is None:
            continue
        lu = trace_lane_utilisation(source, u.lanes, head_dim)
        if lu is None:
            notes.append(f"{u.name}: the trace carries no lane samples ({PLANES}); fixed utilisation "
                         f"{u.utilisation} used")
            continue
        modelled[u.name] = lu.out_of_order
        notes.append(f"{u.name}: lane utilisation modelled from {lu.rows} sampled rows: {lu.out_of_order:.3f} "
                     f"out-of-order (in-order {lu.in_order:.3f}, without bidirectional sparsity "
                     f"{lu.out_of_order_without_bs:.3f}; {u.lanes.lanes_per_row} lanes per row, scoreboard "
                     f"{u.lanes.scoreboard}, plane latency {u.lanes.plane_latency:g} cycles)")
    return modelled, notes


def efficiency_of(mapping: Mapping, head_dim: int, lanes: dict[str, float]) -> Callable[[ComputeUnit, str], float]:
    """A unit's attained fraction of peak in a stage: modelled lane utilisation or its ``utilisation`` field,
    times its systolic fill/drain efficiency on the formal tile."""

    def efficiency(unit: ComputeUnit, stage: str) -> float:
        base = lanes.get(unit.name, unit.utilisation)
        return base * systolic_efficiency(unit, stage, mapping.formal, head_dim)

    return efficiency


def at_shape(trace: Workload, shape: Shape | None) -> Workload:
    """The trace's counts carried to ``shape`` (its profile is projected separately, by :func:`project`)."""
    if trace.profile is None:
        raise ConfigError("the trace has no sparsity profile")
    if shape is None or shape == trace.shape:
        return trace
    return trace.scaled_to(shape, with_profile=False)


def simulate_accelerator(arch: AcceleratorArch, trace: Workload, shape: Shape | None = None,
                         mapping: Mapping | None = None, tech: Technology | None = None) -> SimResult:
    """Simulate ``trace`` carried to ``shape`` on ``arch`` under ``mapping`` (see the module docstring)."""
    mapping, tech = mapping or arch.mapping, tech or load_technology()
    target = at_shape(trace, shape)
    shape = target.shape
    check_fit(arch, shape, mapping)
    ts = project(trace, shape, mapping.formal)
    mem = traffic(arch, mapping, target, ts)
    bindings = bind(arch, target)
    if mem.generation is not None:  # K/V generated on chip: the projection's work joins the schedule
        bindings += generation_bindings(arch, mem.generation, mapping.projection)
    lanes, lane_notes = lane_utilisations(arch, trace, shape.head_dim)
    t = timing(arch, mapping, bindings, ts, mem, efficiency_of(mapping, shape.head_dim, lanes))
    area = area_items(arch, tech)
    energy = compute_energy(arch, bindings, tech) + memory_energy(arch, mem, tech)
    energy += leakage_energy(arch, area, t.latency_s, tech)
    notes = [f"resident on chip for a whole KV head: {mem.resident}", f"projected density {ts.density:.4f}",
             *mem.notes, *lane_notes]
    if target.source_shape is not None:
        notes.append(f"trace scaled from {target.source_shape.to_dict()}")
    return SimResult(
        arch=arch.name, kind=arch.kind, method=str(trace.meta.get("method")), shape=shape.to_dict(),
        density=ts.density, normalised=arch.normalised, clock_mhz=arch.clock_mhz, cycles=t.cycles,
        latency_s=t.latency_s, dense_ops=attention_flops(shape), energy=energy, area=area,
        dram_bytes=mem.dram_bytes, utilisation=t.utilisation, stage_cycles=t.stage_cycles,
        compute_bound_fraction=t.compute_bound_fraction, fixed_cycles=t.fixed_cycles,
        mapping=mapping.model_dump(), notes=notes,
    )


CAPABILITIES = Capabilities(
    method=lambda arch: arch.method,
    runs_trace=True,
    mapping=lambda arch: arch.mapping,
    check_fit=lambda arch, shape, mapping=None: check_fit(arch, shape, mapping or arch.mapping),
    area_mm2=lambda arch, tech: sum(a.mm2 for a in area_items(arch, tech)),
    sram_kb=lambda arch: arch.sram_kb,
    normalisable=True,
)

register_kind(ArchKind("accelerator", AcceleratorArch, simulate_accelerator, CAPABILITIES, noun="accelerator"))
