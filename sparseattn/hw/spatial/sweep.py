"""Sweeps of the mesh simulator: designs x meshes x model shapes x sequence lengths (prefill or decode), strong and
weak scaling with the core count, and the headline ratios -- plain rows (dicts) for JSON, CSV and figures.

* **prefill** -- one forward pass over ``seq`` tokens (queries = keys, causal), all layers; throughput is tokens
  per second of that pass;
* **decode** -- one new token against a ``seq``-token KV cache (``q_len = 1``), all layers; throughput is tokens
  per second of one sequence;
* **strong scaling** -- the same workload on the bundled 2x2, 4x4 and 8x8 meshes; **weak scaling** -- the sequence
  grows with the square root of the cores, so the attention work (``~ seq^2``) per core stays constant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...core.invariants import check_monotone, check_rows, check_sim_result, check_size
from ...core.shape import Shape
from ..shapes import load_model_shape
from ..traces import trace_for
from .result import MeshResult
from .schema import MeshArch, load_mesh
from .simulate import simulate_mesh

DESIGNS = ("spatial-star", "dense-flash", "stage-isolated")
SEQS = (32768, 65536, 131072, 262144, 524288, 1048576)
SCALING_MESHES = ("spatial-star-2x2", "spatial-star-4x4", "spatial-star-8x8")


@dataclass(frozen=True)
class Point:
    """One simulation of a sweep."""

    arch: str
    shape: str
    seq: int
    design: str
    phase: str = "prefill"  # or "decode"
    study: str = "sweep"  # "sweep", "strong", "weak"


def workload(shape: str, seq: int, phase: str) -> Shape:
    """The prefill of ``seq`` tokens, or one decoded token against ``seq`` cached ones."""
    prefill = load_model_shape(shape).shape(seq)
    return prefill if phase == "prefill" else prefill.replace(q_len=1)


def run_point(p: Point) -> tuple[dict[str, Any], MeshResult]:
    """Simulate one point; its row and the full result."""
    arch: MeshArch = load_mesh(p.arch).model_copy(update={"design": p.design})
    shape = workload(p.shape, p.seq, p.phase)
    check_size(p.seq, shape.batch, "--seq", "batch")
    result = check_sim_result(simulate_mesh(arch, trace_for(arch, shape.causal), shape))
    s = result.summary()
    row = {"study": p.study, "arch": p.arch, "cores": arch.cores, "shape": p.shape, "seq": p.seq, "phase": p.phase,
           "design": p.design, "dataflow": result.dataflow, "tokens_per_s": result.tokens_per_s,
           "latency_s": result.latency_s, "layer_latency_ms": result.latency_s / shape.layers * 1e3,
           "energy_j": result.energy_j, "area_mm2": result.total_area_mm2, "power_w": result.power_w,
           "mean_core_utilisation": s["mean_core_utilisation"], "max_link_utilisation": s["max_link_utilisation"],
           "max_hbm_utilisation": s["max_hbm_utilisation"], "noc_gb": s["noc_gb"], "hbm_gb": s["hbm_gb"],
           "bottleneck": result.latency_breakdown["bottleneck"], "density": result.density,
           **{f"energy_{k}_j": v * 1e-12 for k, v in result.energy_by("kind").items()},
           "warnings": "; ".join(n.removeprefix("warning: ") for n in result.notes if n.startswith("warning:"))}
    return row, result


def sweep_points(archs: Iterable[str], shapes: Iterable[str], seqs: Iterable[int], designs: Iterable[str] = DESIGNS,
                 phase: str = "prefill") -> list[Point]:
    return [Point(a, s, n, d, phase) for a in archs for s in shapes for n in seqs for d in designs]


def scaling_points(shape: str, seq: int, designs: Iterable[str] = ("spatial-star", "stage-isolated")) -> list[Point]:
    """Strong scaling at ``seq`` and weak scaling ending at ``seq`` on the largest mesh (see the module
    docstring)."""
    out = []
    cores = [load_mesh(m).cores for m in SCALING_MESHES]
    for mesh, p in zip(SCALING_MESHES, cores, strict=True):
        weak = max(16, round(seq * (p / cores[-1]) ** 0.5 / 16) * 16)
        for d in designs:
            out += [Point(mesh, shape, seq, d, study="strong"), Point(mesh, shape, weak, d, study="weak")]
    return out


def run(points: list[Point], progress: Callable[[Point], None] | None = None) -> tuple[list[dict], dict]:
    """Every point's row, and the full results of the points the figures need (by point)."""
    rows, results = [], {}
    for p in points:
        if progress is not None:
            progress(p)
        row, result = run_point(p)
        rows.append(row)
        results[p] = result
    check_rows(rows, "spatial sweep")
    check_latency_grows(rows)
    return rows, results


def check_latency_grows(rows: list[dict]) -> None:
    """Latency never falls as the sequence grows, for one fixed design (study, mesh, shape, phase, design)."""
    groups: dict[tuple, list[tuple[int, float]]] = {}
    for r in rows:
        groups.setdefault((r["study"], r["arch"], r["shape"], r["phase"], r["design"]), []).append(
            (r["seq"], r["latency_s"]))
    for key, points in groups.items():
        check_monotone(points, " ".join(map(str, key)))


def ratios(rows: list[dict], ours: str = "spatial-star") -> list[dict]:
    """Spatial-STAR's throughput over each baseline at every (study, arch, shape, seq, phase)."""
    key = ("study", "arch", "shape", "seq", "phase")
    by = {}
    for r in rows:
        by.setdefault(tuple(r[k] for k in key), {})[r["design"]] = r["tokens_per_s"]
    out = []
    for k, designs in by.items():
        if ours in designs:
            for d, tps in designs.items():
                if d != ours:
                    out.append({**dict(zip(key, k, strict=True)), "baseline": d, "ratio": designs[ours] / tps})
    return out
