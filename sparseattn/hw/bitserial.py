"""BS-OOE as a timing model: PE-lane utilisation of PADE's bit-serial key processing (PADE sections III-C, V-C).

Methods count work; hardware turns it into cycles. A PADE trace carries, for a sample of query rows,

* ``samples["bitserial_planes"]`` -- ``[rows, keys]`` planes each sampled row fetched for each key (0: the row did
  not process the key), and
* ``samples["bitserial_busiest_nobs"]`` -- ``[rows, keys x group]``: over the planes the row fetched for the key,
  how many 64-element slices had their busiest ``group``-element sub-group at ``m = 1 .. group`` active elements
  without bidirectional sparsity.

The GSAT AND tree (PADE section V-D) adds up to ``group / 2`` active elements of every sub-group of a slice per
pass: with bidirectional sparsity a sub-group never has more, so a slice always takes one cycle and the work of a
(row, key) is ``planes x ceil(head_dim / 64)`` cycles; without it a slice whose busiest sub-group has ``m`` active
elements takes ``ceil(m / (group / 2))`` passes (:func:`work_without_bs`). Each query row of those processed in
parallel owns ``lanes_per_row`` of the lanes; its keys are dealt to them round-robin. After each plane a lane waits
``plane_latency`` cycles for the key's next plane to arrive from DRAM; a lane with a scoreboard of ``S`` entries
keeps ``S`` keys in flight and works on whichever has its plane:

    lane time = max(work, (work + planes x plane_latency) / S)

(the throughput bound and the latency-chain bound of a closed system with ``S`` jobs); in-order issue is ``S = 1``.
A row finishes when its slowest lane does; utilisation = work / (lanes x row time), summed over the rows. The
parameters are the lanes unit's ``lanes`` block in ``configs/pade.yaml`` (lanes per row and scoreboard entries from
PADE section V-C; the plane latency is our assumption, the paper says "tens of cycles"; the values and their
sources are in that file).

Samples are taken on the trace's own shape; for another head dim the work per plane scales with the number of
64-element slices (and the work without bidirectional sparsity by the same ratio). Traces written before the
method counted busiest sub-groups carry ``samples["bitserial_work_nobs"]`` instead: the cycles without
bidirectional sparsity already computed by the same rule, read as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.bits import PLANE_SLICE
from ..core.workload import Workload
from .schema import BitSerialLanes

PLANES = "bitserial_planes"
BUSIEST_NOBS = "bitserial_busiest_nobs"
LEGACY_WORK_NOBS = "bitserial_work_nobs"  # older traces: lane cycles without bidirectional sparsity
SLICE = PLANE_SLICE  # elements of a plane one lane processes per cycle


@dataclass(frozen=True)
class LaneUtilisation:
    """Modelled lane utilisation over the sampled rows: out-of-order (the design), in-order (scoreboard of 1), and
    out-of-order without bidirectional sparsity."""

    out_of_order: float
    in_order: float
    out_of_order_without_bs: float
    rows: int  # sampled rows that processed at least one key


def _per_lane(x: np.ndarray, lanes: int) -> np.ndarray:
    """``[rows, keys]`` summed per lane when keys are dealt round-robin to ``lanes`` lanes: ``[rows, lanes]``."""
    pad = (-x.shape[-1]) % lanes
    if pad:
        x = np.pad(x, ((0, 0), (0, pad)))
    return x.reshape(x.shape[0], -1, lanes).sum(axis=1, dtype=np.float64)


def _utilisation(w: np.ndarray, p: np.ndarray, latency: float, scoreboard: int) -> float:
    """Utilisation from per-lane work ``w`` and planes ``p`` ``[rows, lanes]``."""
    lane_time = np.maximum(w, (w + p * latency) / scoreboard)
    total = float(lane_time.max(axis=-1).sum()) * w.shape[-1]
    return float(w.sum()) / total if total else 1.0


def lane_utilisation(work: np.ndarray, planes: np.ndarray, latency: float, scoreboard: int,
                     lanes_per_row: int = 16) -> float:
    """Utilisation for per-(row, key) ``work`` cycles and ``planes`` fetched, both ``[rows, keys]`` (see the
    module docstring); 1.0 when there is no work."""
    return _utilisation(_per_lane(work, lanes_per_row), _per_lane(planes, lanes_per_row), latency, scoreboard)


def slices(head_dim: int) -> int:
    """Cycles one plane of a key takes on a lane: one per 64-element slice."""
    return max(1, math.ceil(head_dim / SLICE))


def work_without_bs(busiest: np.ndarray, keys: int) -> np.ndarray:
    """Lane cycles per (row, key) without bidirectional sparsity, ``[rows, keys]`` float64, from the busiest
    sub-group counts ``[rows, keys x group]`` of a trace (see the module docstring): a slice whose busiest
    sub-group has ``m`` active elements takes ``ceil(m / (group / 2))`` GSAT passes of one cycle each."""
    if busiest.ndim != 2 or keys < 1 or busiest.shape[1] % keys:
        raise ValueError(f"busiest sub-group counts {busiest.shape} must be 2-D [rows, keys x group] for "
                         f"{keys} keys")
    group = busiest.shape[1] // keys
    passes = np.ceil(np.arange(1, group + 1) / max(1, group // 2))
    return busiest.reshape(busiest.shape[0], keys, group).astype(np.float64) @ passes


def sampled_lane_utilisation(planes: np.ndarray, work_nobs: np.ndarray, lanes: BitSerialLanes, head_dim: int,
                             sampled_head_dim: int | None = None) -> LaneUtilisation:
    """In-order, out-of-order and out-of-order-without-bidirectional-sparsity utilisation of the lanes for
    sampled ``planes`` and ``work_nobs`` ``[rows, keys]`` (taken at ``sampled_head_dim``, default ``head_dim``)
    when the keys have ``head_dim`` elements. Work is linear in planes, so per-lane sums are taken once."""
    if planes.shape != work_nobs.shape or planes.ndim != 2:
        raise ValueError(f"planes {planes.shape} and work_nobs {work_nobs.shape} must be equal 2-D [rows, keys]")
    p = _per_lane(planes, lanes.lanes_per_row)
    work = p * slices(head_dim)
    nobs = _per_lane(work_nobs, lanes.lanes_per_row) * (slices(head_dim) / slices(sampled_head_dim or head_dim))
    latency, board = lanes.plane_latency, lanes.scoreboard
    return LaneUtilisation(
        out_of_order=_utilisation(work, p, latency, board),
        in_order=_utilisation(work, p, latency, 1),
        out_of_order_without_bs=_utilisation(nobs, p, latency, board),
        rows=int(np.count_nonzero(p.any(axis=1))),
    )


def trace_lane_utilisation(trace: Workload, lanes: BitSerialLanes, head_dim: int) -> LaneUtilisation | None:
    """:func:`sampled_lane_utilisation` of the samples ``trace`` carries, or ``None`` when it carries none."""
    planes = trace.samples.get(PLANES)
    if planes is None:
        return None
    if BUSIEST_NOBS in trace.samples:
        work_nobs = work_without_bs(trace.samples[BUSIEST_NOBS], planes.shape[1])
    elif LEGACY_WORK_NOBS in trace.samples:
        work_nobs = trace.samples[LEGACY_WORK_NOBS]
    else:
        return None
    return sampled_lane_utilisation(planes, work_nobs, lanes, head_dim, trace.shape.head_dim)
