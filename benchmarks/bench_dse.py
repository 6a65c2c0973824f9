"""Design-space exploration of STAR's tiling on Llama2-7B (the bundled ``star-tiling`` space) at 4k and 16k tokens.

    python benchmarks/bench_dse.py            # ~10 min on 2 shared cores

For each sequence length:

* the **default tiling** (STAR's own mapping: formal tile 128 x 64, double buffered, cross-stage K reuse) and the
  **grid optimum** of latency over the whole space (1536 points, every one simulated: the reference);
* the best latency found by **TPE** (120 trials) and the **GP** (60 trials), with its DRAM traffic and the number
  of trials (and distinct evaluations) it took to reach it (equal latencies: the one with the least DRAM);
* the latency / DRAM **Pareto front** found by TPE (150 trials), and its least-DRAM point;
* **wall time** of the same TPE study (120 trials, batches of 2, SQLite storage) on a local pool of 2 processes
  and on an embedded local Ray with 2 CPUs (both on the same 2 shared cores: Ray's overhead, not a speed-up).

Writes ``benchmarks/results/bench_dse.{json,md}`` and ``docs/dse_pareto.png`` (atomically). Timings are
measurements, never assertions.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from sparseattn.core.files import write_atomic
from sparseattn.dse import StudyConfig, parse_space, read_space, resolve, run_study
from sparseattn.dse.outputs import baseline
from sparseattn.dse.plots import pareto_plot

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEQS = (4096, 16384)


def study(space: Any, sampler: str, n: int, storage: str = "memory", **kw: Any) -> Any:
    cfg = StudyConfig(sampler=sampler, n_trials=n, seed=0, storage=storage, study_name=f"{sampler}-{time.time()}",
                      workers=kw.pop("workers", 1), progress=False, **kw)
    return run_study(space, cfg)


def reached(result: Any, name: str) -> dict[str, Any]:
    """The best value of ``name`` (ties: the least DRAM) and the trials / distinct evaluations it took to reach it."""
    ok = [r for r in result.records if r.ok]
    top = min(ok, key=lambda r: (r.objectives[name], r.metrics["dram_mb"], r.number))
    first = min(r.number for r in ok if r.point == top.point)
    evals = sum(1 for r in result.records if r.number <= first and r.duplicate_of is None)
    return {"point": top.point, name: top.objectives[name], "dram_mb": top.metrics["dram_mb"],
            "latency_ms": top.metrics["latency_ms"], "trials_to_reach": first + 1, "evaluations_to_reach": evals,
            "trials": len(result.records), "evaluations": sum(r.duplicate_of is None for r in result.records),
            "wall_s": result.wall_s}


def wall_times(space: Any) -> dict[str, float]:
    """The same TPE study on a local pool and on Ray (SQLite storage each, 2 workers, batches of 2)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        pool = study(space, "tpe", 120, f"sqlite:///{tmp}/pool.db", workers=2, batch=2)
        ray = study(space, "tpe", 120, f"sqlite:///{tmp}/ray.db", workers=2, batch=2, ray=True)
    out = {"local_pool_s": pool.wall_s, "ray_s": ray.wall_s, "same_trials": [r.point for r in pool.records]
           == [r.point for r in ray.records], "best_latency_ms": pool.best[0].objectives["latency_ms"]}
    return out


def one_seq(seq: int) -> tuple[dict[str, Any], Any, Any, Any]:
    f = read_space("star-tiling")
    data = {**f.model_dump(exclude={"base_dir"}), "workload": {**f.workload.model_dump(), "seq": seq}}
    both = resolve(parse_space(data, "star-tiling", f.base_dir))
    lat = resolve(parse_space({**data, "objectives": ["latency_ms"]}, "star-tiling", f.base_dir))
    base = baseline(both)
    grid = study(lat, "grid", 10_000)
    tpe, gp = study(lat, "tpe", 120), study(lat, "gp", 60)
    front = study(both, "tpe", 150)
    least_dram = min(front.best, key=lambda r: r.objectives["dram_mb"])
    row = {
        "seq": seq,
        "default": {"point": "STAR's mapping: formal 128x64, double buffered, K reuse, KV residency auto",
                    "latency_ms": base.values[0], "dram_mb": base.values[1]},
        "grid": {**reached(grid, "latency_ms"), "size": lat.grid_size(),
                 "feasible": sum(r.ok for r in grid.records)},
        "tpe": reached(tpe, "latency_ms"),
        "gp": reached(gp, "latency_ms"),
        "pareto_tpe": {"size": len(front.best), "trials": len(front.records), "least_dram": {
            "point": least_dram.point, **least_dram.objectives}},
        "wall": wall_times(lat),
    }
    return row, both, front, base


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["# DSE: STAR tiling on Llama2-7B (`star-tiling` space, 1536 points)", "",
             "| seq | config | latency (ms) | DRAM (GB) | vs default latency | trials to reach (evaluations) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        d = r["default"]
        lines.append(f"| {r['seq']} | default (128x64) | {d['latency_ms']:.1f} | {d['dram_mb'] / 1e3:.2f} | - | - |")
        for key, label in (("grid", "grid optimum"), ("tpe", "TPE best (120)"), ("gp", "GP best (60)")):
            b = r[key]
            p = b["point"]
            lines.append(f"| {r['seq']} | {label}: {p['q_tile']}x{p['k_tile']}, db={p['double_buffered']}, "
                         f"reuse={p['cross_stage_reuse']}, kv={p['kv_residency']} | {b['latency_ms']:.1f} | "
                         f"{b['dram_mb'] / 1e3:.2f} | {b['latency_ms'] / d['latency_ms'] - 1:+.1%} | "
                         f"{b['trials_to_reach']} ({b['evaluations_to_reach']}) |")
        ld = r["pareto_tpe"]["least_dram"]
        lines.append(f"| {r['seq']} | least DRAM on the TPE front: {ld['point']['q_tile']}x{ld['point']['k_tile']}, "
                     f"db={ld['point']['double_buffered']} | {ld['latency_ms']:.1f} | {ld['dram_mb'] / 1e3:.2f} | "
                     f"{ld['latency_ms'] / d['latency_ms'] - 1:+.1%} | - |")
    lines += ["", "| seq | local pool, 2 processes (s) | Ray, 2 CPUs (s) | same trials |", "|---|---|---|---|"]
    for r in rows:
        w = r["wall"]
        lines.append(f"| {r['seq']} | {w['local_pool_s']:.1f} | {w['ray_s']:.1f} | {w['same_trials']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    torch.set_num_threads(1)
    rows, plots = [], []
    for seq in SEQS:
        start = time.perf_counter()
        row, space, front, base = one_seq(seq)
        row["bench_s"] = time.perf_counter() - start
        rows.append(row)
        plots.append((space, front, base, seq))
        print(json.dumps(row, indent=1, default=str), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_atomic(RESULTS / "bench_dse.json", json.dumps({"rows": rows}, indent=2, default=str))
    write_atomic(RESULTS / "bench_dse.md", markdown(rows))
    space, front, base, seq = plots[0]
    pareto_plot(space, front, ROOT / "docs" / "dse_pareto.png", base,
                title=f"STAR tiling on Llama2-7B, {seq} tokens: TPE, {len(front.records)} trials")


if __name__ == "__main__":
    main()
