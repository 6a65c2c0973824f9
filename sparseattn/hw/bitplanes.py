"""PADE's K-plane and surviving-V traffic at any shape, from the rates its trace measured (PADE sections V-B, V-E).

PADE fetches K plane by plane (a bit-plane-first DRAM layout) and V only for survivors; ``parallel_rows`` (8) query
rows of a head -- and, with GQA, every query head of the KV group -- share each fetch. The PADE trace records per
(row, key) and per (group, key) rates (its :class:`~sparseattn.core.records.BitplaneReads` record):
planes fetched, surviving V rows, and the fraction of a KV head's keys that survive for some row. Scaling its
per-pair byte counts to another shape is wrong twice over (issue 12, audit errors 1 and 2): a decode step has one
row, not 8, to share a fetch (the count falls below the physical floor of one MSB plane per live key), and a model
without GQA has one head, not 3. So traffic is counted here from the rates and the target's geometry:

* **rows sharing a fetch** ``R = min(parallel_rows, q_len) x group_size`` (GQA heads when ``mapping.gqa_share``);
  a rate at ``R`` rows is interpolated log-linearly between the trace's one row and its ``R_src`` rows
  (``parallel_rows x its group size``) and never extrapolated -- **our model**, anchored at both measured ends;
* **K streamed**: every row group reads, for every key its rows see, ``planes(R)`` planes of ``head_dim`` bits;
  a live key fetches at least its MSB plane, so a decode step reads at least one plane of every key;
* **K resident** (``mapping.kv_residency: auto`` and one KV head's INT8 K fits beside the Q/O tiles,
  :func:`~sparseattn.hw.traffic.residency`): every plane once per head;
* **V**: survivors' V rows stay in the KV buffer across query groups (PADE: the 320 KB buffer "holds ~12.8k tokens
  of survivors"): when one group's survivors fit in the space K leaves, each V row a head needs is read once
  (``v_union`` of INT8 V); a fraction ``c = space / working set`` of it stays when they do not, the rest is
  re-read per group as the survivors of each group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.records import BitplaneReads
from ..core.shape import Shape
from ..core.workload import Workload
from .config import ConfigError
from .mapping import Mapping
from .schema import AcceleratorArch


@dataclass(frozen=True)
class PlaneRates:
    """Rates of a PADE trace (see the module docstring), from its :class:`~sparseattn.core.records.BitplaneReads`."""

    parallel_rows: int
    group_heads: int
    planes_per_row_key: float
    planes_per_group_key: float
    v_per_row_key: float
    v_per_group_key: float
    v_union: float
    bits: int

    @property
    def rows_per_group(self) -> int:
        return self.parallel_rows * self.group_heads

    def at(self, rows: float, which: str) -> float:
        """``planes`` or ``v`` per key for a fetch shared by ``rows`` rows (log-linear between the anchors)."""
        one, group = ((self.planes_per_row_key, self.planes_per_group_key) if which == "planes"
                      else (self.v_per_row_key, self.v_per_group_key))
        if rows <= 1 or self.rows_per_group <= 1:
            return one
        if rows >= self.rows_per_group:
            return group
        return one + (group - one) * math.log(rows) / math.log(self.rows_per_group)


def rates_of(trace: Workload) -> PlaneRates:
    """The bit-plane rates of a trace, from its :class:`~sparseattn.core.records.BitplaneReads` record (a trace
    without one is a clear error). Counts that do not cover the whole trace are refused."""
    c = trace.record(BitplaneReads, "the bit-plane traffic model (hw/bitplanes.py)")
    source = trace.measured_shape
    if abs(c.valid_pairs - source.valid_pairs) > 1e-6 * source.valid_pairs:
        raise ConfigError(f"the trace's bit-plane reads count {c.valid_pairs:.0f} valid pairs, the trace has "
                          f"{source.valid_pairs}: regenerate the trace")
    if min(c.valid_pairs, c.group_keys, c.seen_keys) <= 0:
        raise ConfigError("the trace's bit-plane reads count no valid pair, group key or seen key: regenerate the "
                          "trace")
    return PlaneRates(
        parallel_rows=c.parallel_rows, group_heads=c.group_heads, bits=c.bits,
        planes_per_row_key=c.plane_rounds / c.valid_pairs, planes_per_group_key=c.k_planes / c.group_keys,
        v_per_row_key=c.survivors / c.valid_pairs, v_per_group_key=c.v_reads / c.group_keys,
        v_union=c.union_keys / c.seen_keys)


def group_keys(shape: Shape, rows: int) -> float:
    """Keys the row groups of one head instance read, summed over its groups: each group of ``rows`` consecutive
    query rows reads every key one of its rows sees (causal: up to its last row; a window: from its first row's
    window start)."""
    first = np.arange(0, shape.q_len, rows, dtype=np.int64)
    last = np.minimum(first + rows, shape.q_len) - 1
    if not shape.causal:
        return float(len(first) * shape.k_len)
    reach = np.minimum(shape.k_len, shape.offset + last + 1)
    lo = np.maximum(0, shape.offset + first - shape.window + 1) if shape.window else 0
    return float((reach - lo).sum())


@dataclass
class PlaneTraffic:
    """DRAM bytes of K planes and surviving V rows over all instances, and what was assumed."""

    k: float
    v: float
    notes: list[str]


def _sharing_rows(shape: Shape, rates: PlaneRates, mapping: Mapping) -> tuple[int, float]:
    rows = min(rates.parallel_rows, shape.q_len)
    heads = shape.group_size if mapping.gqa_share else 1
    return rows, float(rows * heads)


def plane_traffic(arch: AcceleratorArch, shape: Shape, mapping: Mapping, rates: PlaneRates, k_resident: bool,
                  qo_bytes: float) -> PlaneTraffic:
    """K-plane and surviving-V bytes of ``shape`` on ``arch`` (see the module docstring); ``qo_bytes``: the Q/O
    tiles held in the K/V buffer."""
    d, bits = shape.head_dim, rates.bits
    kv_inst = shape.layers * shape.batch * shape.kv_heads
    rows, sharing = _sharing_rows(shape, rates, mapping)
    keys = group_keys(shape, rows)
    planes, v_rate = max(1.0, rates.at(sharing, "planes")), rates.at(sharing, "v")
    k_stream = kv_inst * keys * planes * d / 8
    k_once = kv_inst * shape.k_len * d * bits / 8
    # survivors: the planes a group fetched serve the next groups (mapping.k_plane_reuse head: at most once per
    # head, as resident K) or are streamed again per group
    reused = k_resident or (mapping.kv_residency == "survivors" and mapping.k_plane_reuse == "head")
    k = min(k_stream, k_once) if reused else k_stream
    v_stream = kv_inst * keys * v_rate * d * bits / 8
    v_union = kv_inst * shape.k_len * rates.v_union * d * bits / 8
    capacity, working = _survivor_space(arch, shape, mapping, rates, k_resident, qo_bytes, v_rate)
    cached = min(1.0, max(0.0, capacity) / working) if working > 0 else 1.0
    v = min(v_stream, cached * v_union + (1 - cached) * v_stream)
    held = "survivors' K and V" if mapping.kv_residency == "survivors" else "surviving V"
    k_how = ("resident" if k_resident else "planes reused across groups" if reused else "streamed per row group")
    notes = [f"bit planes: {sharing:g} rows share a fetch; {planes:.3g} planes and {v_rate:.3g} surviving V rows per "
             f"(group, key); K {k_how}; "
             f"{cached:.0%} of a group's {held} ({working / 1024:.1f} KB) stays on chip "
             f"({max(0.0, capacity) / 1024:.1f} KB free), V read {v / max(v_union, 1e-30):.3g}x the "
             f"head's needed rows"]
    return PlaneTraffic(k=k, v=v, notes=notes)


def _survivor_space(arch: AcceleratorArch, shape: Shape, mapping: Mapping, rates: PlaneRates, k_resident: bool,
                    qo_bytes: float, v_rate: float) -> tuple[float, float]:
    """Bytes of the K/V buffer free for survivors, and one query group's survivor working set (its widest).

    ``kv_residency: survivors`` (PADE section VI-C: the 320 KB buffer holds ~12.8k tokens of survivors at 20%
    density, 12,800 x 0.20 x (64 B K + 64 B V) = 320 KiB): the buffer holds each survivor's INT8 K and V, reused by
    the next query group, and K streams plane by plane; otherwise it holds surviving V beside a resident K (or
    the K tiles in flight)."""
    d, bits = shape.head_dim, rates.bits
    capacity = sum(b.kb for b in arch.buffers if "v" in b.holds) * 1024 - qo_bytes
    per_survivor = d * bits / 8
    if mapping.kv_residency == "survivors":
        per_survivor *= 2  # its K and its V
    elif k_resident:
        capacity -= shape.k_len * d * bits / 8
    else:
        capacity -= 2 * mapping.formal.k * d * bits / 8
    return capacity, v_rate * min(shape.k_len, shape.window or shape.k_len) * per_survivor
