"""Traces for method-parameter trials, computed from cached Q/K/V instead of by rerunning the model per trial.

When a space varies (or fixes) method parameters, each trial needs the trace the method produces with them. The
study captures the bundled model's post-RoPE Q/K/V once (the eval harness's ``capture_qkv``: the same layers and
text window as the bundled hardware traces unless the space's ``accuracy`` block says otherwise) and stores them
(``<cache>/dse/qkv-<digest>.pt``, keyed by the content of the text and model too); a trial runs the method on
them (``sparseattn.attention`` per captured layer, summed, as ``scripts/make_traces.py`` does) and caches the
trace by its parameters (``<cache>/dse/traces/<digest>.json``), so a point seen before costs nothing.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from ..core.errors import SparseAttnError
from ..core.files import write_atomic
from ..core.trace_file import FORMAT_VERSION
from ..core.workload import Workload
from ..methods.entry import attention
from .accuracy import cache_root, driver_model, input_digests, param_key
from .space import AccuracySpec

TRACE_LAYERS = (2, 7, 12, 17, 22, 27)  # the bundled traces' layers (sparseattn.eval.hwtraces.LAYERS)


def capture_layers(accuracy: AccuracySpec) -> list[int]:
    return list(accuracy.layers) if accuracy.layers else list(TRACE_LAYERS)


def _digest(obj: Any) -> str:
    return hashlib.sha256(param_key(obj).encode()).hexdigest()[:16]


def qkv_path(accuracy: AccuracySpec) -> Path:
    head = {"model": accuracy.model, "text": accuracy.text, "n_tokens": accuracy.n_tokens,
            "layers": capture_layers(accuracy), **input_digests(accuracy)}
    return cache_root(accuracy) / f"qkv-{_digest(head)}.pt"


def ensure_qkv(accuracy: AccuracySpec) -> Path:
    """Capture and store the Q/K/V (once; later calls find the file)."""
    path = qkv_path(accuracy)
    if path.exists():
        return path
    from ..eval import capture_qkv

    captured = capture_qkv(driver_model(accuracy.model), accuracy.text, accuracy.n_tokens, capture_layers(accuracy))
    data = {layer: {"q": c.q, "k": c.k, "v": c.v, "scale": c.scale, "window": c.window}
            for layer, c in captured.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    import io

    buf = io.BytesIO()
    torch.save(data, buf)
    write_atomic(path, buf.getvalue())
    return path


@lru_cache(maxsize=4)
def _load_qkv(path: Path, mtime_ns: int) -> dict[int, dict[str, Any]]:
    return torch.load(path, weights_only=True)


def load_qkv(accuracy: AccuracySpec) -> dict[int, dict[str, Any]]:
    path = qkv_path(accuracy)
    if not path.exists():
        raise SparseAttnError(f"captured Q/K/V {path} are missing; the study captures them before it starts")
    return _load_qkv(path, path.stat().st_mtime_ns)


def method_trace(accuracy: AccuracySpec, method: str, params: dict[str, Any], causal: bool) -> Workload:
    """The trace of ``method`` with ``params`` on the cached Q/K/V (from the trace cache when computed before)."""
    key = {"qkv": qkv_path(accuracy).name, "method": method, "params": params, "causal": causal,
           "trace_format": FORMAT_VERSION}  # a trace of another format is re-computed, not refused
    path = cache_root(accuracy) / "traces" / f"{_digest(key)}.json"
    if path.exists():
        return Workload.load(path)
    captured = load_qkv(accuracy)
    state: dict = {"num_layers": max(captured) + 1}
    traces = [attention(c["q"], c["k"], c["v"], method, causal=causal, scale=c["scale"],
                        window=c["window"] if causal else None, layer=layer, state=state, **params).trace
              for layer, c in sorted(captured.items())]
    trace = sum(traces)
    trace.meta.update({"method": method, "params": params, "captured_on": f"{accuracy.model} layers "
                       f"{sorted(captured)}, {accuracy.text} first {accuracy.n_tokens} tokens (sparseattn dse)"})
    path.parent.mkdir(parents=True, exist_ok=True)
    trace.save(path)
    return trace
