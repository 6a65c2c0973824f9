"""A packet-level discrete-event simulation of the mesh, built on SimPy, that runs the **same plan** the analytical
model estimates (:mod:`.plan`) and so validates it (issue 15: within 10% on 2x2 and 4x4 meshes).

What it models, packet by packet:

* **links** -- every directed mesh link and HBM channel link is a :class:`simpy.Resource` of capacity 1; a packet
  holds a link for its serialisation time (bytes / the link's bandwidth), then spends ``noc.hop_latency_cycles`` in
  the next router (store-and-forward per packet, XY routes of :class:`~.topology.Topology`); packets of different
  flows queue on shared links in arrival order, so contention is simulated, not assumed;
* **HBM** -- a packet read from a stack first waits the stack's latency, then crosses the stack's channel link
  (the channels of a stack are used in turn), whose bandwidth is the stack's attained bandwidth / its span;
* **cores** -- each core executes its compute tasks in program order; a task starts when its inputs have arrived
  and its predecessor is done, and takes the cycles the plan gives it. Buffers are credits: a core's K/V chunk
  (``orchestration.ring_slots`` on a ring, two elsewhere) is fetched only when the chunk that many places earlier
  has been computed; a query tile is fetched two steps ahead; a tree's partial merges run on a separate engine
  (the softmax units) and hold the core back two steps at most;
* **streams** (the plan's, one per region, concurrently; phases and layers one after another):
  ``local`` -- a core reads each step's inputs from its stacks in ``chunks`` pieces and writes its outputs;
  ``ring`` -- each K/V chunk (a key cell of the plan's detail) is read into the ring's head and relayed packet by
  packet core to core; each core computes its share of it; ``tree`` -- a query tile is read by the root and
  relayed down the tree packet by packet, every core reads its own K/V in ``chunks`` pieces, and partials climb
  the tree after each core's merge.

The simulation is exact for what it models and needs no closed forms; it is checked against closed forms itself
(one flow over one link; a ring all-reduce). Its cost grows with the number of packets, so it is meant for small
meshes and short sequences (``noc.packet_bytes`` sets the granularity).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from .plan import TREE_SLOTS, Plan, Stream, bytes_per_cycle
from .schema import MeshArch
from .topology import Topology


def _simpy() -> Any:
    try:
        import simpy
    except ImportError as err:  # pragma: no cover - simpy is in the dev and spatial extras
        raise ImportError("the discrete-event validation needs SimPy: pip install 'sparseattn[spatial]'") from err
    return simpy


class MeshDES:
    """One SimPy environment over a mesh's links (see the module docstring)."""

    def __init__(self, topo: Topology, arch: MeshArch) -> None:
        self.simpy = _simpy()
        self.env = self.simpy.Environment()
        self.topo, self.arch = topo, arch
        self.links = [self.simpy.Resource(self.env, capacity=1) for _ in topo.link_src]
        self.bpc = np.asarray(bytes_per_cycle(arch, topo.link_gbps), dtype=np.float64)
        self.packet = arch.noc.packet_bytes
        self.hop = arch.noc.hop_latency_cycles
        self.hbm_latency = arch.hbm.latency_ns * 1e-9 * arch.clock_mhz * 1e6
        self._routes: dict[tuple[int, int, int], list[int]] = {}
        self._channel = 0

    # ------------------------------------------------------------------ events
    def done(self) -> Any:
        """An event that has already happened."""
        ev = self.env.event()
        ev.succeed()
        return ev

    def all_of(self, events: list[Any]) -> Any:
        return self.env.all_of(events) if events else self.done()

    # ------------------------------------------------------------------ packets
    def _route(self, a: int, b: int) -> list[int]:
        """Links of one packet from ``a`` to ``b``; a stack's channels are used in turn."""
        topo = self.topo
        self._channel += 1
        starts = topo.attach[a - topo.cores] if a >= topo.cores else [a]
        ends = topo.attach[b - topo.cores] if b >= topo.cores else [b]
        s, e = starts[self._channel % len(starts)], ends[self._channel % len(ends)]
        key = (a, b, s * topo.nodes + e)
        if key not in self._routes:
            hops = [a] * (a >= topo.cores) + topo.xy_path(s, e) + [b] * (b >= topo.cores)
            self._routes[key] = [topo._index[(u, v)] for u, v in itertools.pairwise(hops)]
        return self._routes[key]

    def _packet(self, a: int, b: int, size: float, start: Any, after: Any, arrived: Any):
        yield start
        if after is not None:
            yield after
        if a >= self.topo.cores:
            yield self.env.timeout(self.hbm_latency)
        for link in self._route(a, b):
            with self.links[link].request() as req:
                yield req
                yield self.env.timeout(size / self.bpc[link])
            yield self.env.timeout(self.hop)
        arrived.succeed()

    def transfer(self, a: int, b: int, nbytes: float, start: Any = None, after: list[Any] | None = None) -> list[Any]:
        """Send ``nbytes`` from node ``a`` to node ``b`` in packets once ``start`` has happened; packet ``k`` also
        waits for ``after[k]`` (a relay forwards a packet once it has arrived). Returns each packet's arrival."""
        if nbytes <= 0 or a == b:
            return [self.done()]
        n = max(1, math.ceil(nbytes / self.packet - 1e-9))
        start = start or self.done()
        arrivals = []
        for k in range(n):
            size = min(self.packet, nbytes - k * self.packet)
            ev = self.env.event()
            upstream = None if after is None else after[min(k, len(after) - 1)]
            self.env.process(self._packet(a, b, size, start, upstream, ev))
            arrivals.append(ev)
        return arrivals

    def hbm_read(self, core: int, nbytes: float, start: Any = None) -> Any:
        """Read ``nbytes`` into ``core`` from its stacks (the placement's shares); the event of their arrival."""
        share = self.topo.stack_share(np.array([core]), self.arch.hbm.placement)[0]
        parts = [ev for s in np.flatnonzero(share)
                 for ev in self.transfer(self.topo.cores + int(s), core, nbytes * share[s], start)]
        return self.all_of(parts)

    def hbm_write(self, core: int, nbytes: float, start: Any) -> Any:
        share = self.topo.stack_share(np.array([core]), self.arch.hbm.placement)[0]
        parts = [ev for s in np.flatnonzero(share)
                 for ev in self.transfer(core, self.topo.cores + int(s), nbytes * share[s], start)]
        return self.all_of(parts)

    # ------------------------------------------------------------------ programs
    def program(self, tasks: list[tuple[list[Any], float, Any]]) -> None:
        """Run ``(inputs, cycles, done)`` tasks in order on one engine."""

        def run():
            for deps, cycles, done in tasks:
                if deps:
                    yield self.env.all_of(deps)
                if cycles > 0:
                    yield self.env.timeout(cycles)
                done.succeed()

        self.env.process(run())

    def events(self, n: int) -> list[Any]:
        return [self.env.event() for _ in range(n)]


# ---------------------------------------------------------------------------------------------- streams
def _credit(done: list[Any], i: int, slots: int) -> Any:
    return done[i - slots] if i >= slots else None


def _local(des: MeshDES, st: Stream, chunks: int) -> None:
    core = int(st.cores[0])
    done = des.events(st.steps * chunks)
    tasks = []
    for s in range(st.steps):
        for j in range(chunks):
            q = s * chunks + j
            arrived = des.hbm_read(core, st.hbm_read[s, 0] / chunks, _credit(done, q, 2))
            tasks.append(([arrived], st.compute[s, 0] / chunks, done[q]))
        des.hbm_write(core, st.hbm_write[s, 0], done[s * chunks + chunks - 1])
    des.program(tasks)


def _ring_detail(st: Stream, chunks: int) -> tuple[np.ndarray, np.ndarray]:
    if st.chunk_bytes is not None and st.chunk_compute is not None:
        return st.chunk_bytes, st.chunk_compute
    return (np.repeat(st.relay[:, None] / chunks, chunks, axis=1),
            np.repeat(st.compute[:, :, None] / chunks, chunks, axis=2))


def _ring(des: MeshDES, st: Stream, chunks: int) -> None:
    cb, cc = _ring_detail(st, chunks)
    waves, k_chunks = cb.shape
    p, slots = len(st.cores), des.arch.orchestration.ring_slots
    done = [des.events(waves * k_chunks) for _ in range(p)]
    programs: list[list] = [[] for _ in range(p)]
    for w in range(waves):
        q_in = [des.hbm_read(int(st.cores[i]), st.hbm_read[w, i], done[i][(w - 1) * k_chunks] if w else None)
                for i in range(p)]
        for k in range(k_chunks):
            q = w * k_chunks + k
            share = des.topo.stack_share(st.cores[:1], des.arch.hbm.placement)[0]
            here = [ev for s in np.flatnonzero(share) for ev in
                    des.transfer(des.topo.cores + int(s), int(st.cores[0]), cb[w, k] * share[s],
                                 _credit(done[0], q, slots))]
            for i in range(p):
                if i:
                    here = des.transfer(int(st.cores[i - 1]), int(st.cores[i]), cb[w, k],
                                        _credit(done[i], q, slots), here)
                deps = [des.all_of(here)] + ([q_in[i]] if k == 0 else [])
                programs[i].append((deps, cc[w, i, k], done[i][q]))
        for i in range(p):
            des.hbm_write(int(st.cores[i]), st.hbm_write[w, i], done[i][w * k_chunks + k_chunks - 1])
    for tasks in programs:
        des.program(tasks)


def _tree(des: MeshDES, st: Stream, chunks: int) -> None:
    p, steps = len(st.cores), st.steps
    node = [int(n) for n in st.cores]
    done = [des.events(steps * chunks) for _ in range(p)]
    merged = [des.events(steps) for _ in range(p)]
    compute: list[list] = [[] for _ in range(p)]
    merges: list[list] = [[] for _ in range(p)]
    children = [np.flatnonzero(st.parent == i) for i in range(p)]
    partial_in: dict[tuple[int, int], Any] = {}
    for s in range(steps):
        q_start = [done[i][(s - TREE_SLOTS + 1) * chunks - 1] if s >= TREE_SLOTS else None for i in range(p)]
        q_at = [None] * p
        share = des.topo.stack_share(st.cores[:1], des.arch.hbm.placement)[0]
        q_at[0] = [ev for t in np.flatnonzero(share) for ev in
                   des.transfer(des.topo.cores + int(t), node[0], st.down[s] * share[t], q_start[0])]
        for i in range(1, p):  # breadth-first: the parent's copy is there to relay
            q_at[i] = des.transfer(node[st.parent[i]], node[i], st.down[s], q_start[i], q_at[st.parent[i]])
        for i in range(p):
            for j in range(chunks):
                q = s * chunks + j
                kv = des.hbm_read(node[i], st.hbm_read[s, i] / chunks, _credit(done[i], q, 2))
                deps = [kv] + ([des.all_of(q_at[i])] if j == 0 else [])
                if j == 0 and s >= TREE_SLOTS:
                    deps.append(merged[i][s - TREE_SLOTS])
                compute[i].append((deps, st.compute[s, i] / chunks, done[i][q]))
    for s in range(steps):
        for i in reversed(range(p)):  # children before parents: their partials exist when the parent waits
            deps = [done[i][s * chunks + chunks - 1]] + [partial_in[(int(c), s)] for c in children[i]]
            merges[i].append((deps, st.merge[s, i], merged[i][s]))
            if i:
                partial_in[(i, s)] = des.all_of(des.transfer(node[i], node[st.parent[i]], st.up[s], merged[i][s]))
            else:
                des.hbm_write(node[0], st.root_write[s], merged[0][s])
    for i in range(p):
        des.program(compute[i])
        des.program(merges[i])


def run_phase(topo: Topology, arch: MeshArch, streams: list[Stream], chunks: int = 8) -> float:
    """Cycles of one phase (its streams running concurrently) in a fresh simulation."""
    des = MeshDES(topo, arch)
    for st in streams:
        if not st.steps:
            continue
        {"local": _local, "ring": _ring, "tree": _tree}[st.kind](des, st, chunks)
    des.env.run()
    return float(des.env.now)


def simulate_plan(plan: Plan, topo: Topology, arch: MeshArch, chunks: int = 8) -> float:
    """Cycles of the whole plan: every phase of every layer simulated, one after another."""
    return sum(run_phase(topo, arch, streams, chunks) for layer in plan.layers for streams in layer)
