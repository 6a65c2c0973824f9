"""The SimPy packet-level simulation: checked on closed forms, then used to validate the analytical model (issue
15: within 10% on 2x2 and 4x4 meshes)."""

from __future__ import annotations

import pytest

pytest.importorskip("simpy")

from sparseattn.hw.spatial import topology
from sparseattn.hw.spatial.dataflows import Tables
from sparseattn.hw.spatial.des import MeshDES, simulate_plan
from sparseattn.hw.spatial.orchestrator import Layout, build_plan
from sparseattn.hw.spatial.plan import bytes_per_cycle, estimate
from sparseattn.hw.spatial.simulate import plan_for, prepare

from .conftest import mesh, small_shape

PACKET = 2048  # coarser packets than the bundled 512 B keep the event count small; both models use the same


def _des(name: str = "spatial-star-2x2", **updates):
    arch = mesh(name, **updates)
    topo = topology(arch)
    return arch, topo, MeshDES(topo, arch)


@pytest.mark.parametrize("nbytes", [512, 4096, 100_000])
def test_one_flow_over_one_link_takes_its_bytes_over_the_bandwidth_plus_one_hop(nbytes):
    arch, topo, des = _des()
    bpc = float(bytes_per_cycle(arch, arch.noc.link_gbps))
    arrivals = des.transfer(topo.node(0, 0), topo.node(0, 1), nbytes)
    des.env.run()
    assert max(a.env.now for a in arrivals) == pytest.approx(nbytes / bpc + arch.noc.hop_latency_cycles)


def test_a_multi_hop_flow_pipelines_its_packets():
    arch, topo, des = _des("spatial-star-4x4")
    bpc = float(bytes_per_cycle(arch, arch.noc.link_gbps))
    nbytes, hops = 64 * 1024, 6
    des.transfer(topo.node(0, 0), topo.node(3, 3), nbytes)
    des.env.run()
    packet = arch.noc.packet_bytes
    expected = nbytes / bpc + (hops - 1) * packet / bpc + hops * arch.noc.hop_latency_cycles
    assert des.env.now == pytest.approx(expected)


def test_a_ring_all_reduce_takes_two_p_minus_one_steps_of_one_chunk():
    arch, topo, des = _des()
    ring = [topo.node(0, 0), topo.node(0, 1), topo.node(1, 1), topo.node(1, 0)]
    p, nbytes = len(ring), 256 * 1024
    chunk = nbytes / p
    ready = {i: des.done() for i in range(p)}
    for _ in range(2 * (p - 1)):  # reduce-scatter then all-gather: each step waits for the previous chunk
        arrived = {}
        for i in range(p):
            arrived[(i + 1) % p] = des.all_of(des.transfer(ring[i], ring[(i + 1) % p], chunk, ready[i]))
        ready = arrived
    des.env.run()
    bpc = float(bytes_per_cycle(arch, arch.noc.link_gbps))
    assert des.env.now == pytest.approx(2 * (p - 1) * (chunk / bpc + arch.noc.hop_latency_cycles))


def test_hbm_reads_are_bounded_by_the_stack_channels():
    arch, topo, des = _des()
    nbytes = 1 << 20
    des.hbm_read(topo.node(0, 0), nbytes)
    des.env.run()
    channel = float(bytes_per_cycle(arch, topo.link_gbps[topo.is_channel][0]))
    latency = arch.hbm.latency_ns * 1e-9 * arch.clock_mhz * 1e6
    assert des.env.now >= latency + nbytes / (channel * 2)  # the west stack's two channels at best


def _validate(star_trace, name, seq, heads, layout=None, design="spatial-star"):
    arch = mesh(name, design=design, packet_bytes=PACKET)
    shape = small_shape(seq, heads)
    costs = prepare(arch, star_trace, shape, None)
    topo = topology(arch)
    if layout is None:
        plan, _ = plan_for(arch, costs, topo, star_trace, detail=True)
    else:
        regions = (arch.mesh.rows // layout[0]) * (arch.mesh.cols // layout[1])
        plan = build_plan(Tables(costs, 32), topo, arch, Layout(*layout, regions), [0], detail=True)
    analytic = estimate(plan, topo, arch).cycles
    simulated = simulate_plan(plan, topo, arch)
    return analytic / simulated - 1


@pytest.mark.parametrize(("name", "seq", "heads", "layout", "design"), [
    ("spatial-star-2x2", 2048, 4, (1, 1, "local"), "spatial-star"),
    ("spatial-star-2x2", 2048, 4, (2, 2, "ring"), "spatial-star"),
    ("spatial-star-2x2", 4096, 4, (2, 2, "tree"), "spatial-star"),
    ("spatial-star-2x2", 2048, 4, None, "stage-isolated"),
    ("spatial-star-4x4", 2048, 4, (4, 4, "ring"), "spatial-star"),
])
def test_the_analytical_latency_is_within_ten_percent_of_the_packet_simulation(star_trace, name, seq, heads, layout,
                                                                               design):
    assert abs(_validate(star_trace, name, seq, heads, layout, design)) < 0.10


@pytest.mark.slow
@pytest.mark.parametrize(("name", "seq", "heads", "layout", "design"), [
    ("spatial-star-4x4", 4096, 4, (4, 4, "tree"), "spatial-star"),
    ("spatial-star-4x4", 4096, 8, None, "spatial-star"),
    ("spatial-star-4x4", 4096, 4, None, "dense-flash"),
    ("spatial-star-4x4", 4096, 4, None, "stage-isolated"),
    ("spatial-star-4x4", 2048, 16, (1, 1, "local"), "spatial-star"),
])
def test_the_analytical_latency_is_within_ten_percent_on_4x4(star_trace, name, seq, heads, layout, design):
    assert abs(_validate(star_trace, name, seq, heads, layout, design)) < 0.10
