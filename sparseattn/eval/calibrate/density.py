"""Choosing a method's knob for a target density on captured Q/K/V.

The ``threshold`` oracle's density is a step function of ``delta``: a valid pair is kept when its *gap*
(row max minus its scaled logit) is at most ``delta``. One pass over the captured layers builds the
histogram of gaps; the delta for any target density is read off its cumulative sum, to within one bin
(``max_gap / bins``, 4e-4 by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ...core.attention import grouped_scores, valid_mask_4d
from ...core.errors import InvalidParameterError
from ...core.validation import validate_qkv
from ...models.patch import CapturedQKV


def gap_histogram(captured: Iterable[CapturedQKV], bins: int = 100_000, max_gap: float = 40.0) -> torch.Tensor:
    """Counts of valid pairs per gap bin over all captured calls (gaps above ``max_gap`` in the last bin)."""
    hist = torch.zeros(bins, dtype=torch.float64)
    for c in captured:
        shape, scale = validate_qkv(c.q, c.k, c.v, c.causal, c.scale, c.window)
        valid = valid_mask_4d(shape, c.q.device)
        s = grouped_scores(c.q, c.k, scale)
        rowmax = s.masked_fill(~valid, float("-inf")).amax(dim=-1, keepdim=True)
        gaps = (rowmax - s).masked_select(valid.expand_as(s)).clamp_(max=max_gap)
        hist += torch.histc(gaps.double(), bins=bins, min=0.0, max=max_gap)
    return hist


def threshold_delta_for_density(
    captured: Iterable[CapturedQKV], targets: Sequence[float], bins: int = 100_000, max_gap: float = 40.0
) -> dict[float, float]:
    """For each target density in (0, 1], the smallest bin edge ``delta`` whose density reaches the target."""
    for t in targets:
        if not 0 < t <= 1:
            raise InvalidParameterError(f"target densities must lie in (0, 1], got {t}")
    hist = gap_histogram(captured, bins, max_gap)
    total = float(hist.sum())
    if total == 0:
        raise InvalidParameterError("no captured layers to calibrate on")
    cumulative = torch.cumsum(hist, 0) / total
    width = max_gap / bins
    out = {}
    for t in targets:
        idx = int(torch.searchsorted(cumulative, torch.tensor([t - 1e-12], dtype=torch.float64))[0])
        out[t] = min(idx + 1, bins) * width
    return out
