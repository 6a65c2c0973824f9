"""The accelerator simulator: its speed, the GPU roofline's validation, every design as published and iso-PADE,
and the headline-claim reproduction.

Writes ``benchmarks/results/bench_hw.json`` / ``.md`` and ``benchmarks/results/reproduce/`` (the claims as JSON
and markdown), and copies the two figures to ``docs/``. ``python benchmarks/bench_hw.py`` (about a minute on 2
cores). Targets (issue 7): one architecture x Llama2-7B (32 layers) at 4k tokens simulates in under 1 s;
``reproduce --paper all`` in under 2 minutes.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from pathlib import Path

import torch

from sparseattn.hw import capabilities, load_arch, load_model_shape, simulate, trace_for
from sparseattn.hw.gpu import H100_SDPA_MS, roofline_seconds
from sparseattn.hw.normalise import iso
from sparseattn.report.claim import sim_shape
from sparseattn.report.reproduce import PAPERS, claims_markdown, reproduce
from sparseattn.report.tables import markdown_table

RESULTS = Path(__file__).parent / "results"
DOCS = Path(__file__).parent.parent / "docs"
ARCHS = ("pade", "sofa", "star", "sanger", "dota", "energon", "spatten", "elsa", "a3", "a100", "h100")


def simulator_speed(repeats: int = 3) -> list[dict]:
    shape = load_model_shape("llama2-7b").shape(4096)
    rows = []
    for name in ARCHS:
        arch = load_arch(name)
        trace = trace_for(arch, shape.causal)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            simulate(arch, trace, shape)
            times.append(time.perf_counter() - start)
        rows.append({"arch": name, "workload": "llama2-7b x 32 layers @ 4096", "median_s": statistics.median(times),
                     "max_s": max(times), "target_s": 1.0})
    return rows


def roofline_validation() -> list[dict]:
    from sparseattn.core import Shape

    h100 = load_arch("h100")
    rows = []
    for n, ms in sorted(H100_SDPA_MS.items()):
        shape = Shape(batch=1, heads=32, kv_heads=32, q_len=n, k_len=n, head_dim=128, causal=False)
        model = roofline_seconds(h100, shape)["time"] * 1e3
        rows.append({"tokens": n, "measured_ms": ms, "model_ms": model, "error": model / ms - 1})
    return rows


def side_by_side(model: str = "llama2-7b", seq: int = 2048) -> list[dict]:
    shape = load_model_shape(model).shape(seq)
    rows = []
    for name in ARCHS:
        arch = load_arch(name)
        settings = [("published", arch)] + ([("iso-PADE", iso(arch))] if capabilities(arch).normalisable else [])
        for mode, a in settings:
            rows.append(_row(name, mode, simulate(a, trace_for(a, shape.causal), shape), arch))
    return rows


def _row(name: str, mode: str, r, arch) -> dict:
    s = r.summary()
    pub = getattr(arch, "published", None)
    return {
        "arch": name, "setting": mode, "method": r.method, "density": r.density,
        "latency_ms": s["latency_ms"], "energy_mj": s["energy_mj"], "power_w": s["power_w"],
        "area_mm2": s["area_mm2"], "gops_per_w": s["gops_per_w"], "effective_gops": s["effective_gops"],
        "dram_mb": s["dram_mb"],
        "published_area_mm2": pub.area_mm2 if pub else None, "published_power_w": pub.power_mw / 1e3
        if pub and pub.power_mw else None,
    }


def main() -> None:
    torch.set_num_threads(2)
    RESULTS.mkdir(exist_ok=True)
    speed = simulator_speed()
    roof = roofline_validation()
    table = side_by_side()
    sim_shape.cache_clear()
    start = time.perf_counter()
    claims = reproduce(PAPERS, RESULTS / "reproduce")
    reproduce_s = time.perf_counter() - start
    DOCS.mkdir(exist_ok=True)
    for png in ("claims.png", "energy_breakdown.png", *(f"tornado_{p}.png" for p in PAPERS)):
        shutil.copy(RESULTS / "reproduce" / png, DOCS / png)
        (RESULTS / "reproduce" / png).unlink()
    out = {
        "simulator_speed": speed,
        "reproduce_all_s": reproduce_s,
        "reproduce_target_s": 120.0,
        "h100_roofline": roof,
        "side_by_side_llama2_7b_2048": table,
        "claims_within_25pct": sum(c.within for c in claims),
        "claims": len(claims),
    }
    (RESULTS / "bench_hw.json").write_text(json.dumps(out, indent=1))
    md = [
        "# Accelerator simulator",
        "",
        f"One architecture x Llama2-7B (32 layers) at 4096 tokens, wall time (median of 3; target < 1 s); "
        f"`reproduce --paper all`: {reproduce_s:.1f} s (target < 120 s).",
        "",
        markdown_table(speed, ["arch", "median_s", "max_s"]),
        "",
        "## H100 roofline vs measured torch SDPA (bf16, B=1, 32 heads, d=128, non-causal)",
        "",
        markdown_table(roof, ["tokens", "measured_ms", "model_ms", "error"]),
        "",
        "## Every design on Llama2-7B at 2048 tokens, as published and iso-PADE",
        "",
        markdown_table(table, ["arch", "setting", "method", "density", "latency_ms", "energy_mj", "power_w",
                               "area_mm2", "published_area_mm2", "published_power_w", "gops_per_w", "dram_mb"]),
        "",
        f"## Headline claims ({sum(c.within for c in claims)} of {len(claims)} within ±25%)",
        "",
        claims_markdown(claims),
    ]
    (RESULTS / "bench_hw.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
