"""BS-OOE as a cost model: PE-lane utilisation of bit-serial key processing (PADE §III-C, §V-C).

Each query row of the 8 processed in parallel owns ``lanes_per_row`` (16) of the 128 PE lanes; its keys are
dealt to them round-robin. Processing one (key, plane) costs ``cycles`` on a lane (the GSAT adds at most 4
active elements per 8-element sub-group per cycle: with bidirectional sparsity a 64-element plane always
takes one cycle, without it a sub-group with more than 4 ones takes two); after each plane the lane must
wait ``latency`` cycles for the key's next plane to arrive from DRAM. A lane with a ``scoreboard`` of ``S``
entries keeps ``S`` keys in flight and works on whichever has its plane:

    lane time = max(work, (work + planes * latency) / S)

(the throughput bound and the latency-chain bound of a closed system with ``S`` jobs); in-order issue is
``S = 1``. A row finishes when its slowest lane does; utilisation = work / (lanes x row time), summed over
rows. Defaults: 16 lanes per row, 32 scoreboard entries (§V-C), a plane latency of 24 cycles (the paper says
"tens of cycles"; a parameter).
"""

from __future__ import annotations

import torch


def lane_utilisation(
    work: torch.Tensor,
    planes: torch.Tensor,
    latency: float,
    scoreboard: int,
    lanes_per_row: int = 16,
) -> float:
    """Utilisation for per-(row, key) ``work`` cycles and ``planes`` fetched ``[..., rows, keys]`` (0 for keys a
    row does not process)."""
    keys = work.shape[-1]
    pad = (-keys) % lanes_per_row
    w = torch.nn.functional.pad(work.to(torch.float64), (0, pad)).unflatten(-1, (-1, lanes_per_row)).sum(dim=-2)
    p = torch.nn.functional.pad(planes.to(torch.float64), (0, pad)).unflatten(-1, (-1, lanes_per_row)).sum(dim=-2)
    lane_time = torch.maximum(w, (w + p * latency) / scoreboard)
    row_time = lane_time.amax(dim=-1)
    total = float(row_time.sum()) * lanes_per_row
    return float(w.sum()) / total if total else 1.0
