"""``sparseattn reproduce``: every headline claim of the SOFA, STAR and PADE abstracts, paper vs ours.

Each :class:`Claim` is computed by simulating the bundled SmolLM2 traces (``sparseattn/hw/traces``), carried to the
papers' models, on the bundled architectures (``sparseattn/hw/configs``). For each claim we print the paper's
value, ours, their ratio and the assumptions used; where ours is more than 25% away, a **lever analysis** solves
for the value of one named parameter that would reach the paper's number (bisection on a monotone relation), so
the gap is explained by a stated parameter rather than hidden.

Benchmark sets (the papers' per-benchmark lists are not recoverable, so we use their models at the sequence
lengths they state; geometric means over the set):

* SOFA / STAR vs A100: BERT-Base 512, BERT-Large 512, GPT-2 1024, Bloom-1.7B 2048, Llama2-7B 4096;
* SOFA / STAR vs accelerators: Llama-7B attention at 512 tokens (SOFA Table II: 137 GOPs = 4 x 512^2 x 4096 x 32);
* PADE: Llama2-7B, Llama3-8B (GQA), OPT-1.3B, Bloom-1.7B, Qwen-7B at 2048 and ViT-L/16 at 577 tokens.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..hw.binding import peak_formal_ops
from ..hw.normalise import at_node, iso
from ..hw.overrides import with_overrides
from ..hw.replicate import split_heads
from ..hw.result import EnergyItem, SimResult
from ..hw.schema import load_arch
from ..hw.shapes import load_model_shape
from ..hw.simulator import simulate
from ..hw.traces import trace_for, with_density

SOFA_SET = (("bert-base", 512), ("bert-large", 512), ("gpt2", 1024), ("bloom-1.7b", 2048), ("llama2-7b", 4096))
PADE_SET = (
    ("llama2-7b", 2048), ("llama3-8b", 2048), ("opt-1.3b", 2048), ("bloom-1.7b", 2048), ("qwen-7b", 2048),
    ("vit-l16", 577),
)
SOTA_WORKLOAD = ("llama2-7b", 512)
SOTA_BASELINES = ("a3", "elsa", "sanger", "dota", "energon", "spatten")
TOLERANCE = 0.25
# Densities the papers report for their headline regime (used as a variant, with the source):
PAPER_DENSITY = {
    "sofa": (0.074, "SOFA Fig. 18 geomean: 7.4% of attention computation remains at 2% accuracy loss"),
    "star": (0.074, "as SOFA (STAR's own figure is not public)"),
    "pade": (0.25, "PADE section VI: ~75% sparsity at alpha = 0.5"),
}
PAPERS = ("sofa", "star", "pade")


@dataclass
class Lever:
    """The value of one named parameter that would make our number equal the paper's."""

    parameter: str
    current: float
    needed: float | None  # None: not reachable inside the searched range
    searched: tuple[float, float]
    meaning: str

    def text(self) -> str:
        if self.needed is None:
            return (f"{self.parameter} = {self.current:.4g}; no value in [{self.searched[0]:.3g}, "
                    f"{self.searched[1]:.3g}] reaches the paper ({self.meaning})")
        return f"{self.parameter} = {self.current:.4g} -> {self.needed:.4g} would reach it ({self.meaning})"


@dataclass
class Claim:
    paper: str
    id: str
    text: str
    paper_value: float
    ours: float
    assumptions: list[str]
    per_item: dict[str, float] = field(default_factory=dict)
    levers: list[Lever] = field(default_factory=list)
    variants: dict[str, float] = field(default_factory=dict)  # our value under a named alternative assumption

    @property
    def ratio(self) -> float:
        return self.ours / self.paper_value

    @property
    def within(self) -> bool:
        return abs(self.ratio - 1) <= TOLERANCE


# ------------------------------------------------------------------------------------------------ simulation
def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


@dataclass(frozen=True)
class Design:
    """A design as simulated: a bundled architecture, its setting (``published``, ``iso`` for iso-PADE, ``28nm``),
    dotted-path overrides (:func:`~sparseattn.hw.overrides.with_overrides`) and identical copies splitting the
    heads (:func:`~sparseattn.hw.replicate.split_heads`). Hashable, so results cache across claims and levers."""

    name: str
    mode: str = "published"
    overrides: tuple[tuple[str, Any], ...] = ()
    copies: float = 1.0


def _build(design: Design) -> Any:
    arch = load_arch(design.name)
    if design.overrides:
        arch = with_overrides(arch, dict(design.overrides))
    if design.mode == "iso":
        arch = iso(arch)
    elif design.mode == "28nm":
        arch = at_node(arch, 28)
    return arch


@lru_cache(maxsize=4096)
def _sim(design: Design, model: str, seq: int, density: float | None = None) -> SimResult:
    """``design`` on ``model`` at ``seq`` tokens, running its own bundled trace (rescaled to ``density``)."""
    if design.copies != 1:
        return split_heads(_sim(replace(design, copies=1.0), model, seq, density), design.copies)
    arch = _build(design)
    shape = load_model_shape(model).shape(seq)
    trace = trace_for(arch, shape.causal)
    if density is not None:
        trace = with_density(trace, density)
    return simulate(arch, trace, shape)


def _solve(fn: Callable[[float], float], target: float, lo: float, hi: float, steps: int = 16) -> float | None:
    """``x`` in ``[lo, hi]`` with ``fn(x) == target`` for monotone ``fn`` (bisection in log space)."""
    f_lo, f_hi = fn(lo) - target, fn(hi) - target
    if f_lo == 0:
        return lo
    if f_lo * f_hi > 0:
        return None
    a, b = math.log(lo), math.log(hi)
    for _ in range(steps):
        mid = (a + b) / 2
        f_mid = fn(math.exp(mid)) - target
        if (f_mid > 0) == (f_lo > 0):
            a, f_lo = mid, f_mid
        else:
            b = mid
    return math.exp((a + b) / 2)


# ------------------------------------------------------------------------------------------------ claims
def _vs_gpu(acc: str, gpu: str, workloads: Sequence[tuple[str, int]], metric: str,
            gpu_over: tuple = (), copies: float = 1.0, density: float | None = None) -> dict[str, float]:
    """GPU / accelerator ratio per workload; ``copies`` identical accelerators split the heads
    (:func:`~sparseattn.hw.replicate.split_heads`)."""
    out = {}
    for model, seq in workloads:
        a = _sim(Design(acc, copies=copies), model, seq, density)
        g = _sim(Design(gpu, overrides=gpu_over), model, seq)
        if metric == "speed":
            out[f"{model}@{seq}"] = g.latency_s / a.latency_s
        else:
            out[f"{model}@{seq}"] = g.energy_j / (a.energy_j if metric == "energy" else a.on_chip_energy_j())
    return out


def _gpu_assumptions(acc: str, gpu: str, workloads: Sequence[tuple[str, int]]) -> list[str]:
    g_arch = load_arch(gpu)
    a_trace = trace_for(load_arch(acc), causal=True)
    return [
        f"benchmark set {', '.join(f'{m}@{s}' for m, s in workloads)} (geometric mean)",
        f"{acc} as published; trace {a_trace.meta.get('method')} {a_trace.meta.get('params')} captured on SmolLM2 "
        f"(density {a_trace.density:.3f}), scaled to each model",
        f"{gpu}: dense bf16 roofline, {g_arch.compute_efficiency:.0%} of {g_arch.peak_tflops['bf16']:g} TFLOP/s, "
        f"{g_arch.board_power_w:g} W board power, batch 1, prefill only",
    ]


def _per_kv_head_speed(acc: str, gpu: str, workloads: Sequence[tuple[str, int]]) -> tuple[str, float]:
    """The speed-up with one copy of ``acc`` per KV head of each model (the most head splitting allows)."""
    heads = [load_model_shape(m).kv_heads for m, _ in workloads]
    ratios = [_sim(Design(gpu), m, s).latency_s / _sim(Design(acc, copies=float(h)), m, s).latency_s
              for (m, s), h in zip(workloads, heads, strict=True)]
    return f"{acc} replicated once per KV head ({min(heads)}-{max(heads)} copies splitting the heads)", _geomean(ratios)


def _gpu_claims(paper: str, acc: str, gpu: str, workloads, speed: float, energy: float) -> list[Claim]:
    g_arch = load_arch(gpu)

    def ratio(metric: str, gpu_over: tuple = (), copies: float = 1.0, density: float | None = None) -> float:
        return _geomean(list(_vs_gpu(acc, gpu, workloads, metric, gpu_over, copies, density).values()))

    def gpu_lever(metric: str, value: float, name: str, lo: float, hi: float, meaning: str) -> Lever:
        solved = _solve(lambda x: ratio(metric, gpu_over=((name, x),)), value, lo, hi)
        return Lever(f"{gpu}.{name}", getattr(g_arch, name), solved, (lo, hi), meaning)

    claims = []
    for metric, value, what in (("speed", speed, "speed-up"), ("energy", energy, "energy efficiency")):
        per = _vs_gpu(acc, gpu, workloads, metric)
        c = Claim(paper, f"{paper}_{metric}_vs_{gpu}", f"{what} vs {gpu.upper()}", value, _geomean(list(per.values())),
                  _gpu_assumptions(acc, gpu, workloads), per)
        if metric == "energy":
            c.variants["accelerator on-chip energy only (DRAM excluded)"] = ratio("energy_core")
        else:
            peak_acc = peak_formal_ops(_build(Design(acc)))
            peak_gpu = g_arch.peak_tflops["bf16"] * 1e12
            c.variants[f"per unit of peak compute (GPU {peak_gpu / 1e12:g} TFLOP/s vs {acc} {peak_acc / 1e12:.3g} "
                       f"TOPS on its Q.K/P.V units)"] = c.ours * peak_gpu / peak_acc
            name, v = _per_kv_head_speed(acc, gpu, workloads)
            c.variants[name] = v
        density, source = PAPER_DENSITY[paper]
        c.variants[f"{acc} at the paper's density {density} ({source})"] = ratio(metric, density=density)
        if c.within:
            claims.append(c)
            continue
        c.levers.append(gpu_lever(metric, value, "compute_efficiency", 1e-5, 1.0,
                                  "the fraction of its peak the GPU would have to attain"))
        if metric == "speed":
            most = float(min(load_model_shape(m).kv_heads for m, _ in workloads))
            c.levers.append(Lever(f"{acc} copies", 1.0, _solve(lambda x: ratio("speed", copies=x), value, 1.0, most),
                                  (1.0, most), "identical accelerators (PEs, SRAM, DRAM bandwidth) splitting the "
                                  "heads of every layer, at most one per KV head"))
        else:
            c.levers.append(gpu_lever(metric, value, "board_power_w", 1.0, 1e5,
                                      "GPU power charged while it runs attention"))
        claims.append(c)
    return claims


def _vs_accelerators(acc: str, baselines: Sequence[str], metric: str, mode: str,
                     workloads: Sequence[tuple[str, int]], density: float | None = None) -> dict[str, float]:
    out = {}
    for b in baselines:
        ratios = []
        for model, seq in workloads:
            a = _sim(Design(acc, mode), model, seq, density)
            r = _sim(Design(b, mode), model, seq)
            if metric == "speed":
                ratios.append(r.latency_s / a.latency_s)
            elif metric == "energy":
                ratios.append(r.energy_j / a.energy_j)
            elif metric == "energy_core":
                ratios.append(r.on_chip_energy_j() / a.on_chip_energy_j())
            else:  # area efficiency with published areas (as the papers' tables do)
                area_a = load_arch(acc).published.area_mm2 or a.total_area_mm2
                area_b = load_arch(b).published.area_mm2 or r.total_area_mm2
                ratios.append((a.effective_gops / area_a) / (r.effective_gops / area_b))
        out[b] = _geomean(ratios)
    return out


def _acc_claim(paper: str, cid: str, text: str, value: float, acc: str, baselines: Sequence[str], metric: str,
               mode: str, workloads: Sequence[tuple[str, int]], reduce: str, assumptions: list[str]) -> Claim:
    agg = (lambda d: sum(d.values()) / len(d)) if reduce == "mean" else (lambda d: max(d.values()))
    per = _vs_accelerators(acc, baselines, metric, mode, workloads)
    c = Claim(paper, cid, text, value, agg(per), assumptions, per)
    if metric == "energy":
        c.variants["on-chip energy only (DRAM excluded)"] = agg(
            _vs_accelerators(acc, baselines, "energy_core", mode, workloads))
    if not c.within:
        trace = trace_for(load_arch(acc), load_model_shape(workloads[0][0]).causal)
        c.levers.append(Lever(
            f"{acc} trace density", trace.density,
            _solve(lambda x: agg(_vs_accelerators(acc, baselines, metric, mode, workloads, x)), value, 0.003, 1.0,
                   steps=12),
            (0.003, 1.0), f"kept fraction of {acc}'s attention pairs, prediction work unchanged"))
    return c


def sofa_claims(paper: str = "sofa") -> list[Claim]:
    """SOFA: 9.5x / 71.5x vs A100; 15.8x energy, 10.3x area efficiency, 9.3x speed-up (mean of 8 accelerators).
    STAR: 9.2x / 71.2x vs A100; up to 16.1x energy and 27.1x area efficiency vs SOTA accelerators."""
    star = paper == "star"
    acc = "star" if star else "sofa"
    claims = _gpu_claims(paper, acc, "a100", SOFA_SET, 9.2 if star else 9.5, 71.2 if star else 71.5)
    sota = [
        f"Llama-7B attention at {SOTA_WORKLOAD[1]} tokens (SOFA Table II's workload)",
        f"baselines modelled: {', '.join(SOTA_BASELINES)} (DTATrans and FACT have no method here)",
        "energy at 28 nm for every design (SOFA Table II normalises to 28 nm); area = published chip area",
        "SOFA's Table II scales every design to 128 multipliers at 1 GHz for latency; we simulate them as published",
    ]
    reduce = "max" if star else "mean"
    label = "up to" if star else "mean over accelerators"
    claims.append(_acc_claim(paper, f"{paper}_energy_vs_sota", f"energy efficiency vs SOTA accelerators ({label})",
                             16.1 if star else 15.8, acc, SOTA_BASELINES, "energy", "28nm", (SOTA_WORKLOAD,), reduce,
                             sota))
    claims.append(_acc_claim(paper, f"{paper}_area_vs_sota", f"area efficiency vs SOTA accelerators ({label})",
                             27.1 if star else 10.3, acc, SOTA_BASELINES, "area", "published", (SOTA_WORKLOAD,),
                             reduce, sota))
    if not star:
        claims.append(_acc_claim(paper, "sofa_speed_vs_sota", "speed-up vs SOTA accelerators (mean)", 9.3, acc,
                                 SOTA_BASELINES, "speed", "published", (SOTA_WORKLOAD,), "mean", sota))
    return claims


def pade_claims() -> list[Claim]:
    """PADE: 7.43x speed-up and 31.1x energy efficiency vs H100; 5.1x / 4.3x / 3.4x energy saving vs
    Sanger / DOTA / SOFA at iso-PADE settings."""
    claims = _gpu_claims("pade", "pade", "h100", PADE_SET, 7.43, 31.1)
    iso_notes = [
        f"benchmark set {', '.join(f'{m}@{s}' for m, s in PADE_SET)} (geometric mean)",
        "every design iso-PADE: 28 nm, 800 MHz, 352 KB SRAM, 256 GB/s HBM2, PE-array area equal to PADE's",
        "each design runs its own method's SmolLM2 trace, scaled to each model",
    ]
    for base, value in (("sanger", 5.1), ("dota", 4.3), ("sofa", 3.4)):
        claims.append(_acc_claim("pade", f"pade_energy_vs_{base}", f"energy saving vs {base} (iso-PADE)", value,
                                 "pade", (base,), "energy", "iso", PADE_SET, "mean", iso_notes))
    return claims


# ------------------------------------------------------------------------------------------------ outputs
def reproduce(papers: Sequence[str] = PAPERS, out_dir: Path | None = None,
              progress: Callable[[str], None] | None = None) -> list[Claim]:
    """Compute the claims of ``papers``; write JSON, markdown and figures into ``out_dir`` when given."""
    bad = [p for p in papers if p not in PAPERS]
    if bad:
        raise ValueError(f"unknown paper(s) {bad}; choose from {', '.join(PAPERS)} or all")
    start = time.perf_counter()
    claims: list[Claim] = []
    for paper in papers:
        if progress:
            progress(paper)
        claims += pade_claims() if paper == "pade" else sofa_claims(paper)
    elapsed = time.perf_counter() - start
    if out_dir is not None:
        write_outputs(claims, Path(out_dir), elapsed)
    return claims


def claims_json(claims: Sequence[Claim], elapsed: float | None = None) -> dict[str, Any]:
    rows = []
    for c in claims:
        d = asdict(c)
        d.update(ratio=c.ratio, within_25pct=c.within, levers=[{**asdict(lv), "text": lv.text()} for lv in c.levers])
        rows.append(d)
    return {"tolerance": TOLERANCE, "elapsed_s": elapsed, "claims": rows}


def claims_markdown(claims: Sequence[Claim]) -> str:
    lines = []
    for paper in dict.fromkeys(c.paper for c in claims):
        lines += [f"### {paper.upper()}", "", "| claim | paper | ours | ours / paper | within ±25% |",
                  "|---|---:|---:|---:|:-:|"]
        mine = [c for c in claims if c.paper == paper]
        for c in mine:
            lines.append(f"| {c.text} | {c.paper_value:g}x | {c.ours:.3g}x | {c.ratio:.3g} | "
                         f"{'yes' if c.within else 'no'} |")
        lines.append("")
        for c in mine:
            lines.append(f"- **{c.text}** — per item: "
                         + ", ".join(f"{k} {v:.3g}x" for k, v in c.per_item.items()))
            for name, v in c.variants.items():
                lines.append(f"  - variant: {name}: {v:.3g}x (ours / paper {v / c.paper_value:.3g})")
            for lv in c.levers:
                lines.append(f"  - lever: {lv.text()}")
        lines += ["", "Assumptions: " + "; ".join(dict.fromkeys(a for c in mine for a in c.assumptions)), ""]
    return "\n".join(lines)


def write_outputs(claims: Sequence[Claim], out_dir: Path, elapsed: float | None = None) -> dict[str, Path]:
    from .figures import plot_claims, plot_energy_breakdown

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "reproduce.json", "markdown": out_dir / "reproduce.md"}
    paths["json"].write_text(json.dumps(claims_json(claims, elapsed), indent=2))
    paths["markdown"].write_text("# Paper headline claims: paper vs ours\n\n" + claims_markdown(claims))
    paths["claims_png"] = plot_claims(claims, out_dir / "claims.png")
    breakdown = {}
    model, seq = PADE_SET[0]
    for name in ("pade", "sofa", "sanger", "dota", "energon", "spatten", "elsa", "a3"):
        breakdown[name] = energy_categories(_sim(Design(name, "iso"), model, seq))
    paths["energy_png"] = plot_energy_breakdown(breakdown, out_dir / "energy_breakdown.png",
                                                f"energy by part, {model} at {seq} tokens, iso-PADE")
    return paths


def energy_category(item: EnergyItem) -> str:
    """The part of a design an energy record belongs to in the breakdown figure."""
    if item.kind in ("dram", "sram"):
        return item.kind.upper()
    if item.kind != "compute":
        return "static"
    return "prediction + selection" if item.stage in ("predict", "select", "quantize") else "formal compute"


def energy_categories(r: SimResult) -> dict[str, float]:
    """Energy (mJ) of a result grouped into prediction & selection, formal compute, SRAM, DRAM, static."""
    groups = dict.fromkeys(("prediction + selection", "formal compute", "SRAM", "DRAM", "static"), 0.0)
    for part, pj in r.energy_by(energy_category).items():
        groups[part] += pj * 1e-9
    return groups
