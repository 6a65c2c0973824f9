"""Memory traffic and buffer fit: from a projected sparsity profile, a mapping and an architecture's operand
formats to DRAM and SRAM bytes per tensor (stage 2 of the simulator, with :mod:`~sparseattn.hw.tiling`).

**Traffic rules** (per query tile of the mapping's formal tile):

* Q is read and O written once;
* formal compute reads the fetched K and V tiles (``operands.kv_bits``); with ``mapping.gqa_share`` the heads of a
  KV group read the union of their tiles once (estimated from the source's own GQA groups);
* a predictor that reads K (``operands.predict_k_bits``) reads every valid K tile of the *prediction* tile;
  with ``mapping.cross_stage_reuse`` and equal prediction and formal tiles (SOFA/STAR's coordinated tiling) that
  read is at full precision and formal compute reuses it on chip, so only V is read again for kept pairs; when
  the tiles differ the two K reads are separate (and the result says so);
* with ``mapping.kv_residency = auto``, when all of one KV head's K (and V) fit in the K/V buffers beside the
  Q/O tiles they are read once per KV head, not once per query tile;
* a tensor in ``operands.replace_reads`` (PADE: K as bit planes, V for survivors) takes the trace's extra read
  instead, and every other extra read of the trace (re-fetches, predictor operands) is added as its own tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.shape import Shape
from ..core.workload import PAIR_BASES, Workload
from .bitplanes import plane_traffic, rates_of
from .config import ConfigError
from .kvgen import Generation, generated_cells
from .mapping import Mapping, Tile
from .schema import AcceleratorArch
from .tiling import TiledSparsity


# ------------------------------------------------------------------------------------------------ buffer fit
def buffer_needs(arch: AcceleratorArch, shape: Shape, mapping: Mapping, tile: Tile | None = None,
                 k_bits: int | None = None) -> dict[str, float]:
    """KB each tensor class needs on chip for one ``tile`` (default: the formal tile), streamed tiles twice when
    double buffered; ``k_bits`` overrides the K width (the predictor's)."""
    ops, d, tile = arch.operands, shape.head_dim, tile or mapping.formal
    copies = 2 if mapping.double_buffered else 1
    return {
        "q": copies * tile.q * d * ops.q_bits / 8 / 1024,
        "k": copies * tile.k * d * (k_bits or ops.kv_bits) / 8 / 1024,
        "v": copies * tile.k * d * ops.kv_bits / 8 / 1024,
        "o": tile.q * d * ops.q_bits / 8 / 1024,  # the output tile (accumulators live in the PEs)
        "scores": tile.q * tile.k * ops.score_bits / 8 / 1024,
    }


def _check_needs(arch: AcceleratorArch, shape: Shape, needs: dict[str, float], tile: Tile, stage: str) -> None:
    for tensor in needs:
        holders = arch.buffer_for(tensor)
        if not holders:
            if tensor == "scores":
                continue  # scores stay in the PE array
            raise ConfigError(f"architecture {arch.name!r} has no buffer that holds {tensor!r} (buffers[*].holds)")
        pooled = [t for t in needs if {b.name for b in arch.buffer_for(t)} & {b.name for b in holders}]
        need = sum(needs[t] for t in pooled)
        have = sum(b.kb for b in {b.name: b for t in pooled for b in arch.buffer_for(t)}.values())
        if need > have:
            names = ", ".join(sorted({b.name for t in pooled for b in arch.buffer_for(t)}))
            raise ConfigError(
                f"the {stage} tile (mapping.{stage}: q={tile.q}, k={tile.k}; head_dim {shape.head_dim}) does not "
                f"fit {arch.name!r}: {'+'.join(pooled)} need {need:.1f} KB in buffer(s) {names} of {have:.1f} KB, "
                f"over by {need - have:.1f} KB"
            )


def check_fit(arch: AcceleratorArch, shape: Shape, mapping: Mapping) -> dict[str, float]:
    """Raise :class:`ConfigError` (naming the stage, the buffers and by how much) when a tile of ``mapping`` does
    not fit the buffers; returns the formal tile's needs."""
    needs = buffer_needs(arch, shape, mapping)
    _check_needs(arch, shape, needs, mapping.formal, "formal")
    if mapping.prediction != mapping.formal and arch.operands.predict_k_bits:
        pred = buffer_needs(arch, shape, mapping, mapping.prediction, arch.operands.predict_k_bits)
        _check_needs(arch, shape, {t: pred[t] for t in ("q", "k", "scores")}, mapping.prediction, "predict")
    return needs


def residency(arch: AcceleratorArch, shape: Shape, mapping: Mapping) -> dict[str, bool]:
    """Whether one KV head's K (and V) stay on chip for the whole head: they must fit in the K/V buffers beside
    the Q/O tiles held there (``mapping.kv_residency = never``: neither does)."""
    if mapping.kv_residency in ("never", "survivors"):
        return {"k": False, "v": False}
    needs = buffer_needs(arch, shape, mapping)
    kv_buffers = {b.name for b in arch.buffers if {"k", "v"} & set(b.holds)}
    capacity = sum(b.kb for b in arch.buffers if b.name in kv_buffers) * 1024
    capacity -= sum(needs[t] * 1024 for t in ("q", "o") if {b.name for b in arch.buffer_for(t)} & kv_buffers)
    head_bytes = shape.k_len * shape.head_dim * arch.operands.kv_bits / 8
    both = 2 * head_bytes <= capacity
    return {"k": both or head_bytes + needs["v"] * 1024 <= capacity, "v": both}


# ------------------------------------------------------------------------------------------------ key reads
@dataclass
class KeyReads:
    """Keys read per (source instance, query cell) of one target instance, by reason ``[n, A]``."""

    kept: np.ndarray  # K/V tiles with a kept pair, read per query tile
    predict: np.ndarray  # every valid tile of the prediction tile, per query tile
    once_kept: np.ndarray  # each needed key tile once per KV head, spread evenly over the query cells
    once_valid: np.ndarray  # every key once per KV head


def key_reads(mapping: Mapping, ts: TiledSparsity) -> KeyReads:
    """How many keys each cell reads (shared by a KV group's heads when ``mapping.gqa_share``)."""
    group = ts.shape.group_size
    shared = mapping.gqa_share and group > 1
    fetch = ts.fetch_group if shared else ts.fetch
    share = 1.0 / group if shared else 1.0
    n_cells, k = len(ts.rows), ts.tile.k
    tiles = ts.q_tiles[:, None] * ts.k_tiles[None, :] * k  # keys fetched per cell if every tile is
    kept = (fetch * tiles[None]).sum(-1) * share
    once_kept = ((fetch.max(axis=1) * ts.k_tiles[None] * k).sum(-1) * share / n_cells)[:, None]
    return KeyReads(
        kept=kept,
        predict=np.broadcast_to(ts.valid_keys(mapping.prediction).sum(-1) * share, kept.shape),
        once_kept=np.broadcast_to(once_kept, kept.shape),
        once_valid=np.full(kept.shape, float(ts.keys.sum()) * share / n_cells),
    )


# ------------------------------------------------------------------------------------------------ traffic
@dataclass
class Traffic:
    """DRAM and SRAM bytes per (source instance, query cell) and totals by tensor (all target instances)."""

    per_cell: np.ndarray  # [n, A] DRAM bytes (all target instances mapped to the source instance)
    dram_bytes: dict[str, float]
    sram_read_bytes: dict[str, float]
    resident: dict[str, bool]  # K / V kept on chip for a whole KV head
    notes: list[str] = field(default_factory=list)
    generation: Generation | None = None  # K/V generated on chip (operands.kv_source: generated)


def _dense_cells(arch: AcceleratorArch, mapping: Mapping, ts: TiledSparsity, reads: KeyReads,
                 resident: dict[str, bool]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Bytes of Q, O, K (and the predictor's K) and V per cell of one target instance."""
    ops, d = arch.operands, ts.shape.head_dim
    kv_b, q_b, notes = ops.kv_bits / 8, ops.q_bits / 8, []
    rows = np.broadcast_to(ts.rows[None].astype(np.float64), reads.kept.shape)
    cells = {"q": rows * d * q_b, "o": rows * d * q_b}
    k_fetched = reads.once_kept if resident["k"] else reads.kept
    k_scanned = reads.once_valid if resident["k"] else reads.predict
    predict_bits = ops.predict_k_bits or 0
    if predict_bits and mapping.shares_k_read:
        cells["k"] = k_scanned * d * max(predict_bits, ops.kv_bits) / 8
    else:
        cells["k"] = k_fetched * d * kv_b
        if predict_bits:
            cells["k_predict"] = k_scanned * d * predict_bits / 8
            if mapping.cross_stage_reuse:
                notes.append("cross-stage K reuse needs equal prediction and formal tiles; with "
                             f"{mapping.prediction.q}x{mapping.prediction.k} vs {mapping.formal.q}x{mapping.formal.k}"
                             " the predictor's K read is separate")
    cells["v"] = (reads.once_kept if resident["v"] else reads.kept) * d * kv_b
    return cells, notes


def _generated(arch: AcceleratorArch, mapping: Mapping, ts: TiledSparsity, reads: KeyReads,
               cells: dict[str, np.ndarray], notes: list[str]) -> Generation | None:
    """With on-chip K/V generation, tokens and weights replace the K and V reads (:mod:`~sparseattn.hw.kvgen`)."""
    if arch.operands.kv_source != "generated":
        return None
    if arch.operands.replace_reads:
        raise ConfigError(f"{arch.name!r}: operands.kv_source 'generated' cannot be combined with replace_reads")
    share = 1.0 / ts.shape.group_size if mapping.gqa_share and ts.shape.group_size > 1 else 1.0
    extra, gen, more = generated_cells(arch, mapping, ts, reads.kept, reads.predict, share)
    for t in ("k", "v", "k_predict"):
        cells.pop(t, None)
    cells.update(extra)
    notes.extend(more)
    return gen


def _check_replaced_reads(arch: AcceleratorArch, trace: Workload) -> None:
    for tensor, read in arch.operands.replace_reads.items():
        if read not in trace.extra_reads:
            raise ConfigError(
                f"{arch.name!r} replaces {tensor!r} traffic by the trace's extra read {read!r}, which this "
                f"{trace.meta.get('method')!r} trace does not have (it has {sorted(trace.extra_reads)})"
            )


def _bitplane_totals(arch: AcceleratorArch, mapping: Mapping, trace: Workload, ts: TiledSparsity,
                     resident: dict[str, bool], notes: list[str]) -> dict[str, float]:
    """K and V totals of a bit-plane trace (:mod:`~sparseattn.hw.bitplanes`) from the rates of its
    :class:`~sparseattn.core.records.BitplaneReads` record (a trace without one is a clear error)."""
    rates = rates_of(trace)
    needs = buffer_needs(arch, ts.shape, mapping)
    kv_buffers = {b.name for b in arch.buffers if {"k", "v"} & set(b.holds)}
    qo = sum(needs[t] * 1024 for t in ("q", "o") if {b.name for b in arch.buffer_for(t)} & kv_buffers)
    planes = plane_traffic(arch, ts.shape, mapping, rates, resident["k"], qo)
    notes.extend(planes.notes)
    return {"k": planes.k, "v": planes.v}


def _extra_cells(arch: AcceleratorArch, mapping: Mapping, trace: Workload, ts: TiledSparsity,
                 cells: dict[str, np.ndarray], resident: dict[str, bool], notes: list[str]) -> None:
    """Add (or substitute, for replaced tensors) the trace's extra reads to ``cells``, spread over the cells by kept
    pairs (pair-based reads of V) or valid pairs (everything else). A bit-plane trace's replaced K and V are counted
    from its rates at the target shape (:mod:`~sparseattn.hw.bitplanes`)."""
    _check_replaced_reads(arch, trace)
    replace = arch.operands.replace_reads
    planes = _bitplane_totals(arch, mapping, trace, ts, resident, notes) if replace else {}
    w_kept = ts.kept.sum(-1) / max(ts.kept.sum(), 1e-30)
    w_valid = np.broadcast_to(ts.valid.sum(-1)[None] / (ts.valid.sum() * len(ts.kept)), w_kept.shape)
    for name, nbytes in trace.extra_reads.items():
        replaced = [t for t, r in replace.items() if r == name]
        key = replaced[0] if replaced else name
        pair_based = trace.basis_of_read(name) in PAIR_BASES
        weight = w_kept if (pair_based and key == "v") else w_valid
        if key in planes:
            cells[key] = weight * planes[key] / ts.multiplicity
            continue
        extra = weight * nbytes / ts.multiplicity
        if replaced and resident[key]:  # on chip for the whole head: never more than one read of what is needed
            extra = np.minimum(extra, cells[key])
        cells[key] = extra


def traffic(arch: AcceleratorArch, mapping: Mapping, trace: Workload, ts: TiledSparsity) -> Traffic:
    """DRAM bytes per tensor and per (source instance, query cell) for ``trace`` on ``arch`` under ``mapping``.

    ``trace`` is the trace at the target shape (its op counts and extra reads are target totals); ``ts`` its
    projected sparsity. See the module docstring for the rules.
    """
    m, d, kv_b = ts.multiplicity, ts.shape.head_dim, arch.operands.kv_bits / 8
    resident = residency(arch, ts.shape, mapping)
    reads = key_reads(mapping, ts)
    cells, notes = _dense_cells(arch, mapping, ts, reads, resident)
    generation = _generated(arch, mapping, ts, reads, cells, notes)
    _extra_cells(arch, mapping, trace, ts, cells, resident, notes)
    total = {name: float(c.sum() * m) for name, c in cells.items()}
    scanned = reads.predict if arch.operands.predict_k_bits else 0
    sram = {
        "k": float((reads.kept + scanned).sum() * d * kv_b * m),
        "v": float(reads.kept.sum() * d * kv_b * m),
        "q": total["q"],
    }
    for t in arch.operands.replace_reads:
        sram[t] = max(total[t], sram[t])
    return Traffic(per_cell=sum(cells.values()) * m, dram_bytes=total, sram_read_bytes=sram, resident=resident,
                   notes=notes, generation=generation)
