"""Attention fidelity on real Q/K/V: how much of the exact attention a method keeps.

* ``recall`` -- kept softmax mass: for each query row, the sum of the exact (dense) attention
  probabilities of the kept pairs; averaged over rows (``recall_min`` is the worst row);
* ``output_rel_error`` -- ``||out - out_dense||_F / ||out_dense||_F`` over the whole output;
* ``density`` -- kept pairs / valid pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.attention import grouped_scores, masked_softmax_, valid_mask_4d
from ..core.result import SparseResult
from ..core.shape import ceil_count
from ..core.validation import validate_qkv
from ..methods.entry import attention
from ..models.loader import LoadedModel
from ..models.patch import CapturedQKV, patch
from .corpora import load_text


@dataclass
class Fidelity:
    recall: float
    recall_min: float
    output_rel_error: float
    density: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def fidelity_of(
    result: SparseResult, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale: float | None = None,
    window: int | None = None,
) -> Fidelity:
    """Fidelity of an existing result against exact attention on the same inputs."""
    dense = attention(q, k, v, "dense", causal=causal, scale=scale, window=window)
    shape = dense.trace.shape
    probs = masked_softmax_(
        grouped_scores(q, k, scale if scale is not None else shape.head_dim**-0.5),
        valid_mask_4d(shape, q.device),
    )
    mass = (probs * result.keep).sum(dim=-1)
    ref = dense.out.double()
    err = float(torch.linalg.vector_norm(result.out.double() - ref) / torch.linalg.vector_norm(ref).clamp_min(1e-300))
    return Fidelity(
        recall=float(mass.mean()), recall_min=float(mass.min()), output_rel_error=err, density=result.density
    )


def attention_fidelity(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    method: str,
    causal: bool = False,
    scale: float | None = None,
    window: int | None = None,
    **params: Any,
) -> Fidelity:
    """Run ``method`` on ``q, k, v`` and compare it with exact attention (``window``: a sliding window)."""
    result = attention(q, k, v, method, causal=causal, scale=scale, window=window, **params)
    return fidelity_of(result, q, k, v, causal, scale, window)


def capture_qkv(
    model: LoadedModel, text: str | Path = "moby-dick", n_tokens: int = 1024, layers: Iterable[int] | None = None
) -> dict[int, CapturedQKV]:
    """Post-RoPE Q, K, V of each chosen layer on a text window (a bundled name, a file or a string), from one
    dense forward pass of a decoder or an encoder."""
    ids = model.encode(load_text(text), n_tokens).to(model.device)
    with torch.no_grad(), patch(model, "dense", layers, capture_qkv=True) as p:
        model.model(input_ids=ids)
        return {layer: calls[0] for layer, calls in sorted(p.qkv.items())}


def topk_recall(
    q: torch.Tensor, k: torch.Tensor, keep: torch.Tensor, causal: bool, scale: float | None = None
) -> float:
    """How well a selection finds the exact top keys: per row, the fraction of the exact top-``|S|`` keys
    (``|S|`` = keys the selection kept in that row) it contains, averaged over rows."""
    from ..methods.common import keep_top_counts

    shape, scale = validate_qkv(q, k, k, causal, scale)
    scores = grouped_scores(q, k, scale)
    scores.masked_fill_(~valid_mask_4d(shape, q.device), float("-inf"))
    counts = keep.sum(dim=-1)  # [B, H, Nq]
    hits = torch.zeros_like(counts)
    for b in range(shape.batch):
        for h in range(shape.heads):
            exact = keep_top_counts(scores[b, h], counts[b, h].clamp(min=1))
            hits[b, h] = (exact & keep[b, h]).sum(dim=-1)
    return float((hits.double() / counts.clamp(min=1).double()).mean())


def recall_of_exact_topk(
    q: torch.Tensor,
    k: torch.Tensor,
    keep: torch.Tensor,
    causal: bool,
    scale: float | None = None,
    fraction: float = 0.1,
) -> float:
    """Fraction of each row's exact top-``ceil(fraction * valid keys)`` keys that a selection kept, averaged over
    rows (a predictor-quality measure independent of how many keys the method keeps)."""
    from ..methods.common import keep_top_counts

    shape, scale = validate_qkv(q, k, k, causal, scale)
    scores = grouped_scores(q, k, scale)
    scores.masked_fill_(~valid_mask_4d(shape, q.device), float("-inf"))
    nvalid = shape.valid_keys_per_row(q.device)
    counts = ceil_count(nvalid, fraction).clamp(min=1)
    exact = keep_top_counts(scores, counts)
    return float(((exact & keep).sum(dim=-1).double() / counts.double()).mean())
