"""BSF + BUI: bit-serial partial scores and their bit-wise uncertainty intervals (PADE §III-A/B, Eq. 3).

Keys are INT-p two's-complement numbers processed one bit plane per round, MSB (the sign, weight
``-2^(p-1)``) first. After round ``r`` the planes ``p-1 .. p-r`` are known and the partial score is exactly
``S^r = q . k^(r)`` where ``k^(r)`` keeps the top ``r`` bits of each key element (an arithmetic shift:
``floor(k / 2^(p-r)) * 2^(p-r)``). The unknown remainder of each element lies in ``[0, 2^(p-r) - 1]``
(only non-negative weights are left), so with ``P = sum max(q, 0)`` and ``N = sum min(q, 0)``:

    S^r + (2^(p-r) - 1) N  <=  q . k  <=  S^r + (2^(p-r) - 1) P

``I^{r,min} = (2^(p-r) - 1) N`` and ``I^{r,max} = (2^(p-r) - 1) P`` depend on the query and the round only:
the 8-entry per-query LUT of PADE's BUI generator. The intervals are nested and collapse to the exact score
at ``r = p`` (our derivation from PADE's Eq. 3; ``tests/methods/test_pade.py`` checks the bounds).
"""

from __future__ import annotations

import torch

from ...core.bits import bit_planes, truncated_keys

__all__ = ["active_elements", "bui_offsets", "truncated_keys"]


def bui_offsets(q_int: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-query LUT ``(I_min, I_max)``, each ``[..., rows, bits]`` (column ``r-1`` for round ``r``), float64."""
    q = q_int.to(torch.float64)
    pos = q.clamp(min=0).sum(dim=-1, keepdim=True)
    neg = q.clamp(max=0).sum(dim=-1, keepdim=True)
    span = 2.0 ** (bits - torch.arange(1, bits + 1, dtype=torch.float64, device=q.device)) - 1
    return neg * span, pos * span


def active_elements(k_int: torch.Tensor, bits: int, group: int = 8, bidirectional: bool = True) -> torch.Tensor:
    """Elements a bit-serial AND tree adds per (key, plane), MSB first: ``[..., keys, bits]`` int64.

    With bidirectional sparsity each ``group``-element sub-group of a plane is processed through whichever of
    its 1s or 0s is rarer (``q . b = sum q - q . (1 - b)``), so at most ``group / 2`` elements per sub-group are
    active; without it, the 1s are.
    """
    d = k_int.shape[-1]
    if d % group:
        raise ValueError(f"head_dim {d} is not a multiple of the sub-group size {group}")
    planes = bit_planes(k_int.to(torch.int32), bits)  # [bits, ..., keys, d]
    ones = planes.view(*planes.shape[:-1], d // group, group).sum(dim=-1, dtype=torch.int64)  # [bits, ..., keys, G]
    act = torch.minimum(ones, group - ones) if bidirectional else ones
    return act.movedim(0, -1)  # [..., keys, G, bits]
