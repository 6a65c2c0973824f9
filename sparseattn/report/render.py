"""The main job's outputs from its typed results (:class:`~sparseattn.report.rows.RunView`): figures (PNG + SVG),
CSV tables and the sections of ``report.html``."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from ..core.files import write_atomic
from . import figures
from .equal_accuracy import plot_density_vs_budget
from .html import TAG, Markup, figure, page, significant, table
from .rows import ClaimRow, HardwareComparison, NotRun, RunView, VsGpu
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
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.2f}%"


def accuracy_section(view: RunView, figs: dict[str, Path]) -> str:
    acc = view.accuracy()
    dense = acc.get("dense")
    if not dense:
        return "<p>The accuracy step has no result.</p>"
    rows = []
    for m, r in acc.items():
        if m == "dense":
            continue
        fid = list((r.fidelity or {}).values())
        mass = sum(f.recall for f in fid) / len(fid) if fid else float("nan")
        err = sum(f.output_rel_error for f in fid) / len(fid) if fid else float("nan")
        dens = list(r.layer_density.values()) or [r.density]
        rows.append([m, r.density, f"{min(dens):.3f}–{max(dens):.3f}", r.ppl, _pct(r.ppl_change),
                     _pct(r.oracle.ppl_change if r.oracle else None), mass, err])
    m = TAG["measured"]
    head = (f"<p>{view.config.model} on {dense.text}, {dense.n_tokens} tokens, every layer sparse; dense "
            f"perplexity {dense.ppl:.3f} {m}.</p>")
    t = table(["method (defaults)", f"density {m}", f"per-layer density (min–max) {m}", f"perplexity {m}",
               f"vs dense {m}", f"top-k oracle at that density, vs dense {m}",
               f"kept softmax mass (fidelity layers) {m}", f"output rel. error {m}"], rows,
              formats=[None, ".3f", None, ".3f", None, None, ".3f", ".3f"])
    return head + t + (figure(figs["accuracy"], "perplexity change vs density; rings: the top-k oracle at the "
                                                "method's density") if "accuracy" in figs else "")


def encoder_section(view: RunView, figs: dict[str, Path]) -> str:
    enc = view.encoder()
    if not enc:
        return "<p>No encoder in this run.</p>"
    rows = [[m, r.density, r.cosine, r.cosine_min, r.retrieval_agreement] for m, r in enc.items() if m != "dense"]
    first = next(iter(enc.values()))
    m = TAG["measured"]
    head = (f"<p>{view.config.encoder}: {first.n_passages} passages of {first.n_tokens} tokens "
            f"({encoder_passages(view)}), every layer sparse (bidirectional).</p>")
    return head + table(["method", f"density {m}", f"cosine to dense (mean) {m}", f"cosine, worst passage {m}",
                         f"retrieval agreement {m}"], rows, formats=[None, ".3f", ".4f", ".4f", ".3f"]) + (
        figure(figs["encoder"], "encoder embeddings vs density") if "encoder" in figs else "")


def encoder_passages(view: RunView) -> str:
    """Which texts the encoder's passages came from (the decoder's text when the run was given a file)."""
    dense = view.encoder().get("dense")
    texts = dense.texts if dense else None
    where = "from " + ", ".join(texts) if texts else "from the bundled texts"
    return where + (f"; {dense.texts_note}" if dense and dense.texts_note else "")


def hardware_rows(view: RunView) -> list[HardwareComparison]:
    """Accelerator rows with their speed-up and energy efficiency over each GPU on the same workload."""
    hw = view.hardware()
    gpus = {k.split("@")[0] for k, r in hw.items() if r.method == "dense" and r.arch in view.config.gpus}
    out = []
    for unit, r in hw.items():
        if r.arch in gpus:
            continue
        vs = {}
        for g in sorted(gpus):
            ref = hw.get(f"{g}@{r.workload}")
            if ref:
                vs[g] = VsGpu(speedup=ref.latency_ms / r.latency_ms, energy=ref.energy_mj / r.energy_mj)
        out.append(HardwareComparison(row=r, unit=unit, label=f"{r.arch} ({r.workload})", vs=vs))
    return out


def _vs(h: HardwareComparison, gpu: str, what: str) -> float:
    v = h.vs.get(gpu)
    return float("nan") if v is None else getattr(v, what)


def hardware_section(view: RunView, figs: dict[str, Path]) -> str:
    rows = hardware_rows(view)
    if not rows:
        return "<p>The hardware step has no result.</p>"
    gpus = sorted({g for h in rows for g in h.vs})
    cells = [[h.label, f"{h.row.shape} @ {h.row.seq}", h.row.density, h.row.latency_ms, h.row.energy_mj,
              h.row.power_w, h.row.area_mm2, h.row.gops_per_w, *[_vs(h, g, "speedup") for g in gpus],
              *[_vs(h, g, "energy") for g in gpus]] for h in rows]
    sim, m = TAG["simulated"], TAG["measured"]
    headers = ["design (trace)", "workload (shape @ tokens)", f"density of the trace {m}", f"latency ms {sim}",
               f"energy mJ {sim}", f"power W {sim}", f"area mm² {sim}", f"GOPS/W {sim}",
               *[f"speed-up vs {g.upper()} {sim}" for g in gpus], *[f"energy eff. vs {g.upper()} {sim}" for g in gpus]]
    formats = [None, None, ".3f", "sig", "sig", "sig", "sig", "sig", *["sig"] * (2 * len(gpus))]
    scaled = rows[0].row.scaled_from
    note = (f"<p class='note'>Traces captured on this run's models (decoder shape {scaled.heads} heads x "
            f"{scaled.q_len} tokens x {scaled.layers} layers) and carried to the workload shapes; GPUs run "
            "dense attention of the same shape.</p>")
    body = note + gpu_reconciliation(view) + table(headers, cells, formats=formats)
    for key, cap in (("speedups", "speed-up and energy efficiency over the GPUs"),
                     ("energy", "energy by part (prediction + selection, formal compute, SRAM, DRAM, static)")):
        if key in figs:
            body += figure(figs[key], cap)
    return body


def reproduce_section(view: RunView, figs: dict[str, Path]) -> str:
    claims = view.claims()
    if not claims:
        return claims_verdict(view)
    s, q = TAG["simulated"], TAG["quoted"]
    rows = [[c.paper.upper(), Markup(f'<a href="#{claim_anchor(c)}">{html.escape(c.text)}</a>'),
             c.paper_value, c.ours, c.ratio,
             Markup('<span class="yes">yes</span>' if c.within_25pct else '<span class="no">no</span>')]
            for c in claims]
    t = table(["paper", "claim", f"paper {q}", f"ours {s}", f"ours / paper {s}", "within ±25%"], rows,
              formats=[None, None, "sig", "sig", "sig", None])
    note = ("<p class='note'>Each claim is evaluated by its paper's stated method (SOFA Table II arithmetic on "
            "published rows, eager PyTorch on the A100 with dynamic power, TensorRT-LLM prefill + decode on the "
            "H100, iso-PADE hardware at equal accuracy, or at equal density where the label says so); each claim "
            "links to its derivation below.</p>")
    body = note + gpu_reconciliation(view) + t + (
        figure(figs["claims"], "the papers' headline claims, paper vs ours") if "claims" in figs else "")
    done = view.reproduce()
    checks = [c for c in (done.validation if done else []) if c.design in ("sofa", "pade")]
    if checks:
        body += "<p>The simulator against SOFA's and PADE's own published figures:</p>" + table(
            ["design", "figure", f"published {q}", f"ours {s}", f"ours / published {s}", "what is missing"],
            [[c.design.upper(), c.figure, c.published, c.ours, c.ratio, c.note] for c in checks],
            formats=[None, None, "sig", "sig", "sig", None])
    return body + "<h3>How each claim was evaluated</h3>" + "".join(claim_derivation(c) for c in claims)


def claim_derivation(c: ClaimRow) -> str:
    """One claim's evaluation: the method, per-item values and derivation (an anchor target)."""
    s = TAG["simulated"]
    items = [f"Evaluated as: {html.escape(c.method)}."]
    if c.per_item:
        items.append("Per item " + s + ": " + ", ".join(f"{html.escape(k)} {significant(v)}x"
                                                        for k, v in c.per_item.items()) + ".")
    if c.check is not None:
        items.append(f"Check: the paper's own row through the same arithmetic gives {significant(c.check)}x "
                     f"{TAG['quoted']}.")
    items += [f"Derivation: {html.escape(d)}" for d in c.derivation]
    verdict = "within ±25%" if c.within_25pct else "misses"
    return (f'<div id="{claim_anchor(c)}"><h4>{c.paper.upper()}: {html.escape(c.text)} — paper '
            f"{significant(c.paper_value)}x {TAG['quoted']}, ours {significant(c.ours)}x {s}, {verdict}</h4><ul>"
            + "".join(f"<li>{i}</li>" for i in items) + "</ul></div>")


def spatial_section(view: RunView, figs: dict[str, Path]) -> str:
    rows = view.spatial()
    if not rows or isinstance(rows, NotRun):
        why = rows.reason if isinstance(rows, NotRun) else "the Spatial-STAR sweep was switched off"
        return f"<p>Not in this run: {why}.</p>"
    cells = [[r.design, r.arch, r.seq, r.dataflow, r.tokens_per_s, 1e3 * r.latency_s, r.mean_core_utilisation,
              r.bottleneck] for r in rows]
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


def dse_section(view: RunView, figs: dict[str, Path]) -> str:
    d = view.dse()
    if not d:
        return "<p>No design-space search in this run.</p>"
    base, objs = d.baseline.metrics if d.baseline else {}, d.objectives
    rows = [["default mapping", *[base.get(o, float("nan")) for o in objs], "as shipped"]]
    better = 0
    for b in d.best[:5]:
        beaten = dominated_by(base, b.objectives or {}, objs)
        better += not beaten
        label = f"best #{better}" if not beaten else "trial (dominated by the default)"
        rows.append([label, *[(b.objectives or {}).get(o, float("nan")) for o in objs],
                     ", ".join(f"{k}={v}" for k, v in b.point.items())])
    verdict = (f"{better} of the Pareto-optimal trials shown are not dominated by the default mapping"
               if better else "no trial beats the default mapping on every objective; the default stays")
    head = (f"<p>{d.trials} TPE trials over {d.grid_size:,} tilings of STAR ({', '.join(d.parameters)}); "
            f"{d.feasible} fit the buffers; {verdict}. Objectives are simulated.</p>")
    body = head + table(["configuration", *[f"{o} {TAG['simulated']}" for o in objs], "choice"], rows,
                        formats=[None, *["sig"] * len(objs), None])
    if "dse" in figs:
        body += figure(figs["dse"], "latency vs DRAM traffic of the tilings tried (Pareto front)")
    return body


def kernels_section(view: RunView) -> str:
    rows = view.kernels()
    if not rows or isinstance(rows, NotRun):
        return f"<p>Not measured in this run: {rows.reason if isinstance(rows, NotRun) else 'no GPU'}.</p>"
    m = TAG["measured"]
    return table(["tokens", f"SDPA ms {m}", f"star_gpu ms {m}", f"speed-up {m}"],
                 [[r.tokens, r.sdpa_ms, r.star_gpu_ms, r.speedup] for r in rows],
                 formats=[",d", "sig", "sig", "sig"])


# ------------------------------------------------------------------------------------------------ outputs
def make_figures(view: RunView) -> dict[str, Path]:
    """Every figure the data allows, as PNG and SVG under ``<out>/figures``."""
    out, figs = view.out / "figures", {}
    acc = {m: r.model_dump() for m, r in view.accuracy().items() if m != "dense"}
    if acc:
        figs["accuracy"] = figures.plot_accuracy_vs_density(acc, out / "accuracy_vs_density.png")
    enc = {m: r.model_dump() for m, r in view.encoder().items() if m != "dense"}
    if enc:
        figs["encoder"] = figures.plot_encoder(enc, out / "encoder.png")
    hw = hardware_rows(view)
    if hw:
        figs["speedups"] = figures.plot_speedups([{"label": h.label, "vs": {g: v.model_dump() for g, v in h.vs.items()}}
                                                  for h in hw], out / "speedups.png")
        panels = {h.label: (f"{h.row.workload} traces on {h.row.shape} at {h.row.seq} tokens", h.row.arch) for h in hw}
        figs["energy"] = figures.plot_energy_breakdown({h.label: h.row.energy_parts_mj for h in hw},
                                                       out / "energy_breakdown.png", "energy by part (simulated)",
                                                       panels)
    calibrated = plot_density_vs_budget(view, out / "density_vs_budget.png")
    if calibrated is not None:
        figs["calibrate"] = calibrated
    for key, path in (("claims", view.out / "reproduce" / "claims.png"), ("dse", view.out / "dse" / "pareto.png")):
        if path.exists():
            figs[key] = path
    spatial = view.spatial()
    if isinstance(spatial, list) and spatial:
        figs["spatial"] = figures.plot_spatial([r.model_dump() for r in spatial], out / "spatial_throughput.png")
    return figs


ACCURACY_COLUMNS = ["method", "ppl", "density", "ppl_change", "n_tokens", "seconds"]
ENCODER_COLUMNS = ["method", "density", "cosine", "cosine_min", "retrieval_agreement"]
HARDWARE_COLUMNS = ["arch", "method", "workload", "shape", "seq", "density", "latency_ms", "energy_mj", "power_w",
                    "area_mm2", "gops_per_w", "dram_mb"]


def write_tables(view: RunView) -> list[Path]:
    """CSV tables of the accuracy, encoder and hardware results under ``<out>/tables``."""
    out, paths = view.out / "tables", []
    out.mkdir(parents=True, exist_ok=True)
    specs = [("accuracy.csv", [{**r.model_dump(exclude_unset=True), "method": m} for m, r in view.accuracy().items()],
              ACCURACY_COLUMNS),
             ("encoder.csv", [{**r.model_dump(), "method": m} for m, r in view.encoder().items()], ENCODER_COLUMNS),
             ("hardware.csv", [r.model_dump() for r in view.hardware().values()], HARDWARE_COLUMNS)]
    for name, rows, cols in specs:
        if rows:
            paths.append(write_atomic(out / name, _csv(rows, cols)))
    return paths


def write_page(view: RunView, step_sections: list[tuple[str, str]]) -> Path:
    """``report.html``: the summary, how to read it, each step's section (title, HTML) in the job's order and the
    assumptions; returns its path."""
    sections = [("Summary", summary_section(view)), ("How to read this", HOW_TO_READ), *step_sections,
                ("Assumptions behind the hardware numbers",
                 "<ul>" + "".join(f"<li>{a}</li>" for a in ASSUMPTIONS) + "</ul>")]
    return write_atomic(view.out / "report.html", page("sparseattn: sparse attention from model to hardware",
                                                       sections, dict(view.meta)))
