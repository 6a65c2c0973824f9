"""Typed result rows for tests of the report (:mod:`sparseattn.report.rows`), with only the fields a test cares
about given; the rest are filler of the right type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparseattn.report.rows import (
    AccuracyRow,
    CalibratedHardwareRow,
    CalibrationRow,
    HardwareRow,
    OracleRow,
    RunView,
    ShapeRow,
)

SHAPE = ShapeRow(batch=1, heads=9, kv_heads=3, q_len=256, k_len=256, head_dim=64, causal=True, layers=30)


def accuracy(density: float, change: float | None, **kw: Any) -> AccuracyRow:
    fields = {"model": "smollm2-135m", "text": "moby-dick", "n_tokens": 256, "method": "m", "params": {},
              "nll": 4.0, "ppl": 60 * (1 + (change or 0.0)), "density": density, "kept_pairs": 1, "valid_pairs": 1,
              "seconds": 0.0, "trace": "traces/t.json"}
    if change is not None:
        fields |= {"ppl_change": change, "oracle": OracleRow(ppl=60.0, density=density, ppl_change=change / 2)}
    return AccuracyRow(**(fields | kw))


def hardware(arch: str, method: str, latency_ms: float, energy_mj: float, **kw: Any) -> HardwareRow:
    fields = {"arch": arch, "method": method, "workload": "decoder", "shape": "llama2-7b", "seq": 2048,
              "latency_ms": latency_ms, "energy_mj": energy_mj, "power_w": 1.0, "area_mm2": 1.0,
              "effective_gops": 1.0, "gops_per_w": 1.0, "gops_per_mm2": 1.0, "dram_mb": 1.0, "density": 0.5,
              "energy_parts_mj": {}, "scaled_from": SHAPE, "notes": []}
    return (CalibratedHardwareRow if "budget" in kw else HardwareRow)(**(fields | kw))


def calibration(method: str, budget: float, density: float, loss: float, reached: bool = True,
                layers: dict[int, float] | None = None, **params: float) -> CalibrationRow:
    return CalibrationRow(model="smollm2-135m", kind="decoder", method=method, budget=budget, reached=reached,
                          params=params, calib_text="sotu", calib_loss=loss * 0.9, calib_density=density * 1.05,
                          judge_text="moby-dick", judge_loss=loss, judge_density=density, evaluations=9, seconds=1.0,
                          note="" if reached else "cannot reach", judge_layer_density=layers or {},
                          gap=loss * 0.1, judged_on_budget=loss <= budget)


def view(out: Path, config: Any, **units: dict[str, Any]) -> RunView:
    """A run's results holding ``units`` (step -> unit -> row)."""
    return RunView(out=out, config=config, units=units)
