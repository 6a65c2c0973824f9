"""An encoder's task metric: how much sparse attention changes its sentence embeddings, and their use.

The papers' BERT (and ViT) results are on bidirectional encoders. With the bundled all-MiniLM-L6-v2 (a BERT
sentence encoder) the metric is measured on :func:`passages` -- consecutive windows of ``n_tokens`` tokens from
the bundled texts (or any texts given) -- embedded densely and with a method in every layer:

* ``cosine`` -- cosine between each passage's dense and sparse embedding (mean, and the worst passage);
* ``retrieval_agreement`` -- for each passage, its nearest other passage (cosine) among the set: the fraction
  whose nearest neighbour is unchanged under sparse attention (embeddings used for retrieval keep their answers).

Passages are embedded one at a time (no padding: padded batches are refused by the patch).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InvalidParameterError
from ..models.loader import LoadedModel
from ..models.patch import patch
from .corpora import load_text, text_names

DEFAULT_PASSAGES = 24  # per text


@dataclass
class EmbeddingResult:
    """One method's effect on an encoder's embeddings over a passage set."""

    model: str
    method: str
    params: dict[str, Any]
    n_passages: int
    n_tokens: int
    cosine: float  # mean cosine(dense, sparse) over passages
    cosine_min: float
    retrieval_agreement: float  # nearest other passage unchanged
    density: float  # kept / valid pairs over every layer and passage
    seconds: float
    traces: list | None = field(default=None, repr=False)  # per layer and passage, with capture_traces=True

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "traces"}


def passages(model: LoadedModel, n_tokens: int = 256, per_text: int = DEFAULT_PASSAGES,
             texts: Sequence[str | Path] | None = None) -> list[torch.Tensor]:
    """``per_text`` consecutive, non-overlapping windows of ``n_tokens`` token ids (special tokens included) from
    each text (default: every bundled text), as ``[1, n_tokens]`` tensors."""
    head, tail = model._special_tokens()
    body = n_tokens - len(head) - len(tail)
    if body < 1:
        raise InvalidParameterError(f"n_tokens={n_tokens} leaves no room for text besides the special tokens")
    out = []
    for text in texts or text_names():
        ids = model.tokenizer(load_text(text), add_special_tokens=False, verbose=False).input_ids
        if len(ids) < body * per_text:
            raise InvalidParameterError(f"text {text!r} has {len(ids)} tokens: too few for {per_text} passages "
                                        f"of {n_tokens} tokens")
        out += [torch.tensor([[*head, *ids[i * body:(i + 1) * body], *tail]]) for i in range(per_text)]
    return out


def _embed_all(model: LoadedModel, items: Iterable[torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model.embed(ids) for ids in items])


def nearest_other(emb: torch.Tensor) -> torch.Tensor:
    """Index of each row's most similar other row (cosine of normalised embeddings)."""
    sim = emb @ emb.T
    sim.fill_diagonal_(-math.inf)
    return sim.argmax(dim=-1)


def embedding_fidelity(model: LoadedModel, method: str, n_tokens: int = 256, layers: Iterable[int] | None = None,
                       per_text: int = DEFAULT_PASSAGES, texts: Sequence[str | Path] | None = None,
                       dense: torch.Tensor | None = None, capture_traces: bool = False,
                       **params: Any) -> EmbeddingResult:
    """Cosine to the dense embeddings and retrieval agreement of ``method`` on the passage set (``dense``: the
    dense embeddings when already computed; ``capture_traces``: keep every layer's trace of every passage)."""
    if model.kind != "encoder":
        raise InvalidParameterError(f"{model.name} is a decoder; embedding fidelity needs an encoder (perplexity "
                                    "is a decoder's metric)")
    items = passages(model, n_tokens, per_text, texts)
    start = time.perf_counter()
    reference = dense if dense is not None else _embed_all(model, items)
    with patch(model, method, layers, capture_traces=capture_traces, **params) as p:
        sparse = _embed_all(model, items)
        traces = [w for layer in sorted(p.traces) for w in p.traces[layer]] if capture_traces else None
    cos = (reference * sparse).sum(dim=-1)
    agree = (nearest_other(reference) == nearest_other(sparse)).double().mean()
    return EmbeddingResult(
        model=model.name, method=method, params=dict(params), n_passages=len(items), n_tokens=n_tokens,
        cosine=float(cos.mean()), cosine_min=float(cos.min()), retrieval_agreement=float(agree),
        density=p.density, seconds=time.perf_counter() - start, traces=traces,
    )
