"""RASS: reuse-aware schedule of K/V loads over a query tile (SOFA §IV-D, Fig. 15; after DOTA).

The SU-FA array holds the 128 query rows of a tile and consumes K/V vectors in *phases*: in each phase a
query row takes its next ``per_phase`` selected keys, and a K/V vector loaded in a phase is broadcast to
every row that consumes it in that phase. A vector needed by rows in different phases is loaded again.
Loads of a schedule = number of distinct (phase, key) pairs.

* naive ("vanilla DS"): every row consumes its selected keys in key-index order;
* RASS: every row consumes its keys in one shared order -- K/V tiles in order, and inside a tile the keys
  requested by the most rows first, ties by index -- so shared keys line up in the same phases and are
  loaded once; keys exclusive to one row come last. This is our vectorised reading of the paper's greedy
  rule ("first the Ks shared by the most queries, then those exclusively needed by still-unserved
  queries"); the paper gives no buffer or phase sizes, so ``per_phase`` (2: SOFA feeds "two rows of K
  vectors" per Q vector into SA-1) is a parameter.
"""

from __future__ import annotations

import torch


def phase_loads(requests: torch.Tensor, order: torch.Tensor, per_phase: int = 2) -> torch.Tensor:
    """Loads when rows consume their requested keys in the column order ``order``.

    ``requests`` is bool ``[..., rows, keys]``; ``order [..., keys]`` a permutation of the key axis per leading
    index. Returns the number of distinct (phase, key) pairs summed over the leading dims (int64).
    """
    req = requests.gather(-1, order.unsqueeze(-2).expand(requests.shape))
    count_dtype = torch.int16 if req.shape[-1] < 2**15 else torch.int32  # narrow cumsum is ~10x faster
    rank = torch.cumsum(req.view(torch.uint8), dim=-1, dtype=count_dtype) - 1
    phase = rank >> (per_phase.bit_length() - 1) if per_phase & (per_phase - 1) == 0 else rank // per_phase
    if not bool(req.any()):
        return torch.zeros((), dtype=torch.int64)
    nphase = int(phase.max()) + 1
    phase.masked_fill_(~req, nphase)  # unrequested entries land in a spill row that is not counted
    onehot = torch.zeros(*req.shape[:-2], nphase + 1, req.shape[-1], dtype=torch.bool, device=req.device)
    onehot.scatter_(-2, phase.to(torch.int64), True)
    return torch.count_nonzero(onehot[..., :nphase, :])


def rass_loads(requests: torch.Tensor, per_phase: int = 2, seg_len: int | None = None) -> tuple[int, int, int]:
    """``(naive, rass, unique)`` K/V vector loads for tiles of requests ``[..., rows, keys]``.

    With ``seg_len`` the keys form K/V tiles of that many keys that the formal stage visits in order, and
    RASS reorders only within a tile (most shared first). ``unique`` (keys requested at least once) is the
    lower bound of any schedule.
    """
    keys = requests.shape[-1]
    natural = torch.arange(keys, device=requests.device).expand(*requests.shape[:-2], keys)
    shared = requests.sum(dim=-2)  # rows requesting each key
    rows = requests.shape[-2]
    tile = natural // (seg_len or keys)
    # tile first, then most-shared, ties by index (a stable sort on one integer key)
    rass_order = torch.sort(tile * (rows + 1) + (rows - shared), dim=-1, stable=True).indices
    naive = int(phase_loads(requests, natural, per_phase))
    rass = int(phase_loads(requests, rass_order, per_phase))
    unique = int(requests.any(dim=-2).sum())
    return naive, rass, unique
