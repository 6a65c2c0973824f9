"""The analytical model: agreement with the single core, conservation of work and bytes, bounds, orchestration."""

from __future__ import annotations

import numpy as np
import pytest

from sparseattn.hw import ConfigError, load_arch, simulate
from sparseattn.hw.accelerator import simulate_accelerator
from sparseattn.hw.spatial import dense_flash_trace, topology
from sparseattn.hw.spatial.dataflows import Tables
from sparseattn.hw.spatial.orchestrator import Layout, build_plan
from sparseattn.hw.spatial.plan import bytes_per_cycle, estimate
from sparseattn.hw.spatial.simulate import prepare

from .conftest import mesh, small_shape

SHAPE = small_shape(4096, heads=8)


def _plan(arch, trace, shape, layout):
    costs = prepare(arch, trace, shape, None)
    topo = topology(arch)
    return costs, topo, build_plan(Tables(costs, 32), topo, arch, layout, list(range(shape.layers)))


def test_the_per_cell_costs_reproduce_the_single_core(star_trace):
    core = load_arch("star")
    single = simulate_accelerator(core, star_trace, SHAPE)
    costs = prepare(mesh(), star_trace, SHAPE, None)
    per_query_cell = costs.unit_busy().sum(-1).max(0)  # the single core's rule: busiest unit per query cell
    assert per_query_cell.sum() * costs.ts.multiplicity == pytest.approx(single.cycles - single.fixed_cycles,
                                                                        rel=0.02)
    streamed = (costs.kv_shared.sum() + costs.q_bytes.sum() + costs.o_bytes.sum()) * costs.ts.multiplicity
    assert streamed == pytest.approx(sum(single.dram_bytes.values()), rel=1e-6)


@pytest.mark.parametrize("layout", [Layout(1, 1, "local", 4), Layout(2, 2, "ring", 1), Layout(2, 2, "tree", 1),
                                    Layout(1, 2, "ring", 2)])
def test_every_dataflow_conserves_the_work_and_respects_every_bound(star_trace, layout):
    arch = mesh()
    costs, topo, plan = _plan(arch, star_trace, SHAPE, layout)
    est = estimate(plan, topo, arch)
    total = costs.unit_busy().sum(-1).max(0).sum() * costs.ts.multiplicity
    assert est.core_busy.sum() >= total * 0.999  # KV sharding splits a head's keys: never less work in total
    assert est.cycles >= total / topo.cores  # the compute bound
    bpc = bytes_per_cycle(arch, topo.link_gbps)
    assert est.cycles >= (est.link_bytes / bpc).max()  # the link bound, every link (the HBM channels too)
    hbm_bpc = bytes_per_cycle(arch, arch.hbm.gbps_per_stack * arch.hbm.efficiency * len(arch.hbm.stacks))
    assert est.cycles >= est.hbm_bytes.sum() / hbm_bpc  # the HBM bound
    q = costs.q_bytes.sum() * costs.ts.multiplicity
    assert est.hbm_bytes[:, 0].sum() >= q  # every query row read at least once


def test_the_ring_reads_kv_from_hbm_once_per_wave_not_once_per_core(star_trace):
    arch = mesh()
    _, topo, local = _plan(arch, star_trace, SHAPE, Layout(1, 1, "local", 4))
    _, _, ring = _plan(arch, star_trace, SHAPE, Layout(2, 2, "ring", 1))
    assert estimate(ring, topo, arch).hbm_bytes.sum() < 0.5 * estimate(local, topo, arch).hbm_bytes.sum()


def test_balance_and_overlap_never_hurt(star_trace):
    shape = small_shape(8192, heads=2)
    base = simulate(mesh("spatial-star-4x4"), star_trace, shape).latency_s
    assert simulate(mesh("spatial-star-4x4", balance=False), star_trace, shape).latency_s >= base * 0.999
    assert simulate(mesh("spatial-star-4x4", overlap=False), star_trace, shape).latency_s >= base * 0.999


def test_the_orchestrator_picks_the_fastest_candidate(star_trace):
    result = simulate(mesh("spatial-star-4x4"), star_trace, small_shape(4096, heads=8))
    feasible = [c for c in result.candidates if c["feasible"]]
    best = min(feasible, key=lambda c: c["cycles_per_layer"])
    assert result.dataflow == best["layout"]
    forced = simulate(mesh("spatial-star-4x4", dataflow="kv_shard"), star_trace, small_shape(4096, heads=8))
    assert forced.dataflow.startswith("KV sharding") and forced.latency_s >= result.latency_s * 0.999


def test_forcing_an_impossible_layout_is_an_error(star_trace):
    with pytest.raises(ConfigError, match="regions"):
        simulate(mesh(dataflow="head", regions=3), star_trace, SHAPE)


def test_baselines_and_decode(star_trace):
    dense = dense_flash_trace(star_trace)
    assert dense.count(stage="predict") == 0 and dense.count(stage="select") == 0
    assert dense.density == pytest.approx(1.0, abs=0.01)
    ours = simulate(mesh(), star_trace, SHAPE)
    flash = simulate(mesh(design="dense-flash"), star_trace, SHAPE)
    isolated = simulate(mesh(design="stage-isolated"), star_trace, SHAPE)
    assert ours.tokens_per_s > flash.tokens_per_s and ours.tokens_per_s > isolated.tokens_per_s
    assert "stage-isolated" in isolated.dataflow
    decode = simulate(mesh(), star_trace, SHAPE.replace(q_len=1))
    assert decode.tokens_per_s == pytest.approx(1 / decode.latency_s)
    with pytest.raises(ConfigError, match="prediction"):
        simulate(mesh(design="stage-isolated"), dense, SHAPE)


def test_energy_and_area_cover_noc_hbm_and_cores(star_trace):
    r = simulate(mesh(), star_trace, SHAPE)
    kinds = r.energy_by("kind")
    assert {"compute", "sram", "noc", "dram", "leakage"} <= set(kinds) and all(v > 0 for v in kinds.values())
    area = r.area_by("component")
    assert area["noc_routers"] == pytest.approx(4 * 0.3) and area["hbm_phy"] == pytest.approx(2 * 15)
    assert np.isclose(sum(area.values()), r.total_area_mm2)
    assert 0 < r.mean_core_utilisation <= 1 and r.summary()["max_hbm_utilisation"] <= 1 + 1e-9
