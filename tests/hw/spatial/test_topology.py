"""Mesh geometry: XY routes, incidence, HBM attachment, ring and tree shapes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sparseattn.hw.spatial import topology

from .conftest import mesh


@pytest.fixture(scope="module")
def topo8():
    return topology(mesh("spatial-star-8x8"))


def test_xy_routes_go_along_the_row_first_and_take_manhattan_hops(topo8):
    a, b = topo8.node(1, 2), topo8.node(6, 5)
    path = topo8.xy_path(a, b)
    assert [topo8.position(n) for n in path[:4]] == [(1, 2), (1, 3), (1, 4), (1, 5)]
    assert len(path) - 1 == 5 + 3
    assert topo8.mesh_hops[a, b] == 8


def test_incidence_carries_every_flow_over_its_route(topo8):
    flows = np.zeros((topo8.nodes, topo8.nodes))
    flows[topo8.node(0, 0), topo8.node(0, 3)] = 100.0
    link = topo8.link_bytes(flows)
    assert link.sum() == pytest.approx(300.0) and link.max() == pytest.approx(100.0)


def test_a_stack_flow_is_split_over_its_channels(topo8):
    stack = topo8.cores  # the first stack: west edge, rows 1-2
    flows = np.zeros((topo8.nodes, topo8.nodes))
    flows[stack, topo8.node(1, 0)] = 1000.0
    link = topo8.link_bytes(flows)
    channels = link[topo8.is_channel]
    assert channels.sum() == pytest.approx(1000.0) and channels.max() == pytest.approx(500.0)
    share = topo8.stack_share(np.arange(topo8.cores), "nearest")
    assert np.allclose(share.sum(axis=1), 1.0)
    assert share[topo8.node(1, 0)].argmax() == 0


def test_snake_and_comb_tree_use_only_neighbour_links(topo8):
    region = topo8.regions(4, 4)[0]
    ring = topo8.snake(region)
    assert len(set(ring.tolist())) == 16
    assert all(topo8.mesh_hops[a, b] == 1 for a, b in itertools.pairwise(ring))
    corners = [topo8.node(r, c) for r in (0, 3) for c in (0, 3)]  # the ring starts at the corner nearest HBM
    assert topo8.stack_hops[ring[0]].min() == topo8.stack_hops[corners].min()
    nodes, parent = topo8.comb_tree(region)
    assert parent[0] == -1 and (parent[1:] < np.arange(1, 16)).all()
    assert all(topo8.mesh_hops[nodes[i], nodes[parent[i]]] == 1 for i in range(1, 16))
