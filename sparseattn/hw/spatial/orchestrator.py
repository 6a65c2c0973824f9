"""The orchestrator: lays one layer on the mesh (regions x dataflow), checks it fits the cores, and picks the
fastest layout per workload (dataflow (d), the hybrid; :mod:`.dataflows`).

Candidates are every cut of the mesh into equal rectangular regions (``rows x cols`` dividing the mesh) with
KV-sequence sharding (``tree``) or query sharding on a K/V ring (``ring``) inside a region, and one core per region
(head parallel, ``local``). Each candidate is estimated analytically (:func:`~.plan.estimate`) on a sample of the
layers (the first and the middle one: layers differ only in which heads of the trace they carry) and the fastest
feasible one runs the whole model; ``orchestration.dataflow`` / ``orchestration.regions`` restrict the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...core.shape import Shape
from ..config import ConfigError
from ..mapping import Mapping
from ..schema import AcceleratorArch
from ..traffic import buffer_needs
from .dataflows import Tables, deal_groups, group_work, layer_groups, local_stream, merge_rows, ring_stream, tree_stream
from .plan import Plan, estimate
from .schema import MeshArch
from .topology import Topology

Inner = Literal["local", "ring", "tree"]
INNER_OF = {"kv_shard": "tree", "q_ring": "ring", "head": "local"}
NAMES = {"tree": "KV sharding + LSE tree", "ring": "query sharding + K/V ring", "local": "head parallel"}


@dataclass(frozen=True)
class Layout:
    """``regions`` rectangles of ``rows x cols`` cores, each running ``inner``."""

    rows: int
    cols: int
    inner: Inner
    regions: int

    @property
    def label(self) -> str:
        if self.inner == "local":
            return f"head parallel ({self.regions} cores)"
        where = "whole mesh" if self.regions == 1 else f"{self.regions} regions of {self.rows}x{self.cols}"
        return f"{NAMES[self.inner]} ({where})"


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layouts(arch: MeshArch) -> list[Layout]:
    """The candidate layouts ``orchestration`` allows."""
    o, rows, cols = arch.orchestration, arch.mesh.rows, arch.mesh.cols
    out = []
    for r in _divisors(rows):
        for c in _divisors(cols):
            regions = (rows // r) * (cols // c)
            inners: tuple[Inner, ...] = ("local",) if r * c == 1 else ("ring", "tree")
            out += [Layout(r, c, inner, regions) for inner in inners]
    if o.dataflow in ("kv_shard", "q_ring"):
        out = [x for x in out if x.inner == INNER_OF[o.dataflow] and (o.regions is not None or x.regions == 1)]
    elif o.dataflow == "head":
        out = [x for x in out if x.inner == "local"]
    if o.regions is not None:
        out = [x for x in out if x.regions == o.regions]
    if not out:
        raise ConfigError(f"orchestration: no layout of the {rows}x{cols} mesh has dataflow {o.dataflow!r} with "
                          f"regions={o.regions} (regions must be a count of equal rectangles that tile the mesh)")
    return out


def check_fit(core: AcceleratorArch, shape: Shape, mapping: Mapping, inner: Inner, partial_bits: int) -> None:
    """Raise :class:`ConfigError` when a core cannot hold what ``inner`` keeps on chip: its formal tile (Q, K, V
    double buffered, the O tile) and, for KV sharding, the partial (m, l, o) of a query tile in place of the O tile
    (children's partials are merged as their packets stream in, so they take no SRAM)."""
    needs = buffer_needs(core, shape, mapping)
    what = "the formal tile"
    if inner == "tree":
        needs["o"] = mapping.formal.q * (shape.head_dim * core.operands.q_bits + 2 * partial_bits) / 8 / 1024
        what = "the formal tile and a partial (m, l, o) per query row"
    holders = {b.name: b for t in ("q", "k", "v", "o") for b in core.buffer_for(t)}
    pooled = [t for t in needs if {b.name for b in core.buffer_for(t)} & set(holders)]
    need, have = sum(needs[t] for t in pooled), sum(b.kb for b in holders.values())
    if not holders or need > have:
        raise ConfigError(
            f"core {core.name!r}: {NAMES[inner]} needs {what} on every core (mapping.formal q={mapping.formal.q}, "
            f"k={mapping.formal.k}; head_dim {shape.head_dim}): {'+'.join(pooled)} = {need:.1f} KB in "
            f"core.buffers {', '.join(sorted(holders)) or '(none holds q/k/v/o)'} of {have:.1f} KB; the shard does "
            "not fit a core's SRAM (a smaller mapping.formal tile or larger buffers would)")


def build_plan(t: Tables, topo: Topology, arch: MeshArch, layout: Layout, layers: list[int],
               detail: bool = False) -> Plan:
    """``layout`` applied to ``layers`` (see :mod:`.dataflows`)."""
    balance = arch.orchestration.balance
    regions = topo.regions(layout.rows, layout.cols)
    out, merged = [], 0.0
    for layer in layers:
        groups = layer_groups(t.costs, layer)
        dealt = deal_groups(group_work(t, groups), len(regions), balance)
        streams = []
        for region, idx in zip(regions, dealt, strict=True):
            gs = [groups[i] for i in idx]
            if layout.inner == "local":
                streams.append(local_stream(t, gs, int(topo.region_nodes(region)[0])))
            elif layout.inner == "ring":
                streams.append(ring_stream(t, gs, topo.snake(region), balance, detail))
            else:
                nodes, parent = topo.comb_tree(region)
                streams.append(tree_stream(t, gs, nodes, parent, balance))
                merged += merge_rows(t, gs, region.size)
        out.append([streams])
    extra = {k: v * merged for k, v in t.merge_ops_per_row().items()} if merged else {}
    return Plan(label=layout.label, layers=out, extra_ops=extra)


def choose(t: Tables, topo: Topology, arch: MeshArch) -> tuple[Layout, list[dict]]:
    """The fastest feasible layout on a sample of layers, and every candidate's estimate."""
    shape, core, mapping = t.costs.shape, t.costs.core, t.costs.mapping
    sample = sorted({0, shape.layers // 2})
    rows, best = [], None
    for layout in layouts(arch):
        try:
            check_fit(core, shape, mapping, layout.inner, arch.orchestration.partial_bits)
        except ConfigError as err:
            rows.append({"layout": layout.label, "feasible": False, "reason": str(err)})
            continue
        est = estimate(build_plan(t, topo, arch, layout, sample), topo, arch)
        per_layer = est.cycles / len(sample)
        rows.append({"layout": layout.label, "feasible": True, "cycles_per_layer": per_layer,
                     "bottleneck": est.bottleneck})
        if best is None or per_layer < best[0]:
            best = (per_layer, layout)
    if best is None:
        raise ConfigError("no layout fits the cores: " + "; ".join(r["reason"] for r in rows))
    return best[1], rows
