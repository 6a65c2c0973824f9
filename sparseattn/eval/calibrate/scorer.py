"""What a calibration point costs in accuracy, measured once and cached by content.

A :class:`Scorer` holds one text window (decoder: one window of token ids, its loss the relative perplexity
increase over dense attention; encoder: a set of passages, its loss one minus the mean embedding cosine to dense)
and measures a method at a parameter setting there. Every measurement is a small JSON file named by the SHA-256 of
what determines it -- the model's name and size, the token ids themselves, the layers, the method and its
parameters -- written atomically, so a calibration interrupted at any point resumes with the points it had, and a
different text, model or setting never reads a stale entry.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from ...core.errors import SparseAttnError
from ...core.files import write_atomic
from ...models.loader import LoadedModel
from ..embedding import _embed_all
from ..perplexity import perplexity_of_ids

Kind = Literal["decoder", "encoder"]


def default_cache_dir() -> Path:
    """``$SPARSEATTN_CACHE/calibrate``, else ``~/.cache/sparseattn/calibrate``."""
    base = os.environ.get("SPARSEATTN_CACHE") or Path.home() / ".cache" / "sparseattn"
    return Path(base) / "calibrate"


@dataclass(frozen=True)
class Point:
    """One measured setting: ``loss`` is relative to dense attention on the same window (perplexity increase for a
    decoder, 1 - cosine for an encoder); ``metric`` the raw perplexity or cosine."""

    method: str
    params: dict[str, Any]
    loss: float
    density: float
    metric: float
    seconds: float
    layer_density: dict[int, float] = field(default_factory=dict)
    cached: bool = False

    def __post_init__(self) -> None:
        for name in ("loss", "density", "metric", "seconds"):
            if not math.isfinite(getattr(self, name)):
                raise SparseAttnError(f"{self.method} {self.params}: {name} is {getattr(self, name)}, not finite")
        if not 0.0 <= self.density <= 1.0:
            raise SparseAttnError(f"{self.method} {self.params}: density {self.density} outside [0, 1]")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _ids_digest(items: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for ids in items:
        h.update(ids.to(torch.int64).cpu().numpy().tobytes())
        h.update(b"|")
    return h.hexdigest()


class Scorer(ABC):
    """Measures methods on one window of one model (module docstring); ``label`` names the text in results."""

    kind: Kind

    def __init__(self, lm: LoadedModel, items: list[torch.Tensor], label: str, layers: list[int] | None = None,
                 cache_dir: Path | None = None) -> None:
        if not items:
            raise SparseAttnError(f"{label}: no token windows to measure on")
        self.lm, self.items, self.label, self.layers = lm, items, label, layers
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.base = {"model": lm.name, "kind": self.kind, "ids": _ids_digest(items), "layers": layers,
                     "params_total": sum(p.numel() for p in lm.model.parameters())}
        self.dense_metric = self._measure("dense", {}).metric

    def _path(self, method: str, params: dict[str, Any]) -> Path:
        key = _digest({**self.base, "method": method, "params": params})
        return self.cache_dir / key[:2] / f"{key}.json"

    def _measure(self, method: str, params: dict[str, Any]) -> Point:
        path = self._path(method, params)
        if path.exists():
            try:
                d = json.loads(path.read_text())
                return Point(method, dict(params), d["loss"], d["density"], d["metric"], d["seconds"],
                             {int(k): v for k, v in d["layer_density"].items()}, cached=True)
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)  # a damaged entry is measured again
        start = time.perf_counter()
        metric, density, per_layer = self._run(method, params)
        loss = self._loss(metric) if method != "dense" else 0.0
        point = Point(method, dict(params), loss, density, metric, time.perf_counter() - start, per_layer)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"key": {**self.base, "method": method, "params": params}, "loss": point.loss,
                                       "density": point.density, "metric": point.metric, "seconds": point.seconds,
                                       "layer_density": {str(k): v for k, v in per_layer.items()}}))
        return point

    def measure(self, method: str, params: dict[str, Any]) -> Point:
        """``method`` at ``params`` on this window (from the cache when measured before)."""
        return self._measure(method, params)

    @abstractmethod
    def _run(self, method: str, params: dict[str, Any]) -> tuple[float, float, dict[int, float]]:
        """The method's (metric, density, per-layer density) on this window."""

    @abstractmethod
    def _loss(self, metric: float) -> float:
        """The loss of ``metric`` against the dense model's."""


class DecoderScorer(Scorer):
    """Perplexity of one window of token ids (``[1, N]``, BOS first); loss = ppl / dense ppl - 1."""

    kind: Kind = "decoder"

    def _run(self, method, params):
        r = perplexity_of_ids(self.lm, self.items[0], method, self.layers, text=self.label, **params)
        return r.ppl, r.density, dict(r.layer_density)

    def _loss(self, metric: float) -> float:
        return metric / self.dense_metric - 1.0


class EncoderScorer(Scorer):
    """Mean cosine of sparse to dense sentence embeddings over passages; loss = 1 - cosine."""

    kind: Kind = "encoder"

    def _run(self, method, params):
        from ...models.patch import patch

        if method == "dense":
            self._dense = _embed_all(self.lm, self.items)
            return 1.0, 1.0, {}
        with patch(self.lm, method, self.layers, **params) as p:
            sparse = _embed_all(self.lm, self.items)
            per_layer = {layer: s.density for layer, s in sorted(p.stats.items())}
        return float((self._dense_embeddings() * sparse).sum(dim=-1).mean()), p.density, per_layer

    def _dense_embeddings(self) -> torch.Tensor:
        if getattr(self, "_dense", None) is None:
            self._dense = _embed_all(self.lm, self.items)
        return self._dense

    def _loss(self, metric: float) -> float:
        return 1.0 - metric


def scorer_for(lm: LoadedModel, items: list[torch.Tensor], label: str, layers: list[int] | None = None,
               cache_dir: Path | None = None) -> Scorer:
    """The scorer of ``lm``'s kind."""
    cls = EncoderScorer if lm.kind == "encoder" else DecoderScorer
    return cls(lm, items, label, layers, cache_dir)
