"""BS-OOE as a timing model: PE-lane utilisation of PADE's bit-serial key processing (PADE sections III-C, V-C).

Methods count work; hardware turns it into cycles. A PADE trace carries, for a sample of query rows,

* ``samples["bitserial_planes"]`` -- ``[rows, keys]`` planes each sampled row fetched for each key (0: the row did
  not process the key), and
* ``samples["bitserial_work_nobs"]`` -- ``[rows, keys]`` lane cycles of that (row, key) *without* bidirectional
  sparsity (a GSAT sub-group with more than 4 active elements takes two passes).

With bidirectional sparsity a 64-element slice of a plane always takes one cycle, so the work of a (row, key) is
``planes x ceil(head_dim / 64)`` cycles. Each query row of those processed in parallel owns ``lanes_per_row`` (16)
of the lanes; its keys are dealt to them round-robin. After each plane a lane waits ``plane_latency`` (24) cycles
for the key's next plane to arrive from DRAM; a lane with a scoreboard of ``S`` (32) entries keeps ``S`` keys in
flight and works on whichever has its plane:

    lane time = max(work, (work + planes x plane_latency) / S)

(the throughput bound and the latency-chain bound of a closed system with ``S`` jobs); in-order issue is ``S = 1``.
A row finishes when its slowest lane does; utilisation = work / (lanes x row time), summed over the rows. The
parameters are the lanes unit's ``lanes`` block in ``configs/pade.yaml`` (16 lanes per row and 32 scoreboard
entries from section V-C; the 24-cycle plane latency is our assumption: the paper says "tens of cycles").

Samples are taken on the trace's own shape; for another head dim the work per plane scales with the number of
64-element slices (and the work without bidirectional sparsity by the same ratio).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.workload import Workload
from .schema import BitSerialLanes

PLANES = "bitserial_planes"
WORK_NOBS = "bitserial_work_nobs"
SLICE = 64  # elements of a plane one lane processes per cycle


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


def lane_utilisations(planes: np.ndarray, work_nobs: np.ndarray, lanes: BitSerialLanes, head_dim: int,
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
    """:func:`lane_utilisations` of the samples ``trace`` carries, or ``None`` when it carries none."""
    if PLANES not in trace.samples or WORK_NOBS not in trace.samples:
        return None
    return lane_utilisations(trace.samples[PLANES], trace.samples[WORK_NOBS], lanes, head_dim,
                             trace.shape.head_dim)
