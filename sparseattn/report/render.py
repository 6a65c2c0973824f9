"""The main job's outputs from its store: figures (PNG + SVG), CSV tables and the sections of ``report.html``."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from ..core.files import write_atomic
from . import figures
from .equal_accuracy import equal_accuracy_section, plot_density_vs_budget
from .html import TAG, Markup, figure, page, significant, table
from .job import ResultStore
from .summary import claim_anchor, claims_verdict, gpu_reconciliation, summary_section

HOW_TO_READ = (
    "<p>Each number carries a tag. <b>Measured</b> numbers come from running the method inside the real model on "
    "this machine (perplexity of the decoder, embedding cosine of the encoder, densities, attention fidelity on "
    "captured Q/K/V). <b>Simulated</b> numbers come from sparseattn's hardware models: the method's own captured "
    "traces (the work it counted on this input) carried to the papers' model shapes and run on the accelerator's "
    "YAML description and a technology table (Horowitz 45 nm energies scaled to the node, CACTI-calibrated SRAM, "
    "HBM2 at 3.9 pJ/bit); GPUs run dense FlashAttention-class kernels (the H100's efficiency fitted within 8% to "
    "four SDPA measurements), and the papers' claims use each paper's own GPU setup. <b>Paper</b> numbers are "
    "quoted from the SOFA, STAR and PADE papers. Densities are kept pairs "
    "over valid (causal) pairs. Perplexity changes are relative to dense attention on the same tokens; every "
    "method runs without fine-tuning (the papers fine-tune or train their predictors), so our accuracy costs are "
    "upper bounds of theirs.</p>")

ASSUMPTIONS = [
    "Traces are captured on the bundled models (SmolLM2-135M decoder, MiniLM-L6 encoder) and carried to 7B-class "
    "shapes assuming the same density and sparsity pattern (Workload.scaled_to; the captured shape is listed).",
    "Accelerator microarchitectures not published by the papers (unit counts, buffers of the baselines) are marked "
    "as assumptions in their YAML files under sparseattn/hw/configs.",
    "Energy: Horowitz ISSCC'14 arithmetic scaled by node (E ∝ node·V²), PE overhead 1.5x energy / 3x area "
    "calibrated on SOFA's published modules, SRAM energy ∝ √(bank size), HBM2 3.9 pJ/bit.",
    "GPUs: one FlashAttention-class kernel per layer at the fitted efficiency times its thread-block wave fill, a "
    "launch floor per kernel, energy as board power (idle + dynamic, what nvidia-smi reads; idle and busy power are "
    "assumptions until measured). The claims use eager PyTorch with dynamic power on the A100 (SOFA/STAR) and "
    "TensorRT-LLM prefill + decode at batch 8 on the H100 (PADE).",
]


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ sections
def accuracy_section(store: ResultStore, figs: dict[str, Path]) -> str:
    acc = store.data["steps"].get("accuracy", {})
    dense = acc.get("dense")
    if not dense:
        return "<p>The accuracy step has no result.</p>"
    rows = []
    for m, r in acc.items():
        if m == "dense":
            continue
        fid = list(r.get("fidelity", {}).values())
        mass = sum(f["recall"] for f in fid) / len(fid) if fid else float("nan")
        err = sum(f["output_rel_error"] for f in fid) / len(fid) if fid else float("nan")
        dens = list(r.get("layer_density", {}).values()) or [r["density"]]
        rows.append([m, r["density"], f"{min(dens):.3f}–{max(dens):.3f}", r["ppl"], f"{100 * r['ppl_change']:+.2f}%",
                     f"{100 * r['oracle']['ppl_change']:+.2f}%", mass, err])
    m = TAG["measured"]
    head = (f"<p>{store.config.model} on {dense['text']}, {dense['n_tokens']} tokens, every layer sparse; dense "
            f"perplexity {dense['ppl']:.3f} {m}.</p>")
    t = table(["method (defaults)", f"density {m}", f"per-layer density (min–max) {m}", f"perplexity {m}",
               f"vs dense {m}", f"top-k oracle at that density, vs dense {m}",
               f"kept softmax mass (fidelity layers) {m}", f"output rel. error {m}"], rows,
              formats=[None, ".3f", None, ".3f", None, None, ".3f", ".3f"])
    return head + t + (figure(figs["accuracy"], "perplexity change vs density; rings: the top-k oracle at the "
                                                "method's density") if "accuracy" in figs else "")


def encoder_section(store: ResultStore, figs: dict[str, Path]) -> str:
    enc = store.data["steps"].get("encoder", {})
    if not enc:
        return "<p>No encoder in this run.</p>"
    rows = [[m, r["density"], r["cosine"], r["cosine_min"], r["retrieval_agreement"]] for m, r in enc.items()
            if m != "dense"]
    first = next(iter(enc.values()))
    m = TAG["measured"]
    head = (f"<p>{store.config.encoder}: {first['n_passages']} passages of {first['n_tokens']} tokens "
            f"({encoder_passages(store)}), every layer sparse (bidirectional).</p>")
    return head + table(["method", f"density {m}", f"cosine to dense (mean) {m}", f"cosine, worst passage {m}",
                         f"retrieval agreement {m}"], rows, formats=[None, ".3f", ".4f", ".4f", ".3f"]) + (
        figure(figs["encoder"], "encoder embeddings vs density") if "encoder" in figs else "")


def encoder_passages(store: ResultStore) -> str:
    """Which texts the encoder's passages came from (the decoder's text when the run was given a file)."""
    dense = store.data["steps"].get("encoder", {}).get("dense", {})
    texts = dense.get("texts")
    where = "from " + ", ".join(texts) if texts else "from the bundled texts"
    return where + (f"; {dense['texts_note']}" if dense.get("texts_note") else "")


def hardware_rows(store: ResultStore) -> list[dict[str, Any]]:
    """Accelerator rows with their speed-up and energy efficiency over each GPU on the same workload."""
    hw = store.data["steps"].get("hardware", {})
    gpus = {k.split("@")[0] for k, r in hw.items() if r["method"] == "dense" and r["arch"] in store.config.gpus}
    out = []
    for unit, r in hw.items():
        if r["arch"] in gpus:
            continue
        vs = {}
        for g in sorted(gpus):
            ref = hw.get(f"{g}@{r['workload']}")
            if ref:
                vs[g] = {"speedup": ref["latency_ms"] / r["latency_ms"], "energy": ref["energy_mj"] / r["energy_mj"]}
        out.append({**r, "unit": unit, "label": f"{r['arch']} ({r['workload']})", "vs": vs})
    return out


def hardware_section(store: ResultStore, figs: dict[str, Path]) -> str:
    rows = hardware_rows(store)
    if not rows:
        return "<p>The hardware step has no result.</p>"
    gpus = sorted({g for r in rows for g in r["vs"]})
    cells = [[r["label"], f"{r['shape']} @ {r['seq']}", r["density"], r["latency_ms"], r["energy_mj"], r["power_w"],
              r["area_mm2"], r["gops_per_w"], *[r["vs"].get(g, {}).get("speedup", float("nan")) for g in gpus],
              *[r["vs"].get(g, {}).get("energy", float("nan")) for g in gpus]] for r in rows]
    sim, m = TAG["simulated"], TAG["measured"]
    headers = ["design (trace)", "workload (shape @ tokens)", f"density of the trace {m}", f"latency ms {sim}",
               f"energy mJ {sim}", f"power W {sim}", f"area mm² {sim}", f"GOPS/W {sim}",
               *[f"speed-up vs {g.upper()} {sim}" for g in gpus], *[f"energy eff. vs {g.upper()} {sim}" for g in gpus]]
    formats = [None, None, ".3f", "sig", "sig", "sig", "sig", "sig", *["sig"] * (2 * len(gpus))]
    scaled = rows[0]["scaled_from"]
    note = (f"<p class='note'>Traces captured on this run's models (decoder shape {scaled['heads']} heads x "
            f"{scaled['q_len']} tokens x {scaled['layers']} layers) and carried to the workload shapes; GPUs run "
            "dense attention of the same shape.</p>")
    body = note + gpu_reconciliation(store) + table(headers, cells, formats=formats)
    for key, cap in (("speedups", "speed-up and energy efficiency over the GPUs"),
                     ("energy", "energy by part (prediction + selection, formal compute, SRAM, DRAM, static)")):
        if key in figs:
            body += figure(figs[key], cap)
    return body


def reproduce_section(store: ResultStore, figs: dict[str, Path]) -> str:
    claims = store.get("reproduce", "claims")
    if not claims:
        return claims_verdict(store)
    s, q = TAG["simulated"], TAG["quoted"]
    rows = [[c["paper"].upper(), Markup(f'<a href="#{claim_anchor(c)}">{html.escape(c["text"])}</a>'),
             c["paper_value"], c["ours"], c["ratio"],
             Markup('<span class="yes">yes</span>' if c["within_25pct"] else '<span class="no">no</span>')]
            for c in claims]
    t = table(["paper", "claim", f"paper {q}", f"ours {s}", f"ours / paper {s}", "within ±25%"], rows,
              formats=[None, None, "sig", "sig", "sig", None])
    note = ("<p class='note'>Each claim is evaluated by its paper's stated method (SOFA Table II arithmetic on "
            "published rows, eager PyTorch on the A100 with dynamic power, TensorRT-LLM prefill + decode on the "
            "H100, iso-PADE hardware at equal accuracy, or at equal density where the label says so); each claim "
            "links to its derivation below.</p>")
    body = note + gpu_reconciliation(store) + t + (
        figure(figs["claims"], "the papers' headline claims, paper vs ours") if "claims" in figs else "")
    checks = [c for c in store.get("reproduce", "validation") or [] if c["design"] in ("sofa", "pade")]
    if checks:
        body += "<p>The simulator against SOFA's and PADE's own published figures:</p>" + table(
            ["design", "figure", f"published {q}", f"ours {s}", f"ours / published {s}", "what is missing"],
            [[c["design"].upper(), c["figure"], c["published"], c["ours"], c["ratio"], c["note"]] for c in checks],
            formats=[None, None, "sig", "sig", "sig", None])
    return body + "<h3>How each claim was evaluated</h3>" + "".join(claim_derivation(c) for c in claims)


def claim_derivation(c: dict[str, Any]) -> str:
    """One claim's evaluation: the method, per-item values, variants, levers and derivation (an anchor target)."""
    s = TAG["simulated"]
    items = [f"Evaluated as: {html.escape(c.get('method', ''))}."]
    if c.get("per_item"):
        items.append("Per item " + s + ": " + ", ".join(f"{html.escape(k)} {significant(v)}x"
                                                        for k, v in c["per_item"].items()) + ".")
    if c.get("check") is not None:
        items.append(f"Check: the paper's own row through the same arithmetic gives {significant(c['check'])}x "
                     f"{TAG['quoted']}.")
    items += [f"Variant, {html.escape(k)}: {significant(v)}x {s}." for k, v in c.get("variants", {}).items()]
    items += [f"Lever: {html.escape(lv.get('text', ''))}." for lv in c.get("levers", [])]
    items += [f"Derivation: {html.escape(d)}" for d in c.get("derivation", [])]
    verdict = "within ±25%" if c["within_25pct"] else "misses"
    return (f'<div id="{claim_anchor(c)}"><h4>{c["paper"].upper()}: {html.escape(c["text"])} — paper '
            f"{significant(c['paper_value'])}x {TAG['quoted']}, ours {significant(c['ours'])}x {s}, {verdict}</h4><ul>"
            + "".join(f"<li>{i}</li>" for i in items) + "</ul></div>")


def spatial_section(store: ResultStore, figs: dict[str, Path]) -> str:
    rows = store.get("spatial", "rows")
    if not rows or isinstance(rows, dict):
        return f"<p>Not in this run: {(rows or {}).get('reason', 'the Spatial-STAR sweep was switched off')}.</p>"
    cells = [[r["design"], r["arch"], r["seq"], r["dataflow"], r["tokens_per_s"], 1e3 * r["latency_s"],
              r["mean_core_utilisation"], r["bottleneck"]] for r in rows]
    note = ("<p class='note'>Spatial-STAR is our design (STAR's body is unavailable): an 8x8 mesh of STAR cores, "
            "XY-routed NoC, HBM at the mesh edge; baselines: the same cores run stage-isolated (the headline), and a "
            "dense FlashAttention partitioning of the same mesh. One prefill of all layers.</p>")
    s = TAG["simulated"]
    body = note + table(["design", "mesh", "tokens", "dataflow", f"throughput tokens/s {s}", f"latency ms {s}",
                         f"mean core utilisation {s}", "bottleneck"], cells,
                        formats=[None, None, ",d", None, "sig", "sig", ".2f", None])
    if "spatial" in figs:
        body += figure(figs["spatial"], "Spatial-STAR throughput vs sequence length (simulated)")
    return body


def dominated_by(base: dict[str, float], trial: dict[str, float], objectives: list[str]) -> bool:
    """The default is at least as good on every (minimised) objective and better on one."""
    pairs = [(base.get(o, float("nan")), trial.get(o, float("nan"))) for o in objectives]
    return all(b <= t for b, t in pairs) and any(b < t for b, t in pairs)


def dse_section(store: ResultStore, figs: dict[str, Path]) -> str:
    d = store.get("dse", "summary")
    if not d:
        return "<p>No design-space search in this run.</p>"
    base, objs = d["baseline"], d["objectives"]
    rows = [["default mapping", *[base["metrics"].get(o, float("nan")) for o in objs], "as shipped"]]
    better = 0
    for b in d["best"][:5]:
        beaten = dominated_by(base["metrics"], b["objectives"], objs)
        better += not beaten
        label = f"best #{better}" if not beaten else "trial (dominated by the default)"
        rows.append([label, *[b["objectives"].get(o, float("nan")) for o in objs],
                     ", ".join(f"{k}={v}" for k, v in b["point"].items())])
    verdict = (f"{better} of the Pareto-optimal trials shown are not dominated by the default mapping"
               if better else "no trial beats the default mapping on every objective; the default stays")
    head = (f"<p>{d['trials']} TPE trials over {d['grid_size']:,} tilings of STAR ({', '.join(d['parameters'])}); "
            f"{d['feasible']} fit the buffers; {verdict}. Objectives are simulated.</p>")
    body = head + table(["configuration", *[f"{o} {TAG['simulated']}" for o in objs], "choice"], rows,
                        formats=[None, *["sig"] * len(objs), None])
    if "dse" in figs:
        body += figure(figs["dse"], "latency vs DRAM traffic of the tilings tried (Pareto front)")
    return body


def kernels_section(store: ResultStore) -> str:
    rows = store.get("kernels", "rows")
    if not rows or isinstance(rows, dict):
        return f"<p>Not measured in this run: {(rows or {}).get('reason', 'no GPU')}.</p>"
    m = TAG["measured"]
    return table(["tokens", f"SDPA ms {m}", f"star_gpu ms {m}", f"speed-up {m}"],
                 [[r["tokens"], r["sdpa_ms"], r["star_gpu_ms"], r["speedup"]] for r in rows],
                 formats=[",d", "sig", "sig", "sig"])


# ------------------------------------------------------------------------------------------------ outputs
def make_figures(store: ResultStore) -> dict[str, Path]:
    """Every figure the data allows, as PNG and SVG under ``<out>/figures``."""
    out, steps, figs = store.out / "figures", store.data["steps"], {}
    acc = {m: r for m, r in steps.get("accuracy", {}).items() if m != "dense"}
    if acc:
        figs["accuracy"] = figures.plot_accuracy_vs_density(acc, out / "accuracy_vs_density.png")
    enc = {m: r for m, r in steps.get("encoder", {}).items() if m != "dense"}
    if enc:
        figs["encoder"] = figures.plot_encoder(enc, out / "encoder.png")
    hw = hardware_rows(store)
    if hw:
        figs["speedups"] = figures.plot_speedups(hw, out / "speedups.png")
        panels = {r["label"]: (f"{r['workload']} traces on {r['shape']} at {r['seq']} tokens", r["arch"]) for r in hw}
        figs["energy"] = figures.plot_energy_breakdown({r["label"]: r["energy_parts_mj"] for r in hw},
                                                       out / "energy_breakdown.png", "energy by part (simulated)",
                                                       panels)
    calibrated = plot_density_vs_budget(store, out / "density_vs_budget.png")
    if calibrated is not None:
        figs["calibrate"] = calibrated
    claims = store.out / "reproduce" / "claims.png"
    if claims.exists():
        figs["claims"] = claims
    if (store.out / "dse" / "pareto.png").exists():
        figs["dse"] = store.out / "dse" / "pareto.png"
    spatial = steps.get("spatial", {}).get("rows")
    if isinstance(spatial, list) and spatial:
        figs["spatial"] = figures.plot_spatial(spatial, out / "spatial_throughput.png")
    return figs


def write_tables(store: ResultStore) -> list[Path]:
    """CSV tables of every step under ``<out>/tables``."""
    out, steps, paths = store.out / "tables", store.data["steps"], []
    out.mkdir(parents=True, exist_ok=True)
    acc = [{"method": m, **{k: v for k, v in r.items() if not isinstance(v, dict | list)}}
           for m, r in steps.get("accuracy", {}).items()]
    specs = [("accuracy.csv", acc, ["method", "ppl", "density", "ppl_change", "n_tokens", "seconds"]),
             ("encoder.csv", [{"method": m, **r} for m, r in steps.get("encoder", {}).items()],
              ["method", "density", "cosine", "cosine_min", "retrieval_agreement"]),
             ("hardware.csv", list(steps.get("hardware", {}).values()),
              ["arch", "method", "workload", "shape", "seq", "density", "latency_ms", "energy_mj", "power_w",
               "area_mm2", "gops_per_w", "dram_mb"])]
    for name, rows, cols in specs:
        if rows:
            paths.append(write_atomic(out / name, _csv(rows, cols)))
    return paths


def write_report(store: ResultStore) -> Path:
    """Figures, CSV tables and ``report.html``; returns the report's path."""
    figs = make_figures(store)
    write_tables(store)
    sections = [("Summary", summary_section(store)),
                ("How to read this", HOW_TO_READ),
                ("Accuracy on the decoder", accuracy_section(store, figs)),
                ("Accuracy on the encoder", encoder_section(store, figs)),
                ("Accelerators vs GPUs", hardware_section(store, figs)),
                ("The papers' headline claims", reproduce_section(store, figs)),
                ("Spatial-STAR", spatial_section(store, figs)),
                ("Design-space search", dse_section(store, figs)),
                ("GPU kernels", kernels_section(store)),
                ("Equal accuracy: each method calibrated to a loss budget", equal_accuracy_section(store, figs)),
                ("Assumptions behind the hardware numbers",
                 "<ul>" + "".join(f"<li>{a}</li>" for a in ASSUMPTIONS) + "</ul>")]
    meta = {"config": store.data["config"], "environment": store.data["environment"],
            "seconds": store.data["seconds"]}
    return write_atomic(store.out / "report.html", page("sparseattn: sparse attention from model to hardware",
                                                        sections, meta))
