"""``simulate`` for kind ``mesh``: a trace on an R x C mesh of cores -> a :class:`~.result.MeshResult`.

::

    trace (+ shape)   mesh arch (core, NoC, HBM, orchestration)   mapping (the core's; default its own)
          |                          |                                   |
          v                          v                                   v
    1 design trace     (baselines.dense_flash_trace for dense-flash; the method's own otherwise)
    2 per-cell costs   (costs.core_costs: the single core's bind / project / busy / traffic stages, per cell)
    3 layout           (orchestrator.choose: regions x dataflow, fastest feasible; or baselines.isolated_plan)
    4 plan + estimate  (orchestrator.build_plan over every layer; plan.estimate: compute, NoC/HBM, fill)
    5 energy, area     (energy.mesh_energy, energy.mesh_area)
          |
          v
    MeshResult (a SimResult: latency, energy, area; plus throughput, per-core and per-link utilisation)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ...core.shape import Shape
from ...core.workload import Workload
from ..accelerator import at_shape
from ..config import ConfigError
from ..gpu import attention_flops
from ..mapping import Mapping
from ..technology import Technology, load_technology
from ..traffic import check_fit
from .baselines import dense_flash_trace, isolated_plan
from .costs import CoreCosts, cells_for, core_costs
from .dataflows import Tables
from .energy import mesh_area, mesh_energy
from .orchestrator import build_plan, choose
from .plan import Estimate, Plan, estimate
from .result import MeshResult
from .schema import MeshArch
from .topology import Topology


@lru_cache(maxsize=16)
def _topology(key: str) -> Topology:
    return Topology(MeshArch.model_validate_json(key))


def topology(arch: MeshArch) -> Topology:
    """The mesh's routers, links and routes (cached per configuration)."""
    return _topology(arch.model_dump_json())


def design_trace(arch: MeshArch, trace: Workload) -> Workload:
    """The trace the design runs: the method's own, or dense FlashAttention made from it (dense-flash)."""
    if arch.design == "dense-flash":
        return dense_flash_trace(trace)
    if arch.design == "stage-isolated" and not any(k.stage == "predict" for k in trace.ops):
        raise ConfigError(f"design stage-isolated needs a trace with prediction and selection stages; "
                          f"{trace.meta.get('method')!r} has none")
    return trace


def prepare(arch: MeshArch, trace: Workload, shape: Shape | None, mapping: Mapping | None) -> CoreCosts:
    """Steps 1-2: the design's trace and its per-cell costs on one core (the core's tile must fit first)."""
    mapping = mapping or arch.core.mapping
    target_shape = at_shape(trace, shape).shape
    try:
        check_fit(arch.core, target_shape, mapping)
    except ConfigError as err:
        raise ConfigError(f"mesh {arch.name!r}, core {arch.core.name!r}: {err}") from None
    return core_costs(arch.core, design_trace(arch, trace), shape, mapping, cells_for(arch.cores))


def plan_for(arch: MeshArch, costs: CoreCosts, topo: Topology, trace: Workload,
             detail: bool = False, layers: list[int] | None = None) -> tuple[Plan, list[dict]]:
    """Step 3-4: the plan of the whole run and the candidates the orchestrator weighed."""
    layers = list(range(costs.shape.layers)) if layers is None else layers
    if arch.design == "stage-isolated":
        plan = isolated_plan(costs, trace, topo, arch)
        plan.layers = [plan.layers[i] for i in layers]
        return plan, []
    tables = Tables(costs, arch.orchestration.partial_bits)
    layout, candidates = choose(tables, topo, arch)
    return build_plan(tables, topo, arch, layout, layers, detail), candidates


def _links(topo: Topology, est: Estimate, seconds: float) -> list[dict[str, Any]]:
    def name(n: int) -> str:
        return f"hbm{n - topo.cores}" if n >= topo.cores else "{},{}".format(*topo.position(n))

    util = est.link_bytes / (topo.link_gbps * 1e9 * seconds) if seconds > 0 else np.zeros_like(est.link_bytes)
    return [{"src": name(int(a)), "dst": name(int(b)), "bytes": float(n), "utilisation": float(u),
             "channel": bool(ch)} for a, b, n, u, ch in zip(topo.link_src, topo.link_dst, est.link_bytes, util,
                                                           topo.is_channel, strict=True)]


def _hbm(arch: MeshArch, est: Estimate, seconds: float) -> list[dict[str, Any]]:
    attained = arch.hbm.gbps_per_stack * arch.hbm.efficiency * 1e9 * seconds
    return [{"read_bytes": float(r), "write_bytes": float(w), "utilisation": float((r + w) / attained)}
            for r, w in est.hbm_bytes]


def _capacity_note(arch: MeshArch, s: Shape) -> list[str]:
    """A warning when one layer's Q, K, V and O (at the core's widths) outgrow the HBM stacks."""
    ops = arch.core.operands
    layer = s.batch * s.head_dim * (s.heads * s.q_len * 2 * ops.q_bits + s.kv_heads * s.k_len * 2 * ops.kv_bits) / 8
    have = arch.hbm.capacity_gb * 1e9 * len(arch.hbm.stacks)
    if layer <= have:
        return []
    return [f"warning: one layer's Q, K, V and O take {layer / 1e9:.1f} GB, more than the {have / 1e9:.0f} GB of HBM"]


def simulate_mesh(arch: MeshArch, trace: Workload, shape: Shape | None = None, mapping: Mapping | None = None,
                  tech: Technology | None = None) -> MeshResult:
    """Simulate ``trace`` carried to ``shape`` on the mesh ``arch`` (see the module docstring)."""
    tech = tech or load_technology()
    costs = prepare(arch, trace, shape, mapping)
    topo = topology(arch)
    plan, candidates = plan_for(arch, costs, topo, trace)
    est = estimate(plan, topo, arch)
    clock = arch.clock_mhz * 1e6
    seconds = est.cycles / clock
    s = costs.shape
    util = (est.core_busy / est.cycles).reshape(arch.mesh.rows, arch.mesh.cols)
    notes = [f"{arch.design} on a {arch.mesh.rows}x{arch.mesh.cols} mesh of {arch.core.name!r} cores: {plan.label}",
             f"bottleneck: {est.bottleneck}; compute {est.compute_cycles:.4g}, NoC/HBM {est.noc_cycles:.4g}, "
             f"fill {est.fill_cycles:.4g} cycles (summed over layers)", *plan.notes, *costs.notes,
             *_capacity_note(arch, s)]
    return MeshResult(
        arch=arch.name, kind="mesh", method=str(costs.target.meta.get("method")), shape=s.to_dict(),
        density=costs.ts.density, normalised=arch.normalised, clock_mhz=arch.clock_mhz, cycles=est.cycles,
        latency_s=seconds, dense_ops=attention_flops(s), energy=mesh_energy(arch, costs, plan, topo, est, seconds,
                                                                            tech),
        area=mesh_area(arch, tech), dram_bytes={"read": float(est.hbm_bytes[:, 0].sum()),
                                                "write": float(est.hbm_bytes[:, 1].sum())},
        utilisation={"cores (mean)": float(util.mean()), "cores (max)": float(util.max())},
        stage_cycles={"compute": est.compute_cycles, "noc": est.noc_cycles, "fill": est.fill_cycles},
        compute_bound_fraction=float(est.bottleneck == "compute"), fixed_cycles=est.fill_cycles,
        mapping=costs.mapping.model_dump(), notes=notes, design=arch.design,
        mesh={"rows": arch.mesh.rows, "cols": arch.mesh.cols, "cores": arch.cores, "stacks": len(arch.hbm.stacks)},
        dataflow=plan.label, tokens_per_s=s.q_len * s.batch / seconds,
        layer_latency_s=list(est.phase_cycles.sum(axis=1) / clock), core_utilisation=util.tolist(),
        links=_links(topo, est, seconds), hbm=_hbm(arch, est, seconds),
        latency_breakdown={"compute_cycles": est.compute_cycles, "noc_cycles": est.noc_cycles,
                           "fill_cycles": est.fill_cycles, "bottleneck": est.bottleneck},
        candidates=candidates,
    )
