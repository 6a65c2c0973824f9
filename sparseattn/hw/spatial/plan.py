"""A dataflow's schedule in aggregate (:class:`Stream`, :class:`Plan`) and its analytical latency (:func:`estimate`).

A **stream** is the work one region of the mesh does in one layer, as a sequence of pipelined *steps*; per step
and core it records compute cycles and the bytes that move:

* ``local`` -- every core works alone (head parallel; the stage-isolated baseline): it reads its own inputs from
  HBM and writes its outputs back; cores are independent, so a core's time is the sum of its steps;
* ``ring`` -- query sharding: each core holds query tiles, the K/V chunks of a step are read from HBM once into
  the ring's head and passed core to core along a snake path (:meth:`~.topology.Topology.snake`); a step (a wave)
  takes as long as its slowest core (lock-step: a core forwards chunks it has buffered, ``ring_slots`` deep);
* ``tree`` -- KV-sequence sharding: a query tile is read once by the root and multicast down a comb spanning tree
  (:meth:`~.topology.Topology.comb_tree`); every core attends to its keys and sends its partial (m, l, o) to its
  parent, which merges it by log-sum-exp; the root writes the output. A step is as long as its slowest core's
  compute, or its merges where they take longer (lock-step: a merge runs on the softmax units while the arrays
  compute the next step, and partials are merged as they stream in).

A **plan** is, per layer, a list of *phases* run one after another (one for a fused design, three for the
stage-isolated baseline), each a list of streams running concurrently on disjoint regions.

**Analytical latency** (:func:`estimate`). Per layer and phase, with ``overlap`` (double-buffered transfers that
overlap the three stages), the phase takes ``max(compute, NoC) + fill``, otherwise ``compute + NoC + fill``, where

* *compute* is the slowest region's critical path (sum over steps of the slowest core for lock-step streams, the
  busiest core otherwise);
* *NoC* is the busiest link's bytes over its bandwidth -- the mesh links at ``noc.link_gbps`` and the HBM channel
  links at their stack's attained bandwidth, so both the link bound and the HBM bound are in it (every flow routed
  XY, so contention on shared links is counted);
* *fill* is what a pipeline cannot hide: the HBM latency, one packet's store-and-forward time per hop of the
  longest path data takes before the first step can start and after the last step ends, and the first step's
  input and the last step's output crossing the path's narrowest link.

Layers run one after another (a layer's K/V depend on the previous layer's output), so latencies add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .schema import MeshArch
from .topology import Topology

StreamKind = Literal["local", "ring", "tree"]
TREE_SLOTS = 2  # query tiles and partials a tree's core buffers (double buffering; the DES uses the same)


@dataclass
class Stream:
    """One region's work in one layer (see the module docstring). Arrays are per step ``S`` and core ``Pr`` (in ring
    or tree order; ``cores`` are their node ids)."""

    kind: StreamKind
    cores: np.ndarray  # [Pr]
    compute: np.ndarray  # [S, Pr] cycles
    hbm_read: np.ndarray  # [S, Pr] bytes a core reads from HBM itself
    hbm_write: np.ndarray  # [S, Pr] bytes a core writes to HBM
    relay: np.ndarray | None = None  # ring [S]: bytes read into the head and passed along the path
    down: np.ndarray | None = None  # tree [S]: bytes read by the root and multicast to every core
    up: np.ndarray | None = None  # tree [S]: bytes each non-root core sends its parent
    merge: np.ndarray | None = None  # tree [S, Pr]: cycles merging children's partials
    root_write: np.ndarray | None = None  # tree [S]
    parent: np.ndarray | None = None  # tree [Pr]: parent's position, -1 at the root
    chunk_compute: np.ndarray | None = None  # ring [S, Pr, K]: compute per K/V chunk (detail for the DES)
    chunk_bytes: np.ndarray | None = None  # ring [S, K]
    first_bytes: float = 0.0  # what must arrive before the first step can start (a Q tile and a K/V tile)
    last_bytes: float = 0.0  # what leaves after the last step (an O tile, or a partial)

    @property
    def steps(self) -> int:
        return self.compute.shape[0]

    @property
    def lockstep(self) -> bool:
        return self.kind != "local"

    def step_time(self) -> np.ndarray:
        """Cycles of each step on each core ``[S, Pr]``: its compute, or its merges where they take longer (a merge
        runs on the softmax units while the arrays compute the next step)."""
        return self.compute if self.merge is None else np.maximum(self.compute, self.merge)

    def critical(self, hop: np.ndarray | None = None) -> float:
        """The stream's compute critical path (see the module docstring): independent cores take their own sum; a
        ring's waves are lock-step; a tree is lock-step over windows of ``2 x TREE_SLOTS`` steps (a core may run
        :data:`TREE_SLOTS` steps ahead of its parent on buffered query tiles, and its parent as far ahead of it on
        buffered partials), and takes at least its credit loop: the root's partial slot frees only when the
        deepest partial has climbed the tree, ``max_i(compute_i + depth_i x hop) / TREE_SLOTS`` per step (``hop``:
        cycles per tree level, a partial's transfer and merge)."""
        t = self.step_time()
        if not t.size:
            return 0.0
        if not self.lockstep:
            return float(t.sum(axis=0).max())
        if self.kind != "tree":
            return float(t.max(axis=1).sum())
        w = 2 * TREE_SLOTS
        pad = -len(t) % w
        window = np.pad(t, ((0, pad), (0, 0))).reshape(-1, w, t.shape[1]).sum(axis=1).max(axis=1)
        if hop is not None:
            loop = (t + tree_depths(self.parent)[None, :] * hop[:, None]).max(axis=1) / TREE_SLOTS
            window = np.maximum(window, np.pad(loop, (0, pad)).reshape(-1, w).sum(axis=1))
        return float(window.sum())

    def busy(self) -> np.ndarray:
        """Busy cycles per core ``[Pr]``."""
        return self.step_time().sum(axis=0)

    def flows(self, topo: Topology, placement: str) -> np.ndarray:
        """Bytes per (source, destination) node pair ``[nodes, nodes]`` over the whole stream."""
        f = np.zeros((topo.nodes, topo.nodes))
        stacks = np.arange(topo.cores, topo.nodes)
        share = topo.stack_share(self.cores, placement)  # [Pr, S]
        f[np.ix_(stacks, self.cores)] += (share * self.hbm_read.sum(axis=0)[:, None]).T
        f[np.ix_(self.cores, stacks)] += share * self.hbm_write.sum(axis=0)[:, None]
        if self.kind == "ring" and self.relay is not None:
            total = float(self.relay.sum())
            f[stacks, self.cores[0]] += share[0] * total
            f[self.cores[:-1], self.cores[1:]] += total
        if self.kind == "tree" and self.down is not None:
            child = np.flatnonzero(self.parent >= 0)
            down, up = float(self.down.sum()), float(self.up.sum())
            f[stacks, self.cores[0]] += share[0] * down
            f[self.cores[self.parent[child]], self.cores[child]] += down
            f[self.cores[child], self.cores[self.parent[child]]] += up
            f[self.cores[0], stacks] += share[0] * float(self.root_write.sum())
        return f


@dataclass
class Plan:
    """A dataflow laid on the mesh: per layer, phases run in sequence, each a list of concurrent streams."""

    label: str
    layers: list[list[list[Stream]]]
    notes: list[str] = field(default_factory=list)
    extra_ops: dict[tuple[str, str, int], float] = field(default_factory=dict)  # (stage, op, bits) -> count


@dataclass
class Estimate:
    """The analytical latency of a plan and what bounds it."""

    cycles: float
    compute_cycles: float  # sum over layers/phases of the compute critical path
    noc_cycles: float  # sum over layers/phases of the busiest link's time
    fill_cycles: float
    phase_cycles: np.ndarray  # [layers, phases]
    bottleneck: str  # "compute", "noc" (a mesh link) or "hbm" (a stack channel), by time
    link_bytes: np.ndarray  # [links] over the run
    core_busy: np.ndarray  # [cores] busy cycles over the run
    hbm_bytes: np.ndarray  # [stacks, 2] read / written over the run
    flows: np.ndarray  # [nodes, nodes] bytes over the run


def bytes_per_cycle(arch: MeshArch, gbps: np.ndarray | float) -> np.ndarray | float:
    return np.asarray(gbps) * 1e9 / (arch.clock_mhz * 1e6)


def _path_hops(stream: Stream, topo: Topology) -> float:
    """Mesh hops of the longest path data takes into the first step and out of the last one."""
    into = topo.stack_hops[stream.cores].min(axis=1)
    if stream.kind == "local":
        return float(2 * into.max())
    depth = len(stream.cores) - 1 if stream.kind == "ring" else _tree_depth(stream.parent)
    extra = depth if stream.kind == "ring" else 2 * depth
    return float(into[0] + extra + into.max())


def hop_cycles(stream: Stream, arch: MeshArch) -> np.ndarray | None:
    """``[S]`` cycles a tree's partial takes per level toward the root: its transfer over one link (store-and-forward
    packets) and its merge into the parent's."""
    if stream.kind != "tree" or not stream.steps:
        return None
    link = float(bytes_per_cycle(arch, arch.noc.link_gbps))
    children = np.bincount(stream.parent[stream.parent >= 0], minlength=len(stream.parent))
    per_child = stream.merge.max(axis=1) / max(int(children.max()), 1)
    return stream.up / link + arch.noc.hop_latency_cycles + arch.noc.packet_bytes / link + per_child


def tree_depths(parent: np.ndarray) -> np.ndarray:
    """Each node's depth in a tree given in breadth-first order (a parent before its children)."""
    depth = np.zeros(len(parent), dtype=np.float64)
    for i in range(1, len(parent)):
        depth[i] = depth[parent[i]] + 1
    return depth


def _tree_depth(parent: np.ndarray) -> int:
    return int(tree_depths(parent).max()) if len(parent) else 0


def fill_cycles(stream: Stream, topo: Topology, arch: MeshArch) -> float:
    """The part of a stream a pipeline cannot hide (see the module docstring)."""
    if not stream.steps:
        return 0.0
    link = bytes_per_cycle(arch, arch.noc.link_gbps)
    channel = float(bytes_per_cycle(arch, topo.link_gbps[topo.is_channel].min()))
    per_hop = arch.noc.hop_latency_cycles + arch.noc.packet_bytes / link
    latency = arch.hbm.latency_ns * 1e-9 * arch.clock_mhz * 1e6
    return latency + _path_hops(stream, topo) * per_hop + (stream.first_bytes + stream.last_bytes) / min(link, channel)


def estimate(plan: Plan, topo: Topology, arch: MeshArch) -> Estimate:
    """The analytical latency of ``plan`` on ``arch`` (see the module docstring)."""
    bpc = bytes_per_cycle(arch, topo.link_gbps)
    overlap = arch.orchestration.overlap
    phases = max(len(layer) for layer in plan.layers)
    times = np.zeros((len(plan.layers), phases))
    comp_total = noc_total = fill_total = 0.0
    link_total, busy = np.zeros(len(bpc)), np.zeros(topo.cores)
    flows_total = np.zeros((topo.nodes, topo.nodes))
    bound = {"compute": 0.0, "noc": 0.0, "hbm": 0.0}
    for li, layer in enumerate(plan.layers):
        for pi, streams in enumerate(layer):
            flows = sum(s.flows(topo, arch.hbm.placement) for s in streams)
            link = topo.link_bytes(flows)
            times_link = link / bpc
            comp = max(s.critical(hop_cycles(s, arch)) for s in streams)
            noc = float(times_link.max())
            fill = max(fill_cycles(s, topo, arch) for s in streams)
            times[li, pi] = (max(comp, noc) if overlap else comp + noc) + fill
            comp_total, noc_total, fill_total = comp_total + comp, noc_total + noc, fill_total + fill
            which = "compute" if comp >= noc else ("hbm" if topo.is_channel[int(times_link.argmax())] else "noc")
            bound[which] += max(comp, noc)
            link_total += link
            flows_total += flows
            for s in streams:
                busy[s.cores] += s.busy()
    hbm = np.stack([flows_total[topo.cores:, :topo.cores].sum(axis=1), flows_total[:topo.cores, topo.cores:].sum(0)],
                   axis=1)
    return Estimate(cycles=float(times.sum()), compute_cycles=comp_total, noc_cycles=noc_total,
                    fill_cycles=fill_total, phase_cycles=times, bottleneck=max(bound, key=bound.get),
                    link_bytes=link_total, core_busy=busy, hbm_bytes=hbm, flows=flows_total)
