"""Spatial-STAR (issue 15): the mesh against its baselines at 32k-1M tokens, the headline ratio beside the paper's
20.1x with the assumptions that produce it, its sensitivity to them, the analytical model against the SimPy packet
simulation, and the simulator's speed on a 1M-token 8x8 run.

Writes ``benchmarks/results/bench_spatial.json`` / ``.md`` and ``docs/spatial_*.png``.
``python benchmarks/bench_spatial.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from sparseattn.core.shape import Shape
from sparseattn.hw import load_model_shape, load_trace, simulate
from sparseattn.hw.spatial import load_mesh, sweep, topology
from sparseattn.hw.spatial.dataflows import Tables
from sparseattn.hw.spatial.des import simulate_plan
from sparseattn.hw.spatial.orchestrator import Layout, build_plan
from sparseattn.hw.spatial.plan import estimate
from sparseattn.hw.spatial.simulate import plan_for, prepare
from sparseattn.report import spatial_figures as figures
from sparseattn.report.tables import markdown_table

RESULTS = Path(__file__).parent / "results"
DOCS = Path(__file__).parent.parent / "docs"
PAPER = 20.1
HEADLINE_MESH, HEADLINE_BASELINE = "spatial-star-8x8", "stage-isolated"
SEQS = (32768, 131072, 262144, 524288, 1048576)
VALIDATION = [  # mesh, seq, heads, layout (None: the orchestrator's), design
    ("spatial-star-2x2", 2048, 4, (1, 1, "local"), "spatial-star"),
    ("spatial-star-2x2", 2048, 4, (2, 2, "ring"), "spatial-star"),
    ("spatial-star-2x2", 4096, 4, (2, 2, "tree"), "spatial-star"),
    ("spatial-star-2x2", 4096, 4, None, "spatial-star"),
    ("spatial-star-2x2", 2048, 4, None, "stage-isolated"),
    ("spatial-star-4x4", 2048, 16, (1, 1, "local"), "spatial-star"),
    ("spatial-star-4x4", 2048, 4, (4, 4, "ring"), "spatial-star"),
    ("spatial-star-4x4", 4096, 4, (4, 4, "tree"), "spatial-star"),
    ("spatial-star-4x4", 2048, 4, (4, 4, "tree"), "spatial-star"),
    ("spatial-star-4x4", 4096, 8, None, "spatial-star"),
    ("spatial-star-4x4", 4096, 4, None, "dense-flash"),
    ("spatial-star-4x4", 4096, 4, None, "stage-isolated"),
]


def main_sweep() -> tuple[list[dict], list[dict], dict]:
    points = sweep.sweep_points(["spatial-star-4x4", HEADLINE_MESH], ["llama2-7b", "llama3-8b"], SEQS)
    points += sweep.sweep_points([HEADLINE_MESH], ["llama2-7b"], (131072, 1048576), phase="decode")
    points += sweep.scaling_points("llama2-7b", 131072)
    rows, results = sweep.run(points, lambda p: print(f"  {p.study} {p.arch} {p.shape} {p.seq} {p.phase} {p.design}",
                                                      flush=True))
    return rows, sweep.ratios(rows), results


def _variant(arch, **updates):
    for block in ("orchestration", "noc", "hbm"):
        fields = {k: updates.pop(k) for k in list(updates) if k in type(getattr(arch, block)).model_fields}
        if fields:
            updates[block] = getattr(arch, block).model_copy(update=fields)
    return arch.model_copy(update=updates)


def sensitivity(seq: int = 131072) -> list[dict]:
    """The headline ratio (ours / stage-isolated) and ours / dense-flash when one assumption moves."""
    trace, base = load_trace("star"), load_mesh(HEADLINE_MESH)
    shape = load_model_shape("llama2-7b").shape(seq)
    hbm, link = base.hbm.gbps_per_stack, base.noc.link_gbps
    cases = [("as bundled", {}, {}),
             ("baseline gathers K/V per row (no tile union)", {}, {"gather": "row"}),
             ("NoC links 64 GB/s (half)", {"link_gbps": link / 2}, {}),
             ("NoC links 256 GB/s (double)", {"link_gbps": link * 2}, {}),
             ("HBM 1/4 per stack", {"gbps_per_stack": hbm / 4}, {}),
             ("interleaved HBM placement", {"placement": "interleave"}, {}),
             ("ours without kept-pair balancing", {"ours": {"balance": False}}, {}),
             ("ours without comm/compute overlap", {"ours": {"overlap": False}}, {}),
             ("ours forced to one ring over the whole mesh", {"ours": {"dataflow": "q_ring"}}, {}),
             ("ours forced to head parallel", {"ours": {"dataflow": "head"}}, {})]
    rows = []
    for label, both, baseline_only in cases:
        both = dict(both)
        ours_only = both.pop("ours", {})
        ours = simulate(_variant(base, **both, **ours_only), trace, shape)
        iso = simulate(_variant(base, design="stage-isolated", **both, **baseline_only), trace, shape)
        flash = simulate(_variant(base, design="dense-flash", **both), trace, shape)
        rows.append({"case": label, "ours_tokens_per_s": ours.tokens_per_s, "ours_dataflow": ours.dataflow,
                     "vs_stage_isolated": ours.tokens_per_s / iso.tokens_per_s,
                     "vs_dense_flash": ours.tokens_per_s / flash.tokens_per_s,
                     "isolated_bottleneck": iso.latency_breakdown["bottleneck"]})
        print(f"  sensitivity: {label}: {rows[-1]['vs_stage_isolated']:.2f}x", flush=True)
    return rows


def validation() -> list[dict]:
    """The analytical latency against the SimPy packet simulation of the same plan (2 KB packets in both)."""
    trace, rows = load_trace("star"), []
    for name, seq, heads, layout, design in VALIDATION:
        arch = _variant(load_mesh(name), design=design, packet_bytes=2048)
        shape = Shape(batch=1, heads=heads, kv_heads=heads, q_len=seq, k_len=seq, head_dim=128, causal=True)
        costs, topo = prepare(arch, trace, shape, None), topology(arch)
        if layout is None:
            plan, _ = plan_for(arch, costs, topo, trace, detail=True)
        else:
            regions = (arch.mesh.rows // layout[0]) * (arch.mesh.cols // layout[1])
            plan = build_plan(Tables(costs, 32), topo, arch, Layout(*layout, regions), [0], detail=True)
        analytic = estimate(plan, topo, arch).cycles
        start = time.perf_counter()
        des = simulate_plan(plan, topo, arch)
        rows.append({"mesh": name, "tokens": seq, "heads": heads, "design": design, "dataflow": plan.label,
                     "analytic_cycles": analytic, "des_cycles": des, "error": analytic / des - 1,
                     "des_s": time.perf_counter() - start})
        print(f"  validation {name} {design} {plan.label}: {rows[-1]['error']:+.3f}", flush=True)
    return rows


def speed(repeats: int = 3) -> dict:
    trace, arch = load_trace("star"), load_mesh(HEADLINE_MESH)
    shape = load_model_shape("llama2-7b").shape(1 << 20)
    simulate(arch, trace, load_model_shape("llama2-7b").shape(4096))  # warm caches of the configs
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        r = simulate(arch, trace, shape)
        times.append(time.perf_counter() - start)
    return {"workload": "llama2-7b, 32 layers x 32 heads, 1,048,576 tokens, spatial-star-8x8 (orchestrator included)",
            "median_s": statistics.median(times), "max_s": max(times), "target_s": 10.0, "cpus": os.cpu_count(),
            "dataflow": r.dataflow, "tokens_per_s": r.tokens_per_s}


def _headline(ratios: list[dict]) -> list[dict]:
    return [r for r in ratios if r["study"] == "sweep" and r["arch"] == HEADLINE_MESH and r["phase"] == "prefill"
            and r["seq"] >= 131072]


def write_figures(rows: list[dict], results: dict) -> list[str]:
    DOCS.mkdir(exist_ok=True)
    out = [figures.throughput([r for r in rows if r["phase"] == "prefill"], DOCS / "spatial_throughput.png")]
    pick = {p.design: res for p, res in results.items()
            if (p.study, p.arch, p.shape, p.seq, p.phase) == ("sweep", HEADLINE_MESH, "llama2-7b", 131072, "prefill")}
    out.append(figures.utilisation(pick["spatial-star"], DOCS / "spatial_utilisation.png"))
    out.append(figures.energy(pick, DOCS / "spatial_energy.png"))
    out.append(figures.scaling(rows, DOCS / "spatial_scaling.png"))
    return [str(p.relative_to(DOCS.parent)) for p in out]


def markdown(rows, ratios, sens, valid, timing, figs) -> str:
    head = _headline(ratios)
    iso = [r["ratio"] for r in head if r["baseline"] == HEADLINE_BASELINE]
    flash = [r["ratio"] for r in head if r["baseline"] == "dense-flash"]
    lines = [
        "# Spatial-STAR: mesh vs baselines (issue 15)", "",
        f"Headline: Spatial-STAR on the {HEADLINE_MESH} mesh is **{min(iso):.2f}-{max(iso):.2f}x** the throughput of "
        f"the same STAR cores run stage-isolated and uncoordinated (the headline baseline), and "
        f"**{min(flash):.2f}-{max(flash):.2f}x** the same mesh running dense FlashAttention, at 128k-1M tokens on "
        f"Llama2-7B and Llama3-8B prefill. The paper reports **{PAPER}x** over \"the baseline design\", which its "
        "available text (its abstract, arXiv 2512.20198) does not define. Ours / paper: "
        f"{min(iso) / PAPER:.2f}-{max(iso) / PAPER:.2f}.", "",
        "Assumptions that produce it (all in `sparseattn/hw/spatial/configs/*.yaml` and the module docstrings): the "
        "STAR core of `hw/configs/star.yaml` (SOFA Table III) running the bundled SmolLM2 `star` trace carried to "
        "the model shape by normalised position (density ~0.10); 1024-bit NoC links at 1 GHz (128 GB/s), 2-cycle "
        "hops, XY routing; 8 HBM3 stacks (819 GB/s each, 80% attained) on the 8x8 mesh, data in the nearest "
        "stack; the baseline's formal stage gathers the union of a query tile's kept keys (generous to it). The "
        "ratio is flat in sequence length because every cost is ~N^2 with the profile carried by position.", "",
        "## Headline ratios (prefill)", "",
        markdown_table(head, ["arch", "shape", "seq", "baseline", "ratio"]), "",
        "## Sensitivity (Llama2-7B, 128k tokens, 8x8)", "",
        markdown_table(sens, ["case", "vs_stage_isolated", "vs_dense_flash", "ours_dataflow", "isolated_bottleneck"]),
        "", "## Every run", "",
        markdown_table(rows, ["study", "arch", "shape", "seq", "phase", "design", "dataflow", "tokens_per_s",
                              "layer_latency_ms", "mean_core_utilisation", "max_link_utilisation",
                              "max_hbm_utilisation", "bottleneck", "energy_j", "area_mm2"]), "",
        "## Analytical model vs SimPy packet simulation (same plan, 2 KB packets)", "",
        markdown_table(valid, ["mesh", "tokens", "heads", "design", "dataflow", "analytic_cycles", "des_cycles",
                               "error", "des_s"]), "",
        f"Largest error: {max(abs(v['error']) for v in valid):.3f} (target 0.10).", "",
        "## Simulator speed", "",
        f"{timing['workload']}: median {timing['median_s']:.2f} s, max {timing['max_s']:.2f} s over 3 runs on "
        f"{timing['cpus']} CPUs (target < {timing['target_s']:.0f} s).", "",
        "Figures: " + ", ".join(f"`{f}`" for f in figs), "",
    ]
    return "\n".join(lines)


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    print("speed", flush=True)
    timing = speed()
    print("sweep", flush=True)
    rows, ratios, results = main_sweep()
    print("sensitivity", flush=True)
    sens = sensitivity()
    print("validation", flush=True)
    valid = validation()
    figs = write_figures(rows, results)
    data = {"paper_ratio": PAPER, "headline_mesh": HEADLINE_MESH, "headline_baseline": HEADLINE_BASELINE,
            "headline": _headline(ratios), "ratios": ratios, "rows": rows, "sensitivity": sens,
            "validation": valid, "speed": timing, "figures": figs}
    (RESULTS / "bench_spatial.json").write_text(json.dumps(data, indent=2))
    (RESULTS / "bench_spatial.md").write_text(markdown(rows, ratios, sens, valid, timing, figs))
    print(f"wrote {RESULTS / 'bench_spatial.json'}, .md and {', '.join(figs)}")


if __name__ == "__main__":
    main()
