"""Energy and area of a mesh run, by component, from the single core's own energy stages plus the mesh's NoC and
HBM (:class:`~sparseattn.hw.result.EnergyItem` / :class:`~sparseattn.hw.result.AreaItem` records):

* **compute** -- every bound trace operation priced by :func:`~sparseattn.hw.energy.compute_energy` (the work is
  the same whichever core does it), plus the log-sum-exp merges of KV sharding and the stage-isolated baseline's
  extra sort work, on the units that execute them;
* **sram** -- the core's on-chip reads (:func:`~sparseattn.hw.energy.memory_energy` with the single core's read
  bytes) and the writes of every byte that arrives at a core, from HBM or from another core;
* **hbm** (kind ``dram``) -- bytes read and written x the stack's pJ/bit (``hbm.pj_per_bit``, else the technology
  table's for ``hbm.kind``);
* **noc** (kind ``noc``) -- every byte x 8 x ``noc.link_pj_per_bit`` per mesh link crossed and
  ``noc.router_pj_per_bit`` per router traversed (hops + 1);
* **leakage** -- each core's logic and SRAM leakage over the run (:func:`~sparseattn.hw.energy.leakage_energy`)
  times the cores, and the routers' logic leakage by their area.

Area: every core's units and buffers x the cores, the routers, and the HBM PHYs on the die.
"""

from __future__ import annotations

import numpy as np

from ..binding import unit_for
from ..energy import compute_energy, leakage_energy, memory_energy
from ..result import AreaItem, EnergyItem
from ..technology import Technology, area_items
from ..traffic import Traffic
from .costs import CoreCosts
from .plan import Estimate, Plan
from .schema import MeshArch
from .topology import Topology


def mesh_area(arch: MeshArch, tech: Technology) -> list[AreaItem]:
    """Area of every core's units and buffers (x cores), the routers and the HBM PHYs."""
    p = arch.cores
    items = [AreaItem(a.component, a.kind, a.mm2 * p, a.basis) for a in area_items(arch.core, tech)]
    items.append(AreaItem("noc_routers", "unit", arch.noc.router_area_mm2 * p, "model"))
    items.append(AreaItem("hbm_phy", "unit", arch.hbm.phy_area_mm2 * len(arch.hbm.stacks), "model"))
    return items


def _extra_compute(arch: MeshArch, plan: Plan, tech: Technology) -> list[EnergyItem]:
    out = []
    for (stage, op, bits), count in plan.extra_ops.items():
        unit = unit_for(arch.core, stage, op)
        name = unit.name if unit is not None else "merge"
        pj = count * tech.op_energy_pj(op, bits, arch.core.node_nm, arch.core.vdd)
        out.append(EnergyItem(name, "compute", op, pj, stage="merge" if stage == "softmax" else stage, bits=bits))
    return out


def _noc_and_hbm(arch: MeshArch, topo: Topology, est: Estimate, tech: Technology) -> list[EnergyItem]:
    mesh_bits = float(est.link_bytes[~topo.is_channel].sum()) * 8
    routed = est.flows * (topo.mesh_hops + 1)
    np.fill_diagonal(routed, 0.0)
    router_bits = float(routed.sum()) * 8
    pj_bit = arch.hbm.pj_per_bit or tech.dram_pj_per_bit(arch.hbm.kind)
    read, written = est.hbm_bytes.sum(axis=0)
    return [EnergyItem("noc", "noc", "link", mesh_bits * arch.noc.link_pj_per_bit),
            EnergyItem("noc", "noc", "router", router_bits * arch.noc.router_pj_per_bit),
            EnergyItem("hbm", "dram", "read", read * 8 * pj_bit, tensor="all"),
            EnergyItem("hbm", "dram", "write", written * 8 * pj_bit, tensor="o")]


def mesh_energy(arch: MeshArch, costs: CoreCosts, plan: Plan, topo: Topology, est: Estimate, latency_s: float,
                tech: Technology) -> list[EnergyItem]:
    """Energy records of one mesh run (see the module docstring)."""
    core = arch.core
    items = compute_energy(core, costs.bindings, tech) + _extra_compute(arch, plan, tech)
    arrived = float(est.flows[:, : topo.cores].sum())
    left = float(est.flows[: topo.cores, topo.cores:].sum())
    fills = Traffic(per_cell=np.zeros(1), dram_bytes={"fills": arrived, "o": left},
                    sram_read_bytes=costs.streamed.sram_read_bytes, resident=costs.streamed.resident)
    items += [e for e in memory_energy(core, fills, tech) if e.kind != "dram"]
    items += _noc_and_hbm(arch, topo, est, tech)
    core_area = area_items(core, tech)
    items += [EnergyItem(e.component, e.kind, e.action, e.pj * arch.cores)
              for e in leakage_energy(core, core_area, latency_s, tech)]
    router_mw = tech.logic_leakage_mw(arch.noc.router_area_mm2 * arch.cores, core.node_nm)
    items.append(EnergyItem("noc", "leakage", "routers", router_mw * 1e-3 * latency_s * 1e12))
    return items
