"""The main job: dense attention against the oracles over a sweep of densities, on the bundled model and texts.

For each text: dense, then each oracle at each target density, every layer and head sparse:

* ``topk`` with ``ratio = target``;
* ``threshold`` with the ``delta`` whose density on that text's dense Q/K equals the target
  (:func:`~sparseattn.eval.calibrate.threshold_delta_for_density`; the density measured in the sparse run
  differs a little because sparse layers change later layers' inputs);
* ``block_topk`` with ``ratio = target`` of the key blocks (first and diagonal blocks forced).

Rows are appended to ``results.json`` as they finish; running again with the same output directory and the
same configuration resumes and skips what is done.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.errors import InvalidParameterError
from ..core.files import CorruptFileError, read_json_object, write_atomic
from ..models.loader import LoadedModel, load_model
from .calibrate import threshold_delta_for_density
from .corpora import load_text
from .fidelity import capture_qkv
from .perplexity import perplexity

OracleName = Literal["topk", "threshold", "block_topk"]


class SweepConfig(BaseModel):
    """What ``sparseattn run`` measures (defaults: the embedded model, both texts, 1024 tokens)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "smollm2-135m"
    texts: list[str] = Field(default_factory=lambda: ["moby-dick", "sotu"], min_length=1)
    n_tokens: int = Field(1024, ge=16, le=8192)
    densities: list[float] = Field(default_factory=lambda: [0.5, 0.3, 0.2, 0.1, 0.05], min_length=1)
    methods: list[OracleName] = Field(default_factory=lambda: ["topk", "threshold", "block_topk"])
    block_size: int = Field(64, ge=1)

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from ..models.loader import _resolve

        _resolve(v)  # a bundled name, .gguf file, HF directory or cached id; raises naming what was tried
        return v

    @field_validator("texts")
    @classmethod
    def _known_texts(cls, v: list[str]) -> list[str]:
        for t in v:
            load_text(t)  # a bundled name or a UTF-8 file; raises naming it otherwise
        return v

    @field_validator("densities")
    @classmethod
    def _in_range(cls, v: list[float]) -> list[float]:
        bad = [d for d in v if not 0 < d <= 1]
        if bad:
            raise ValueError(f"target densities must lie in (0, 1], got {bad}")
        return v


def _key(row: dict[str, Any]) -> tuple:
    return (row["text"], row["method"], row.get("target_density"))


def _save(path: Path, config: SweepConfig, rows: list[dict[str, Any]]) -> None:
    data = {
        "config": config.model_dump(),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "threads": torch.get_num_threads(),
        },
        "rows": rows,
    }
    write_atomic(path, json.dumps(data, indent=1))  # an interrupted run never leaves a half-written file


ROW_KEYS = ("text", "method", "target_density", "params", "ppl", "density")


def load_rows(out_dir: Path, config: SweepConfig) -> list[dict[str, Any]]:
    """Rows already measured in ``out_dir`` for this configuration (empty when none). A malformed file raises
    :class:`~sparseattn.core.files.CorruptFileError` naming it (``--restart`` moves it aside); another
    configuration's file is refused."""
    path = out_dir / "results.json"
    if not path.exists():
        return []
    hint = "; rerun with --restart to move it aside (it is kept, renamed .bad-<time>) and start afresh"
    data = read_json_object(path, "results file", hint)
    rows = data.get("rows")
    if not isinstance(data.get("config"), dict) or not isinstance(rows, list) or not all(
        isinstance(r, dict) and all(k in r for k in ROW_KEYS) for r in rows
    ):
        raise CorruptFileError(f"results file {str(path)!r} lacks a config or has malformed rows "
                               f"(each needs {', '.join(ROW_KEYS)}){hint}")
    if data.get("config") != config.model_dump():
        raise InvalidParameterError(
            f"{path} holds results of another configuration; use a new output directory to start afresh"
        )
    return list(data.get("rows", []))


def planned(config: SweepConfig) -> list[tuple[str, str, float | None]]:
    """Every (text, method, target density) the sweep measures, dense first per text."""
    plan: list[tuple[str, str, float | None]] = []
    for text in config.texts:
        plan.append((text, "dense", None))
        plan += [(text, m, d) for m in config.methods for d in config.densities]
    return plan


def run_sweep(
    config: SweepConfig,
    out_dir: Path,
    model: LoadedModel | None = None,
    on_row: Callable[[dict[str, Any], int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the sweep, saving ``out_dir/results.json`` after every measurement.

    ``on_row(row, done, total)`` is called after each new row (progress reporting).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    rows = load_rows(out_dir, config)
    done = {_key(r) for r in rows}
    plan = planned(config)
    todo = [p for p in plan if p not in done]
    if not todo:
        return rows
    model = model or load_model(config.model)
    deltas: dict[str, dict[float, float]] = {}
    for text, method, target in todo:
        if method == "threshold" and text not in deltas:
            captured = capture_qkv(model, text, config.n_tokens).values()
            deltas[text] = threshold_delta_for_density(captured, config.densities)
        params: dict[str, Any] = {}
        if method == "topk":
            params = {"ratio": target}
        elif method == "threshold":
            params = {"delta": round(deltas[text][target], 4)}
        elif method == "block_topk":
            params = {"block_size": config.block_size, "ratio": target}
        start = time.perf_counter()
        result = perplexity(model, text, config.n_tokens, method, **params)
        row = {
            "text": text,
            "method": method,
            "target_density": target,
            "params": params,
            "ppl": result.ppl,
            "nll": result.nll,
            "density": result.density,
            "n_tokens": config.n_tokens,
            "seconds": round(time.perf_counter() - start, 2),
        }
        rows.append(row)
        _save(path, config, rows)
        if on_row is not None:
            on_row(row, len(rows), len(plan))
    return rows


def with_relative_increase(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``rel_increase`` = ppl / dense ppl - 1 for the same text (None when dense is missing)."""
    dense = {r["text"]: r["ppl"] for r in rows if r["method"] == "dense"}
    return [{**r, "rel_increase": (r["ppl"] / dense[r["text"]] - 1) if r["text"] in dense else None} for r in rows]
