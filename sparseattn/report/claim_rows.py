"""Each headline claim as a :class:`~sparseattn.report.claim.Claim` with its point, bracket, assumptions and
derivations (from ``hw/published/claims.yaml`` through :mod:`~sparseattn.report.brackets`), and the typed rows a
report shows (:class:`ClaimRow`, :func:`claim_rows`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..hw.shapes import load_model_shape
from ..hw.tableii import load_table, per_baseline
from .brackets import (
    SPATIAL_POINT,
    Bracket,
    Setting,
    a100_design,
    accounted,
    aggregate,
    bracket,
    density_arg,
    pade_design,
)
from .claim import TOLERANCE, Claim, geomean, sim
from .claimsfile import ClaimSpec, load_claims
from .gpu_claims import PADE_SET, SOFA_SET, Run, _cost
from .sota import table_ops

METHODS = {
    "a100": "SOFA section VI: eager PyTorch attention on an A100 timed with torch.cuda.synchronize, dynamic power "
            "= nvidia-smi total - idle",
    "table2": "SOFA Table II: published baseline rows, every row normalised to 28 nm / 1.0 V / 128 multipliers at "
              "1 GHz; our row simulated on Llama-7B attention at 512 tokens",
    "h100": "PADE section VI: H100 with TensorRT-LLM + FlashAttention-3, batch 8-128, prefill and decode, board "
            "power from nvidia-smi",
    "iso": "PADE section VI / Table III: every design given PADE's hardware budget (28 nm, 800 MHz, 352 KB SRAM, "
           "256 GB/s HBM2, PE-array area equal to PADE's), at equal accuracy",
    "spatial": "STAR: Spatial-STAR vs 'the baseline design' on the same mesh (8x8 STAR cores), Llama2-7B prefill "
               "at 128k tokens",
}


@dataclass(frozen=True)
class ClaimRow:
    """What a report shows of one claim: paper value, our point and bracket, and the two verdicts."""

    paper: str
    id: str
    text: str
    paper_value: float
    point: float
    low: float
    high: float
    in_bracket: bool
    within: bool
    most: str


def rows_from_json(data: dict) -> list[ClaimRow]:
    """The typed rows of a ``reproduce.json`` (what a report reads back from a run's results)."""
    return [ClaimRow(c["paper"], c["id"], c["text"], c["paper_value"], c["ours"], c["low"], c["high"],
                     bool(c["in_bracket"]), bool(c["within_25pct"]), c["most"]) for c in data["claims"]]


def claim_rows(claims: list[Claim]) -> list[ClaimRow]:
    """The typed rows of ``claims`` (every claim carries its bracket)."""
    return [ClaimRow(c.paper, c.id, c.text, c.paper_value, c.ours, float(c.low), float(c.high), bool(c.in_bracket),
                     c.within, c.most) for c in claims if c.low is not None and c.high is not None]


def _assumptions(spec: ClaimSpec) -> list[str]:
    file = load_claims()
    out = [f"{file.choices[n].what}: {file.choices[n].label(file.choices[n].point)} ({file.choices[n].why}); range "
           f"{', '.join(file.choices[n].label(v) for v in file.choices[n].values)}; source: {file.choices[n].source}"
           for n in spec.choices]
    for design in sorted({spec.paper, spec.baseline} & set(file.accounting)):
        out.append(f"{design} accounting: {file.accounting[design].why}")
    return out


def _a100_derivation(spec: ClaimSpec, s: Setting) -> list[str]:
    """What the paper's speed-up implies of the A100: eager attention computes the full S^2 whatever the mask."""
    acc, gpu, run = accounted(spec.paper), a100_design(s), Run(batch=int(float(s["a100_batch"])))
    dens = density_arg(acc, s["sofa_density"])
    t_a = geomean([_cost(acc, m, n, run, dens)[0] for m, n in SOFA_SET])
    t_g = geomean([_cost(gpu, m, n, run)[0] for m, n in SOFA_SET])
    ops = geomean([table_ops(load_model_shape(m).shape(n, run.batch)) for m, n in SOFA_SET])
    return [f"the paper's {spec.value}x implies the A100 took {spec.value * t_a * 1e3:.3g} ms (geomean) where ours "
            f"takes {t_g * 1e3:.3g} ms: eager attention computes the full S^2 scores whatever the mask, "
            f"{ops / 1e9:.3g} GFLOP (geomean), so the implied rate is {ops / (spec.value * t_a) / 1e12:.3g} TFLOP/s "
            f"(ours {ops / t_g / 1e12:.3g})"]


def _h100_derivation(spec: ClaimSpec, s: Setting) -> list[str]:
    """PADE's prefill is compute-bound; the two PADE ratios together put the H100 below its idle power."""
    run = Run(int(float(s["h100_batch"])), int(float(s["h100_decode_steps"])))
    model, seq = PADE_SET[0]
    pre = sim(pade_design(s), model, seq, None, run.batch)
    total, _ = _cost(pade_design(s), model, seq, run)
    pade_w = load_claims_pade_power()
    h100_w = 31.1 / 7.43 * pade_w
    idle = float(s["h100_idle_w"])
    return [f"{model}@{seq}, batch {run.batch}: PADE's prefill takes {pre.latency_s:.3g} of its {total:.3g} s "
            f"({pre.compute_bound_fraction:.0%} of its tiles compute-bound): PADE's time is mostly compute, not "
            "bandwidth, so the H100's bandwidth advantage is not what the speed-up measures",
            f"power consistency: 31.1x energy efficiency over a 7.43x speed-up puts the H100 at 31.1 / 7.43 = "
            f"{31.1 / 7.43:.2f}x PADE's power, {h100_w:.2f} W at PADE's published {pade_w * 1e3:.0f} mW, below an "
            f"H100's idle board power ({idle:g} W): the paper's 7.43x (or its energy) must be normalised (per "
            "device area, node or count), which the paper does not state"]


def load_claims_pade_power() -> float:
    """PADE's published power (W)."""
    from ..hw.schema import load_arch

    return load_arch("pade").published.power_mw * 1e-3


def _table2_check(spec: ClaimSpec) -> float:
    """The paper's SOFA row through the same Table II arithmetic (a check of ours)."""
    table = load_table()
    return aggregate(spec.aggregate, per_baseline(table.row("sofa"), table, spec.metric))


def build_claim(spec: ClaimSpec) -> Claim:
    """``spec`` at its point, with its bracket, assumptions and derivations."""
    b: Bracket = bracket(spec)
    c = Claim(spec.paper, spec.id, spec.text, spec.value, b.point, _assumptions(spec), b.per_item,
              method=METHODS[spec.evaluate], low=b.low, high=b.high, most=b.most, aggregate=spec.aggregate,
              before=spec.before,
              swings={s.choice: s.values for s in b.swings} | ({"corners": b.corners} if b.corners else {}))
    s = load_claims().points()
    if spec.evaluate == "table2":
        c.check = _table2_check(spec)
        c.derivation.append(f"the paper's SOFA row through the same arithmetic gives {c.check:.4g}x")
    if spec.evaluate == "a100" and spec.metric == "speed":
        c.derivation += _a100_derivation(spec, s)
    if spec.evaluate == "h100":
        c.derivation += _h100_derivation(spec, s)
    if spec.evaluate == "spatial":
        c.derivation.append(f"{SPATIAL_POINT[1]}@{SPATIAL_POINT[2]} on {SPATIAL_POINT[0]}; the ratio is flat in "
                            "sequence length (every cost ~ N^2)")
    if not c.within and c.in_bracket:
        c.derivation.append(f"the paper's value lies inside our bracket: which reading of {c.most} is right "
                            "decides the claim")
    return c


def paper_claims(paper: str) -> list[Claim]:
    """The headline claims of one paper's abstract, in the claims file's order."""
    return [build_claim(spec) for spec in load_claims().claims if spec.paper == paper]


__all__ = ["TOLERANCE", "ClaimRow", "build_claim", "claim_rows", "paper_claims", "rows_from_json"]
