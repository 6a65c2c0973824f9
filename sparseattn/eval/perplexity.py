"""Perplexity of a decoder on a text (bundled, a file or a string), with any method patched into its layers."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InvalidParameterError
from ..core.workload import Workload
from ..models.loader import LoadedModel
from ..models.patch import patch
from .corpora import load_text, text_label


@dataclass
class PerplexityResult:
    """One perplexity measurement. ``density`` is kept / valid (query, key) pairs over the patched layers."""

    model: str
    text: str
    n_tokens: int
    method: str  # "builtin" when the model's own attention ran
    params: dict[str, Any]
    nll: float  # mean negative log-likelihood per predicted token (nats)
    ppl: float
    density: float
    kept_pairs: int
    valid_pairs: int
    seconds: float
    layers: list[int] | None = field(default=None)
    layer_density: dict[int, float] = field(default_factory=dict)  # kept / valid pairs of each patched layer
    traces: list[Workload] | None = field(default=None, repr=False)  # per layer, with capture_traces=True

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "traces"}


def perplexity_of_ids(
    model: LoadedModel,
    input_ids: torch.Tensor,
    method: str | None = "dense",
    layers: Iterable[int] | None = None,
    text: str = "",
    capture_traces: bool = False,
    **params: Any,
) -> PerplexityResult:
    """Perplexity of ``input_ids`` (``[1, N]``, first token BOS) with ``method`` in the chosen layers.

    ``method=None`` runs the model's built-in attention (PyTorch SDPA) unpatched. With ``capture_traces``
    the result carries each patched layer's :class:`~sparseattn.core.workload.Workload` in layer order.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] < 2:
        raise ValueError(f"input_ids must be a [batch, N >= 2] tensor, got {getattr(input_ids, 'shape', input_ids)}")
    layer_list = None if layers is None else sorted(int(i) for i in layers)
    input_ids = input_ids.to(model.device)
    start = time.perf_counter()
    with torch.no_grad():
        if method is None:
            loss = model.model(input_ids, labels=input_ids).loss
            kept = valid = 0
            traces, per_layer = None, {}
        else:
            with patch(model, method, layer_list, capture_traces=capture_traces, **params) as p:
                loss = model.model(input_ids, labels=input_ids).loss
                kept, valid = p.kept_pairs, p.valid_pairs
                per_layer = {layer: s.density for layer, s in sorted(p.stats.items())}
                traces = [w for i in sorted(p.traces) for w in p.traces[i]] if capture_traces else None
    nll = float(loss)
    return PerplexityResult(
        model=model.name,
        text=text,
        n_tokens=int(input_ids.shape[1]),
        method=method or "builtin",
        params=dict(params),
        nll=nll,
        ppl=math.exp(nll),
        density=kept / valid if valid else 1.0,
        kept_pairs=kept,
        valid_pairs=valid,
        seconds=time.perf_counter() - start,
        layers=layer_list,
        layer_density=per_layer,
        traces=traces,
    )


def perplexity(
    model: LoadedModel,
    text: str | Path = "moby-dick",
    n_tokens: int = 1024,
    method: str | None = "dense",
    layers: Iterable[int] | None = None,
    capture_traces: bool = False,
    **params: Any,
) -> PerplexityResult:
    """Perplexity over the window BOS + the first ``n_tokens - 1`` tokens of ``text`` (a bundled name, a path to a
    UTF-8 file or a string of text; :func:`~sparseattn.eval.corpora.load_text`)."""
    if model.kind != "decoder":
        raise InvalidParameterError(f"{model.name} is an encoder: perplexity needs a causal LM; use "
                                    "sparseattn.eval.embedding_fidelity for encoders")
    ids = model.encode(load_text(text), n_tokens)
    return perplexity_of_ids(model, ids, method, layers, text=text_label(text), capture_traces=capture_traces,
                             **params)
