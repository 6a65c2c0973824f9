"""Mesh geometry: routers, directed links, HBM channel links, XY routes and the link-incidence matrix, and the
shapes a dataflow lays on a region of the mesh (a snake ring path, a comb reduction tree).

Nodes ``0 .. P-1`` are the routers (core ``r * cols + c``), nodes ``P .. P+S-1`` the HBM stacks. A stack is wired
to ``span`` edge routers by one channel link each way, each carrying ``1/span`` of the stack's attained bandwidth
(its data is striped over its channels, so a flow to or from a stack is split evenly over them).

**Routing** is dimension-ordered: along the row (X) first, then along the column (Y), the deadlock-free default
of mesh NoCs (Dally & Towles, *Principles and Practices of Interconnection Networks*, 2004, section 14.2). The
route of every (source, destination) pair is a column of :attr:`Topology.incidence`, so the bytes every link
carries are one matrix product of the flow matrix (:meth:`Topology.link_bytes`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .schema import MeshArch


@dataclass(frozen=True)
class Region:
    """A rectangle of the mesh: rows ``r0 .. r0+rows-1``, columns ``c0 .. c0+cols-1``."""

    r0: int
    c0: int
    rows: int
    cols: int

    @property
    def size(self) -> int:
        return self.rows * self.cols


class Topology:
    """The routers, links and routes of one mesh architecture (see the module docstring)."""

    def __init__(self, arch: MeshArch) -> None:
        self.rows, self.cols = arch.mesh.rows, arch.mesh.cols
        self.cores = self.rows * self.cols
        self.stacks = len(arch.hbm.stacks)
        self.nodes = self.cores + self.stacks
        src, dst, gbps, is_channel = [], [], [], []
        for r in range(self.rows):
            for c in range(self.cols):
                for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    if 0 <= r + dr < self.rows and 0 <= c + dc < self.cols:
                        src.append(self.node(r, c))
                        dst.append(self.node(r + dr, c + dc))
                        gbps.append(arch.noc.link_gbps)
                        is_channel.append(False)
        self.attach: list[list[int]] = []
        for s, stack in enumerate(arch.hbm.stacks):
            routers = [self._edge_router(stack.edge, i) for i in range(stack.index, stack.index + stack.span)]
            self.attach.append(routers)
            per_channel = arch.hbm.gbps_per_stack * arch.hbm.efficiency / stack.span
            for router in routers:
                for a, b in ((self.cores + s, router), (router, self.cores + s)):
                    src.append(a)
                    dst.append(b)
                    gbps.append(per_channel)
                    is_channel.append(True)
        self.link_src, self.link_dst = np.array(src), np.array(dst)
        self.link_gbps = np.array(gbps, dtype=np.float64)
        self.is_channel = np.array(is_channel)
        self._index = {(a, b): i for i, (a, b) in enumerate(zip(src, dst, strict=True))}

    # ------------------------------------------------------------------ geometry
    def node(self, r: int, c: int) -> int:
        return r * self.cols + c

    def position(self, node: int) -> tuple[int, int]:
        return divmod(node, self.cols)

    def _edge_router(self, edge: str, i: int) -> int:
        return {"west": self.node(i, 0), "east": self.node(i, self.cols - 1), "north": self.node(0, i),
                "south": self.node(self.rows - 1, i)}[edge]

    def xy_path(self, a: int, b: int) -> list[int]:
        """Routers visited from router ``a`` to router ``b`` (both included), X first."""
        (ra, ca), (rb, cb) = self.position(a), self.position(b)
        path = [self.node(ra, c) for c in _steps(ca, cb)]
        return path + [self.node(r, cb) for r in _steps(ra, rb)[1:]]

    def route(self, a: int, b: int) -> dict[int, float]:
        """Links (by index) a flow from node ``a`` to node ``b`` uses, with the fraction of its bytes on each (a
        stack's flow is split evenly over its channels)."""
        starts = self.attach[a - self.cores] if a >= self.cores else [a]
        ends = self.attach[b - self.cores] if b >= self.cores else [b]
        out: dict[int, float] = {}
        share = 1.0 / (len(starts) * len(ends))
        for s in starts:
            for e in ends:
                hops = [a] * (a >= self.cores) + self.xy_path(s, e) + [b] * (b >= self.cores)
                for u, v in itertools.pairwise(hops):
                    i = self._index[(u, v)]
                    out[i] = out.get(i, 0.0) + share
        return out

    @cached_property
    def incidence(self) -> np.ndarray:
        """``[links, nodes * nodes]``: the fraction of a (source, destination) flow's bytes on each link."""
        inc = np.zeros((len(self.link_src), self.nodes * self.nodes), dtype=np.float64)
        for a in range(self.nodes):
            for b in range(self.nodes):
                if a != b and not (a >= self.cores and b >= self.cores):
                    for link, f in self.route(a, b).items():
                        inc[link, a * self.nodes + b] = f
        return inc

    @cached_property
    def mesh_hops(self) -> np.ndarray:
        """``[nodes, nodes]`` mean mesh links (not channels) a flow crosses."""
        mesh = (~self.is_channel).astype(np.float64)
        return (mesh @ self.incidence).reshape(self.nodes, self.nodes)

    @cached_property
    def stack_hops(self) -> np.ndarray:
        """``[cores, stacks]`` mesh hops from each stack's nearest attachment router to each core."""
        out = np.zeros((self.cores, self.stacks))
        for s, routers in enumerate(self.attach):
            for n in range(self.cores):
                out[n, s] = min(_manhattan(self.position(n), self.position(r)) for r in routers)
        return out

    def link_bytes(self, flows: np.ndarray) -> np.ndarray:
        """Bytes on every link for a flow matrix ``[nodes, nodes]`` (source, destination)."""
        flat = flows.reshape(self.nodes * self.nodes)
        used = np.flatnonzero(flat)
        return self.incidence[:, used] @ flat[used]

    def stack_share(self, cores: np.ndarray, placement: str) -> np.ndarray:
        """``[len(cores), stacks]``: the share of a core's HBM traffic each stack serves -- its nearest stacks
        (ties split evenly) or all stacks evenly."""
        if placement == "interleave":
            return np.full((len(cores), self.stacks), 1.0 / self.stacks)
        hops = self.stack_hops[cores]
        near = hops == hops.min(axis=1, keepdims=True)
        return near / near.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ regions
    def regions(self, rows: int, cols: int) -> list[Region]:
        """The mesh cut into ``rows x cols``-core rectangles (both must divide the mesh)."""
        return [Region(r, c, rows, cols) for r in range(0, self.rows, rows) for c in range(0, self.cols, cols)]

    def region_nodes(self, region: Region) -> np.ndarray:
        return np.array([self.node(region.r0 + i, region.c0 + j) for i in range(region.rows)
                         for j in range(region.cols)])

    def _corner_order(self, region: Region) -> list[tuple[int, int, bool]]:
        """The region's corners (row, col) and snake orientations, the one nearest HBM first."""
        r1, c1 = region.r0 + region.rows - 1, region.c0 + region.cols - 1
        corners = [(region.r0, region.c0), (region.r0, c1), (r1, region.c0), (r1, c1)]
        options = [(r, c, by_rows) for r, c in corners for by_rows in (True, False)]
        return sorted(options, key=lambda o: (self.stack_hops[self.node(o[0], o[1])].min(), not o[2]))

    def snake(self, region: Region) -> np.ndarray:
        """A Hamiltonian path through the region (every step one mesh link), starting at the corner nearest an HBM
        stack: the ring a K/V chunk travels."""
        r_start, c_start, by_rows = self._corner_order(region)[0]
        rows = list(range(region.r0, region.r0 + region.rows))
        cols = list(range(region.c0, region.c0 + region.cols))
        rows = rows if r_start == region.r0 else rows[::-1]
        cols = cols if c_start == region.c0 else cols[::-1]
        outer, inner = (rows, cols) if by_rows else (cols, rows)
        path = []
        for i, o in enumerate(outer):
            for x in (inner if i % 2 == 0 else inner[::-1]):
                path.append(self.node(o, x) if by_rows else self.node(x, o))
        return np.array(path)

    def comb_tree(self, region: Region) -> tuple[np.ndarray, np.ndarray]:
        """A spanning tree of the region rooted at its corner nearest HBM: each row chains toward the root's
        column, and that column chains toward the root (every edge one mesh link). Returns the nodes (root first,
        breadth-first) and each node's parent position in that array (-1 for the root)."""
        r_root, c_root, _ = self._corner_order(region)[0]
        nodes = self.region_nodes(region)
        parent_node = {}
        for n in nodes:
            r, c = self.position(int(n))
            if c != c_root:
                parent_node[int(n)] = self.node(r, c + (1 if c < c_root else -1))
            elif r != r_root:
                parent_node[int(n)] = self.node(r + (1 if r < r_root else -1), c)
        root = self.node(r_root, c_root)
        order = sorted((int(n) for n in nodes),
                       key=lambda n: _manhattan(self.position(n), (r_root, c_root)))
        assert order[0] == root
        pos = {n: i for i, n in enumerate(order)}
        parent = np.array([-1 if n == root else pos[parent_node[n]] for n in order])
        return np.array(order), parent


def _steps(a: int, b: int) -> list[int]:
    return list(range(a, b + 1)) if b >= a else list(range(a, b - 1, -1))


def _manhattan(p: tuple[int, int], q: tuple[int, int]) -> int:
    return abs(p[0] - q[0]) + abs(p[1] - q[1])
