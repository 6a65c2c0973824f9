"""The two baselines Spatial-STAR is compared with, on the same mesh, NoC and HBM (issue 15):

* ``dense-flash`` -- the mesh running **dense** attention, FlashAttention-style: the core's SU-FA arrays compute
  every valid pair at the trace's formal widths (16 bit), no prediction or selection; the partitioning is the best
  the orchestrator finds among the same dataflows (FlashAttention-2 parallelises over query blocks, ring attention
  passes K/V around, flash-decoding splits the keys). :func:`dense_flash_trace` makes its trace from the method's
  own: the kept-pair work rescaled to density 1 (:func:`~sparseattn.hw.traces.with_density`) and the predict /
  select / on-demand K/V stages dropped. FA-2's per-tile rescaling is not added (it is ``O(rows x head_dim)`` per
  key tile, small beside ``2 x head_dim`` MACs per pair).
* ``stage-isolated`` -- the same STAR cores, **uncoordinated**: the three stages run one after another over the
  whole layer, each partitioned on its own (contiguous query rows per core, no K/V shared between cores, no work
  balancing) -- (1) DLZS predicts every valid pair's score and spills the predicted rows to HBM
  (``operands.score_bits`` each); (2) a **global** top-k per row reads them back and writes the kept indices
  (32 bit each); its compare work is the trace's SADS work times ``log2(kN) / log2(kN / Tc)`` (a row-wide
  selection is as deep as the log of the whole row's kept set, SADS's the log of one sub-segment's); (3) the
  formal stage reads the indices and **gathers** K and V for its rows -- ``gather: tile`` the union of the keys
  the rows of a query tile kept, at the 16-key granularity of the trace's profile (generous: a RASS-like union),
  ``gather: row`` every row its own keys -- with no cross-stage reuse of K.

Which baseline the headline compares with: the stage-isolated one, because it is the same cores, mesh and
memory with only the dataflow and orchestration taken away -- what STAR's abstract credits for its 20.1x
("optimizing dataflow and execution orchestration", "compared to the baseline design"). Dense-flash is reported
beside it: it measures sparsity plus dataflow together.
"""

from __future__ import annotations

import math

import numpy as np

from ...core.records import SadsSetting
from ...core.workload import Workload
from ..mapping import Tile
from ..tiling import project
from ..traces import with_density
from .costs import CoreCosts
from .dataflows import Tables, layer_groups, local_from
from .plan import Plan
from .schema import MeshArch
from .topology import Topology

DROPPED = ("predict", "select", "kvgen", "quantize")
INDEX_BITS = 32  # a kept key's index, as the formal stage reads it (assumption: 32-bit token positions)
PHASES = (("quantize", "predict"), ("select",), ("kvgen", "qk", "softmax", "pv", "other"))


def dense_flash_trace(trace: Workload) -> Workload:
    """``trace`` as dense FlashAttention on the same datapath (see the module docstring)."""
    dense = with_density(trace, 1.0)
    out = Workload(shape=dense.shape, meta={**trace.meta, "method": f"{trace.meta.get('method')}-dense-flash"})
    for (key, per), count in dense.terms.items():
        if key.stage not in DROPPED:
            out.add(key.stage, key.op, key.bits, count, per)
    out.profile = dense.profile
    out.meta["design"] = "dense FlashAttention on the same cores: formal work at density 1, no predict/select"
    return out


def global_topk_factor(trace: Workload, k_len: int) -> float:
    """Compare work of a row-wide top-k over SADS's per-sub-segment top-(k/n): ``log2(kN) / log2(kN / Tc)``, with
    ``Tc`` from the trace's :class:`~sparseattn.core.records.SadsSetting` record and the density from its profile
    (else the setting's keep fraction); a trace without them is a clear error."""
    setting = trace.record(SadsSetting, "the stage-isolated baseline's global top-k (hw/spatial/baselines.py)")
    needed_by = "the stage-isolated baseline"
    density = trace.density if trace.profile is not None else setting.uniform("k", needed_by)
    tc = float(setting.uniform("tc", needed_by))
    kept = max(2.0, density * k_len)
    return math.log2(kept) / math.log2(max(2.0, kept / tc))


def _gathered_keys(costs: CoreCosts, trace: Workload, gather: str) -> np.ndarray:
    """``[n, A]`` keys one head's query cell gathers in the formal stage of the stage-isolated baseline."""
    ts = costs.ts
    if gather == "row":
        return ts.kept.sum(-1)
    fine = project(trace, costs.shape, Tile(q=costs.mapping.formal.q, k=16), max_cells=len(ts.rows))
    keys = fine.fetch * (fine.q_tiles[:, None] * fine.k_tiles[None, :] * 16)[None]
    return keys.sum(-1)


def isolated_plan(costs: CoreCosts, trace: Workload, topo: Topology, arch: MeshArch) -> Plan:
    """The stage-isolated, uncoordinated baseline as three phases per layer of ``local`` streams (see the module
    docstring): contiguous query units per core, every core reading and writing HBM on its own."""
    shape, ops = costs.shape, costs.core.operands
    tables = [Tables(costs, arch.orchestration.partial_bits, stages) for stages in PHASES]
    factor = global_topk_factor(trace, shape.k_len)
    valid = costs.ts.valid.sum(-1)  # [A] valid pairs of one head's query cell
    kept = costs.ts.kept.sum(-1)  # [n, A]
    kv_row = shape.head_dim * ops.kv_bits / 8
    gathered = _gathered_keys(costs, trace, arch.orchestration.gather) * 2 * kv_row  # K and V
    scan = costs.predict_alone  # the predictor's K read
    phase_arrays = [
        (tables[0].pass_full, costs.q_bytes + scan, np.broadcast_to(valid * ops.score_bits / 8, kept.shape)),
        (tables[1].pass_full * factor, np.broadcast_to(valid * ops.score_bits / 8, kept.shape),
         kept * INDEX_BITS / 8),
        (tables[2].pass_full, costs.q_bytes + kept * INDEX_BITS / 8 + gathered, costs.o_bytes),
    ]
    tile = tables[0].tile_bytes()
    layers = []
    for layer in range(shape.layers):
        inst = np.concatenate(layer_groups(costs, layer))
        src = np.repeat(costs.source_of(inst), len(valid))
        cell = np.tile(np.arange(len(valid)), len(inst))
        owner = np.arange(len(src)) * topo.cores // len(src)  # contiguous query units per core
        phases = []
        for comp, read, write in phase_arrays:
            streams = []
            for core in range(topo.cores):
                pick = owner == core
                s, a = src[pick], cell[pick]
                streams.append(local_from(core, [comp[s, a]], [read[s, a]], [write[s, a]], tile["q"] + tile["kv"],
                                          tile["o"]))
            phases.append(streams)
        layers.append(phases)
    extra = {key: count * (factor - 1) for key, count in costs.target.ops.items() if key.stage == "select"}
    notes = [f"stage-isolated baseline: global top-k compare factor {factor:.3f}, K/V gathered per "
             f"{arch.orchestration.gather}, predicted scores spilled at {ops.score_bits} bit"]
    return Plan(label="stage-isolated, uncoordinated (3 phases, contiguous query rows, no sharing)", layers=layers,
                notes=notes, extra_ops={(k.stage, k.op, k.bits): v for k, v in extra.items()})
