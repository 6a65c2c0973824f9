"""The cached accuracy table behind accuracy-aware objectives: the eval harness's cross-entropy of the bundled
model per method-parameter point, computed once before a study, stored on disk and keyed by the parameters, so
a trial only looks values up and never runs a model.

Two modes (``accuracy.mode`` of the space):

* ``joint`` -- one entry per method point, the method in all the chosen layers at once (exact; the space's
  method parameters must be finite, at most ``max_points`` points);
* ``per_layer`` -- one entry per (layer, that layer's parameters) with only that layer sparse, and
  ``L(R) = L_dense + sum_i (L_i(R_i) - L_dense)``: a first-order, layer-separable estimate that makes per-layer
  searches (SOFA's per-layer ``Tc_i``) tabulable with ``layers x values`` model runs instead of ``values^layers``.

The file (``<cache>/dse/accuracy-<digest>.json``) records the model, text, window, method, mode and layers it
was made for, and the content hashes of the text and the model (the digest is of those: an overwritten text
file keys a new table), and is rewritten atomically after every entry, so an interrupted fill
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.errors import SparseAttnError
from ..core.files import write_atomic
from .space import AccuracySpec

DENSE_KEY = "dense"


def cache_root(accuracy: AccuracySpec) -> Path:
    """``accuracy.cache_dir``, else ``$SPARSEATTN_CACHE/dse``, else ``~/.cache/sparseattn/dse``."""
    if accuracy.cache_dir:
        return Path(accuracy.cache_dir)
    base = os.environ.get("SPARSEATTN_CACHE") or Path.home() / ".cache" / "sparseattn"
    return Path(base) / "dse"


@lru_cache(maxsize=1)
def driver_model(name: str) -> Any:
    """The bundled model, loaded once per driver process (the accuracy table and the Q/K/V capture share it)."""
    from ..models import load_model

    return load_model(name)


def _canon(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.10g}") if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {k: _canon(value[k]) for k in sorted(value)}
    return value


def param_key(params: dict[str, Any]) -> str:
    """The canonical key of a parameter dict (sorted keys, floats to 10 significant digits)."""
    return json.dumps(_canon(params), sort_keys=True, separators=(",", ":"))


def input_digests(accuracy: AccuracySpec) -> dict[str, str]:
    """Content hashes of what a cached entry was computed from: the text (its characters, wherever they came
    from) and the model (its files, or its bundled name), so a text file overwritten since, or a model directory
    changed, keys a new cache instead of reusing the old one's values."""
    import hashlib

    from ..core.files import content_sha256
    from ..eval.corpora import load_text

    text = hashlib.sha256(load_text(accuracy.text).encode("utf-8")).hexdigest()
    return {"text_sha256": text[:16], "model_sha256": content_sha256(accuracy.model)[:16]}


def layer_params(params: dict[str, Any], layer: int) -> dict[str, Any]:
    """``params`` with every per-layer list reduced to its entry for ``layer``."""
    return {k: (v[layer] if isinstance(v, list) else v) for k, v in params.items()}


class AccuracyTable:
    """Cross-entropy by method point for one model, text window, method, mode and layer set (module docstring)."""

    def __init__(self, accuracy: AccuracySpec, method: str, layers: list[int] | None):
        self.spec, self.method, self.layers = accuracy, method, layers
        self.header = {"model": accuracy.model, "text": accuracy.text, "n_tokens": accuracy.n_tokens,
                       "method": method, "mode": accuracy.mode, "layers": layers, **input_digests(accuracy)}
        digest = hashlib.sha256(param_key(self.header).encode()).hexdigest()[:16]
        self.path = cache_root(accuracy) / f"accuracy-{digest}.json"
        self.entries: dict[str, dict[str, float]] = self._read()

    def _read(self) -> dict[str, dict[str, float]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SparseAttnError(f"accuracy table {self.path} is unreadable ({err}); delete it to recompute") from None
        if data.get("header") != _canon(self.header):
            raise SparseAttnError(f"accuracy table {self.path} was made for {data.get('header')}, not {self.header}")
        return dict(data.get("entries", {}))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"header": _canon(self.header), "entries": self.entries}, indent=1))

    # ------------------------------------------------------------------ keys
    def keys_for(self, params: dict[str, Any]) -> list[tuple[str, int | None, dict[str, Any]]]:
        """The entries a point needs: ``(key, layer or None, parameters to run)``."""
        if self.spec.mode == "joint":
            return [(param_key(params), None, params)]
        out: list[tuple[str, int | None, dict[str, Any]]] = [(DENSE_KEY, None, {})]
        for layer in self.layers or []:
            p = layer_params(params, layer)
            out.append((param_key({"layer": layer, "params": p}), layer, p))
        return out

    def missing(self, points: Iterable[dict[str, Any]]) -> list[tuple[str, int | None, dict[str, Any]]]:
        """Entries the ``points`` need that the table lacks (each once)."""
        todo: dict[str, tuple[str, int | None, dict[str, Any]]] = {}
        for params in points:
            for key, layer, p in self.keys_for(params):
                if key not in self.entries:
                    todo.setdefault(key, (key, layer, p))
        return list(todo.values())

    # ------------------------------------------------------------------ lookups
    def nll(self, params: dict[str, Any]) -> float:
        """The cross-entropy (nats per token) of a point; a point the table lacks is an error (fill it first)."""
        keys = self.keys_for(params)
        lacking = [k for k, _, _ in keys if k not in self.entries]
        if lacking:
            raise SparseAttnError(f"accuracy table {self.path} has no entry for {lacking[0]}; the study fills the "
                                  "table before it starts (`sparseattn dse accuracy SPACE` fills it alone)")
        if self.spec.mode == "joint":
            return self.entries[keys[0][0]]["nll"]
        dense = self.entries[DENSE_KEY]["nll"]
        return dense + sum(self.entries[k]["nll"] - dense for k, _, _ in keys[1:])

    # ------------------------------------------------------------------ filling
    def fill(self, points: Iterable[dict[str, Any]], report: Callable[[str], None] | None = None) -> int:
        """Run the model for every missing entry of ``points`` (loading it once); returns the entries computed."""
        todo = self.missing(points)
        if not todo:
            return 0
        if len(todo) > self.spec.max_points:
            raise SparseAttnError(f"the accuracy table needs {len(todo)} model runs, more than accuracy.max_points "
                                  f"({self.spec.max_points}); narrow the method parameters or raise max_points")
        from ..eval import perplexity

        lm = driver_model(self.spec.model)
        for i, (key, layer, p) in enumerate(todo):
            start = time.perf_counter()
            if key == DENSE_KEY:
                r = perplexity(lm, self.spec.text, self.spec.n_tokens, "dense", layers=self.layers)
            else:
                layers = [layer] if layer is not None else self.layers
                r = perplexity(lm, self.spec.text, self.spec.n_tokens, self.method, layers=layers, **p)
            self.entries[key] = {"nll": r.nll, "ppl": r.ppl, "density": r.density,
                                 "seconds": time.perf_counter() - start}
            self.save()
            if report:
                report(f"accuracy {i + 1}/{len(todo)}: {key} nll {r.nll:.4f} ({time.perf_counter() - start:.1f} s)")
        return len(todo)
