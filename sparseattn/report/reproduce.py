"""``sparseattn reproduce``: every headline claim of the SOFA, STAR and PADE abstracts (and Spatial-STAR's 20.1x),
evaluated as the papers did, each a point and a bracket.

The claims, their paper values and sources, each claim's aggregation rule, the one accounting per design and every
choice a paper leaves unstated are data (``hw/published/claims.yaml``, :mod:`~sparseattn.report.claimsfile`).
:mod:`~sparseattn.report.brackets` evaluates each claim at the point and over each choice's range
(:mod:`~sparseattn.report.claim_rows` adds assumptions and derivations; :func:`claim_rows` gives the typed rows a
report shows). The methods: SOFA / STAR vs the A100 (eager PyTorch, dynamic power,
:mod:`~sparseattn.report.gpu_claims`), vs accelerators (SOFA's Table II arithmetic, :mod:`~sparseattn.report.sota`),
PADE vs the H100 (TensorRT-LLM + FlashAttention-3, prefill and decode, board power), PADE vs Sanger / DOTA / SOFA
(iso-PADE hardware at equal accuracy), Spatial-STAR vs its baseline design on the mesh simulator. Beside the claims,
the simulator's validation against each design's own published figures (:mod:`~sparseattn.report.validation`), and
a tornado chart per paper (:mod:`~sparseattn.report.tornado`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..core.files import write_atomic
from ..hw.result import EnergyItem, SimResult
from .claim import TOLERANCE, Claim, Design, sim
from .claim_rows import ClaimRow, claim_rows, paper_claims
from .gpu_claims import PADE_SET
from .validation import Check, area_blocks_markdown, pade_area_blocks, validation, validation_markdown

PAPERS = ("sofa", "star", "pade")
__all__ = ["PAPERS", "TOLERANCE", "Claim", "ClaimRow", "claim_rows", "claims_json", "claims_markdown",
           "energy_categories", "paper_claims", "reproduce"]


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
        claims += paper_claims(paper)
    if out_dir is not None:
        if progress:
            progress("validation")
        write_outputs(claims, Path(out_dir), time.perf_counter() - start, validation())
    return claims


# ------------------------------------------------------------------------------------------------ outputs
def claims_json(claims: Sequence[Claim], elapsed: float | None = None,
                checks: Sequence[Check] = ()) -> dict[str, Any]:
    rows = []
    for c in claims:
        d = asdict(c)
        d.update(ratio=c.ratio, within_25pct=c.within, in_bracket=c.in_bracket)
        rows.append(d)
    valid = [{**asdict(k), "ratio": k.ratio, "within_25pct": k.within, "independent": k.independent} for k in checks]
    blocks = [asdict(b) for b in pade_area_blocks()] if checks else []
    return {"tolerance": TOLERANCE, "elapsed_s": elapsed, "claims": rows, "validation": valid,
            "pade_area_blocks": blocks}


def claims_table_markdown(claims: Sequence[Claim]) -> str:
    """One table of every claim: paper, our point [low, high], paper in the bracket, point within ±25%."""
    lines = ["| paper | claim | paper value | ours: point [low, high] | paper in bracket | within ±25% "
             "| moved most by |", "|---|---|---:|---:|:-:|:-:|---|"]
    for c in claims:
        lines.append(f"| {c.paper.upper()} | {c.text} | {c.paper_value:g}x | {c.ours:.3g}x [{c.low:.3g}, {c.high:.3g}] "
                     f"| {'yes' if c.in_bracket else 'no'} | {'yes' if c.within else 'no'} | {c.most} |")
    inside, within = sum(bool(c.in_bracket) for c in claims), sum(c.within for c in claims)
    lines += ["", f"Paper value inside our bracket: **{inside} of {len(claims)}**; our point within ±25%: "
              f"**{within} of {len(claims)}**."]
    return "\n".join(lines)


def claims_markdown(claims: Sequence[Claim]) -> str:
    lines = [claims_table_markdown(claims), ""]
    for paper in dict.fromkeys(c.paper for c in claims):
        lines += [f"### {paper.upper()}", ""]
        for c in (c for c in claims if c.paper == paper):
            lines.append(f"- **{c.text}** (paper {c.paper_value:g}x; ours {c.ours:.3g}x [{c.low:.3g}, {c.high:.3g}],"
                         f" {c.aggregate} over the items) — evaluated as: {c.method}. Per item: "
                         + ", ".join(f"{k} {v:.3g}x" for k, v in c.per_item.items()))
            for a in c.assumptions:
                lines.append(f"  - choice: {a}")
            for name, values in c.swings.items():
                lines.append(f"  - {'corners' if name == 'corners' else 'over ' + name}: "
                             + ", ".join(f"{k} → {v:.3g}x" for k, v in values.items()))
            for d in c.derivation:
                lines.append(f"  - derivation: {d}")
        lines.append("")
    return "\n".join(lines)


def write_outputs(claims: Sequence[Claim], out_dir: Path, elapsed: float | None = None,
                  checks: Sequence[Check] = ()) -> dict[str, Path]:
    from .figures import plot_claims, plot_energy_breakdown
    from .tornado import plot_tornado

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "reproduce.json", "markdown": out_dir / "reproduce.md"}
    write_atomic(paths["json"], json.dumps(claims_json(claims, elapsed, checks), indent=2))
    md = "# Paper headline claims: paper vs ours\n\n" + claims_markdown(claims)
    if checks:
        md += "\n## The simulator against each design's published figures\n\n" + validation_markdown(list(checks))
        md += "\n\n" + area_blocks_markdown(pade_area_blocks())
    write_atomic(paths["markdown"], md + "\n")
    paths["claims_png"] = plot_claims(claims, out_dir / "claims.png")
    for paper in dict.fromkeys(c.paper for c in claims):
        paths[f"tornado_{paper}"] = plot_tornado([c for c in claims if c.paper == paper],
                                                 out_dir / f"tornado_{paper}.png",
                                                 f"{paper.upper()}: what each unstated choice does to each claim")
    breakdown = {}
    model, seq = PADE_SET[0]
    for name in ("pade", "sofa", "sanger", "dota", "energon", "spatten", "elsa", "a3"):
        breakdown[name] = energy_categories(sim(Design(name, "iso"), model, seq))
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
