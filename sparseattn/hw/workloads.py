"""Workloads: the papers' models as shape files, and the traces that give them their sparsity.

A model shape (``workloads/<name>.yaml``) carries layers, heads, KV heads, head dim, whether attention is causal,
and the sequence lengths the papers evaluate it at. Architectures and workloads are separate files, as in
Timeloop's spec: any trace runs on any architecture.

Sparsity comes from **traces captured on SmolLM2-135M** (``traces/<method>.json``, written by
:func:`sparseattn.eval.hwtraces.capture_hw_traces`) and carried to the target model by
:meth:`~sparseattn.core.workload.Workload.scaled_to`'s rules: operation counts by their scaling basis, the
sparsity pattern by normalised position (same density assumed). Where a paper states the density it ran at
instead, :func:`with_density` rescales the kept-pair work to it and says so in ``meta``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..core.shape import Shape
from ..core.workload import Per, SparsityProfile, Workload, tile_valid_counts
from .schema import ConfigError, find_file, read_yaml, validated

WORKLOAD_DIR = Path(__file__).parent / "workloads"
TRACE_DIR = Path(__file__).parent / "traces"
KEPT_STAGES = ("qk", "softmax", "pv")  # work on kept pairs


class ModelShape(BaseModel):
    """The attention shape of one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    source: str = ""
    layers: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    causal: bool
    seq_lens: list[int] = Field(min_length=1)

    def shape(self, seq: int, batch: int = 1) -> Shape:
        """The prefill shape of all layers at ``seq`` tokens."""
        if not isinstance(seq, int) or seq < 1:
            raise ConfigError(f"seq must be a positive int, got {seq!r}")
        return Shape(
            batch=batch, heads=self.heads, kv_heads=self.kv_heads, q_len=seq, k_len=seq,
            head_dim=self.head_dim, causal=self.causal, layers=self.layers,
        )


def workload_names() -> list[str]:
    return sorted(p.stem for p in WORKLOAD_DIR.glob("*.yaml"))


@lru_cache(maxsize=64)
def load_model_shape(name_or_path: str) -> ModelShape:
    """A bundled model shape by name (``"llama2-7b"``) or a YAML file by path."""
    path = find_file(name_or_path, WORKLOAD_DIR, ".yaml", "workload", workload_names())
    return validated(ModelShape, read_yaml(path), str(path))


def trace_names() -> list[str]:
    return sorted(p.stem for p in TRACE_DIR.glob("*.json"))


@lru_cache(maxsize=64)
def _trace_json(path: str) -> dict:
    return json.loads(Path(path).read_text())


def load_trace(name_or_path: str | Path) -> Workload:
    """A bundled SmolLM2 trace by method name (``"pade"``) or a saved :class:`Workload` JSON by path.

    Each call returns a new :class:`Workload` (the parsed file is cached), so callers may modify it.
    """
    path = find_file(name_or_path, TRACE_DIR, ".json", "trace", trace_names(),
                     " (regenerate them with `python -m sparseattn.eval.hwtraces`)")
    return Workload.from_json(_trace_json(str(path)))


def with_density(trace: Workload, density: float) -> Workload:
    """``trace`` with its kept-pair work (Q.K, softmax, P.V) and profile rescaled to ``density``.

    Used where a paper states the density it ran at rather than a method setting, and by lever analyses.
    Prediction and selection work is unchanged (it scans every valid pair either way). The profile is scaled
    down per tile (empty tiles stay empty) or, for a higher density, every tile is filled towards full by the
    same fraction ``(density - current) / (1 - current)``, so the result is exact and monotone in ``density``.
    """
    if not 0 < density <= 1:
        raise ConfigError(f"density must be in (0, 1], got {density}")
    if trace.profile is None:
        raise ConfigError("with_density needs a trace with a sparsity profile")
    current = trace.density
    factor = density / current
    out = Workload(shape=trace.shape, meta=dict(trace.meta))
    for (key, per), c in trace.terms.items():
        scale = factor if key.stage in KEPT_STAGES and per in (Per.PAIR, Per.PAIR_DIM) else 1.0
        out.add(key.stage, key.op, key.bits, c * scale, per)
    for name, v in trace.extra_reads.items():
        per = trace.basis_of_read(name)
        out.add_read(name, v * (factor if per in (Per.PAIR, Per.PAIR_DIM) else 1.0), per)
    counts = trace.profile.counts.astype(np.float64)
    if density <= current:
        counts = counts * factor
    else:
        valid = tile_valid_counts(trace.shape.replace(layers=1, batch=1), trace.profile.tile)[None]
        counts = counts + (valid - counts) * ((density - current) / (1 - current))
    out.profile = SparsityProfile(tile=trace.profile.tile, counts=np.rint(counts).astype(np.int64),
                                  group=trace.profile.group)
    out.meta["density_source"] = f"rescaled from the measured {trace.density:.3f} to a paper-stated {density:.3f}"
    return out

