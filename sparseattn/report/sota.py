"""SOFA and STAR against state-of-the-art accelerators, by SOFA's own Table II arithmetic (issue 12, section 1).

SOFA's 15.8x / 10.3x / 9.3x (and STAR's "up to" 16.1x / 27.1x) are arithmetic on published figures
(:mod:`sparseattn.hw.tableii`). Each claim here has two rows:

* **check** -- the paper's SOFA row through that arithmetic (15.78 / 10.26 / 9.36; for STAR, whose own table is not
  public, the maxima of SOFA's row): a check of our arithmetic, not a reproduction;
* **ours** -- our simulated SOFA (STAR) on the table's workload, Llama-7B attention at 512 tokens, normalised as the
  table normalises every row (:func:`simulated_row`: operations on the full ``S^2``, core power to 28 nm / 1.0 V,
  areas ``x (28/node)^2``, latency at 128 multipliers and 1 GHz), through the same arithmetic against the published
  baseline rows (FACT and DTATrans included: they enter through their published rows).

Variants: every baseline simulated instead of published (the comparison before issue 12, now normalised by the
same rules), our row at the paper's density, and SOFA with on-demand K/V generation (the projection in scope).
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.shape import Shape
from ..hw.result import SimResult
from ..hw.schema import UnitKind
from ..hw.shapes import load_model_shape
from ..hw.tableii import Measured, Metric, TableRow, implied_vdd, load_table, per_baseline, row_from_simulation
from ..hw.technology import load_technology
from .claim import Claim, Design, Lever, build, design_trace, sim, solve

TABLE_WORKLOAD = ("llama2-7b", 512)  # SOFA Table II: 137 GOPs = 4 x 512^2 x 4096 x 32
SIM_BASELINES = ("a3", "elsa", "sanger", "dota", "energon", "spatten")
PAPER_DENSITY = 0.074  # SOFA Fig. 18 geomean: 7.4% of attention computation remains at 2% accuracy loss
TEXT = {"energy": "energy efficiency vs SOTA accelerators", "area": "area efficiency vs SOTA accelerators",
        "speed": "speed-up vs SOTA accelerators"}
VALUES = {"sofa": {"energy": 15.8, "area": 10.3, "speed": 9.3}, "star": {"energy": 16.1, "area": 27.1}}


def table_ops(shape: Shape) -> float:
    """Operations Table II counts for attention: ``4 x q_len x k_len x head_dim`` per head, the full ``S^2``
    whatever the mask (137 GOPs for Llama-7B at 512 tokens)."""
    return 4.0 * shape.q_len * shape.k_len * shape.head_dim * shape.heads * shape.layers * shape.batch


def multipliers(arch) -> int:
    """Multipliers of a design for the latency column's scaling: PEs of its MAC and systolic units of 8 bits or
    more (SOFA: 128x4 KV-generation + 2 x 128x2 SU-FA = 1024, the count its 45 ms implies)."""
    kinds = (UnitKind.MAC_ARRAY, UnitKind.SYSTOLIC_ARRAY)
    return sum(u.count for u in arch.units if u.kind in kinds and u.bits >= 8) or 1


def measured_of(design: Design, r: SimResult) -> Measured:
    arch = build(design)
    io = sum(e.pj for e in r.energy if e.kind == "dram") * 1e-12
    shape = Shape(**r.shape)
    return Measured(name=design.name, ops=table_ops(shape), latency_s=r.latency_s, core_energy_j=r.energy_j - io,
                    io_energy_j=io, area_mm2=r.total_area_mm2, node_nm=arch.node_nm, vdd=table_vdd(design.name, arch),
                    clock_mhz=arch.clock_mhz, multipliers=multipliers(arch))


def table_vdd(name: str, arch) -> float:
    """The supply voltage Table II's power rule applies to a design's row: the one its published row implies
    (:func:`~sparseattn.hw.tableii.implied_vdd`; SOFA 1.0 V: 24,423 GOPS / 0.95 W = 25,708 GOPS/W, no factor), so
    our row and the paper's are normalised alike; STAR is SOFA's successor on the same node and takes SOFA's. A
    design without a row takes its own (or the technology table's) voltage."""
    table = load_table()
    rows = {r.name for r in table.rows}
    key = "sofa" if name == "star" else name
    if key in rows:
        return round(implied_vdd(table.row(key), table), 2)  # to 10 mV: the rows print 4-5 digits
    return arch.vdd or load_technology().vdd_of(arch.node_nm)


def simulated_row(name: str, model: str = TABLE_WORKLOAD[0], seq: int = TABLE_WORKLOAD[1],
                  density: float | None = None, design: Design | None = None) -> TableRow:
    """A Table II row of our simulation of ``name`` on ``model`` at ``seq`` tokens, normalised as the table's."""
    design = design or Design(name)
    r = sim(design, model, seq, density)
    return row_from_simulation(measured_of(design, r), source=f"simulated on {model} at {seq} tokens")


def _aggregate(star: bool) -> Callable[[dict[str, float]], float]:
    return (lambda d: max(d.values())) if star else (lambda d: sum(d.values()) / len(d))


def _energy_derivation(ours: TableRow, design: Design) -> list[str]:
    """Why our device efficiency differs: the IO traffic the published IO power implies against ours."""
    model, seq = TABLE_WORKLOAD
    shape = load_model_shape(model).shape(seq)
    paper = load_table().row("sofa")
    seconds = paper.latency_ms * 1e-3 * paper.clock_mhz / 1000 * 128 / paper.multipliers  # SOFA's own run
    implied = paper.io_w / (2.45 / 59.8e9) * seconds  # Table IV: 2.45 W of IO at 59.8 GB/s
    qo = 2 * shape.layers * shape.heads * seq * shape.head_dim * 2
    x = shape.layers * seq * shape.heads * shape.head_dim  # tokens at 8 bits, once per layer
    r = sim(design, model, seq)
    ours_mb = sum(r.dram_bytes.values()) / 1e6
    return [
        f"device GOPS/W = GOPS / (core + IO): ours {ours.gops:.0f} / ({ours.core_w:.3g} W core x (1/0.9 V)^2 + "
        f"{ours.io_w:.3g} W IO) vs the paper's {paper.gops:.0f} / ({paper.core_w} + {paper.io_w} W)",
        f"SOFA's IO power (2.45 W at 59.8 GB/s) over its own run ({seconds * 1e3:.2f} ms) moves {implied / 1e6:.0f} MB "
        f"= Q + O at 16 bits ({qo / 1e6:.0f} MB) + the tokens X at 8 bits once per layer ({x / 1e6:.0f} MB): it "
        f"charges no K/V reads (generated on chip) and neither the projection weights nor the K/V generation work; "
        f"ours reads K and V (16 bits) per query tile: {ours_mb:.0f} MB",
    ]


def _columns(ours: TableRow) -> str:
    p = load_table().row("sofa")
    return (f"our row vs the paper's: GOPS {ours.gops:.0f} vs {p.gops:.0f}, core GOPS/W {ours.core_gops_per_w:.0f} "
            f"vs {p.core_gops_per_w:.0f}, device GOPS/W {ours.device_gops_per_w:.0f} vs {p.device_gops_per_w:.0f}, "
            f"GOPS/mm^2 {ours.gops_per_mm2:.0f} vs {p.gops_per_mm2:.0f}, latency {ours.latency_ms:.1f} vs "
            f"{p.latency_ms:.0f} ms")


def _simulated_baselines(acc: str, metric: Metric) -> dict[str, float]:
    """Our row over each simulated baseline's row, all normalised by the table's rules."""
    ours = simulated_row(acc)
    bases = ("a3", "elsa", "energon", "spatten") if metric == "energy" else SIM_BASELINES
    out = {}
    for b in bases:
        row = simulated_row(b)
        out[b] = {"energy": ours.device_gops_per_w / row.device_gops_per_w,
                  "area": ours.gops_per_mm2 / row.gops_per_mm2, "speed": row.latency_ms / ours.latency_ms}[metric]
    return out


def _claim(paper: str, metric: Metric) -> Claim:
    star = paper == "star"
    agg = _aggregate(star)
    table = load_table()
    ours_row = simulated_row(paper)
    per = per_baseline(ours_row, table, metric)
    label = "up to" if star else "mean"
    model, seq = TABLE_WORKLOAD
    trace = design_trace(Design(paper), True)
    c = Claim(
        paper, f"{paper}_{metric}_vs_sota", f"{TEXT[metric]} ({label})", VALUES[paper][metric], agg(per),
        [f"SOFA Table II arithmetic ({'maximum' if star else 'mean'} over the published baseline rows"
         f"{' with IO power: A3, ELSA, Energon, SpAtten' if metric == 'energy' else ', all eight'})",
         f"our {paper} simulated on {model} attention at {seq} tokens (Table II's 137-GOP workload), trace "
         f"{trace.meta.get('params')} (density {trace.density:.3f}), normalised by Table II's rules: full-S^2 "
         "operations, core power to 28 nm / 1.0 V, area x (28/node)^2, latency at 128 multipliers and 1 GHz",
         _columns(ours_row)],
        per, method="SOFA Table II: published baseline rows, every row normalised to 28 nm / 1.0 V / 128 "
        "multipliers at 1 GHz", check=agg(per_baseline(table.row("sofa"), table, metric)))
    c.variants["the paper's SOFA row through the same arithmetic (a check of ours)"] = c.check
    c.variants["every baseline simulated instead of published (Table II's rules applied to our simulations of "
               f"{', '.join(SIM_BASELINES)})"] = agg(_simulated_baselines(paper, metric))
    c.variants[f"our {paper} at the paper's density {PAPER_DENSITY} (SOFA Fig. 18, 2% loss after fine-tuning)"] = agg(
        per_baseline(simulated_row(paper, density=PAPER_DENSITY), table, metric))
    generated = Design(paper, overrides=(("operands.kv_source", "generated"),))
    c.variants["with on-demand K/V generation on the 128x4 array (the K/V projection in scope, hw/kvgen.py)"] = agg(
        per_baseline(simulated_row(paper, design=generated), table, metric))
    if not c.within:
        if metric == "energy":
            c.derivation += _energy_derivation(ours_row, Design(paper))
        c.levers.append(Lever(
            f"{paper} trace density", trace.density,
            solve(lambda x: agg(per_baseline(simulated_row(paper, density=x), table, metric)), c.paper_value,
                  0.003, 1.0, steps=12),
            (0.003, 1.0), f"kept fraction of {paper}'s attention pairs, prediction work unchanged"))
    return c


def sota_claims(paper: str) -> list[Claim]:
    """SOFA: 15.8x energy, 10.3x area efficiency, 9.3x speed-up (means over SOTA accelerators); STAR: up to 16.1x
    energy and 27.1x area efficiency."""
    return [_claim(paper, m) for m in VALUES[paper]]
