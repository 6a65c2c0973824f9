"""Every claim a point and a bracket: the claim at the most faithful reading of each unstated choice (its point in
``hw/published/claims.yaml``), and over each choice's range one at a time (plus the corners where two interact).

A **setting** maps every choice of the claims file to one of its values. :func:`evaluate` gives a claim's value per
item at a setting, by its paper's method (``evaluate`` in the file); :func:`bracket` varies each of the claim's
choices over its values with the others at their points, and each declared corner pair over all combinations.
``low``/``high`` are the extremes found; the choice whose range moves the claim most (largest high/low over its
values) is named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product

from ..hw.spatial.schema import load_mesh
from ..hw.spatial.simulate import simulate_mesh
from ..hw.spatial.sweep import workload
from ..hw.tableii import load_table, per_baseline
from ..hw.traces import load_trace, trace_for
from .claim import Design, build, geomean, sim
from .claimsfile import ClaimSpec, Value, load_claims
from .gpu_claims import PADE_SET, SOFA_SET, Run, ratios
from .sota import simulated_row

Setting = dict[str, Value]
SPATIAL_POINT = ("spatial-star-8x8", "llama2-7b", 131072)  # the mesh, model and length of the headline runs
EQUAL_ACCURACY = {"sanger": "sanger-iso", "sofa": "sofa-iso"}  # bundled traces at PADE's perplexity change


@dataclass
class Swing:
    """A claim's value at each value of one choice (the others at their points)."""

    choice: str
    values: dict[str, float]

    @property
    def low(self) -> float:
        return min(self.values.values())

    @property
    def high(self) -> float:
        return max(self.values.values())

    @property
    def span(self) -> float:
        return self.high / self.low


@dataclass
class Bracket:
    """A claim's point, per-item values at the point, its bracket and what moves it."""

    point: float
    per_item: dict[str, float]
    low: float
    high: float
    swings: list[Swing] = field(default_factory=list)
    corners: dict[str, float] = field(default_factory=dict)

    @property
    def most(self) -> str:
        return max(self.swings, key=lambda s: s.span).choice if self.swings else ""


def aggregate(rule: str, per: dict[str, float]) -> float:
    """``mean``, ``geomean`` or ``max`` ("up to") of the per-item values."""
    values = list(per.values())
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"claim items must be finite and positive, got {per}")
    return {"mean": sum(values) / len(values), "geomean": geomean(values), "max": max(values)}[rule]


# ------------------------------------------------------------------------------------------------ designs
def accounted(name: str, mode: str = "published", trace: str | None = None) -> Design:
    """``name`` under its one accounting (the claims file's overrides)."""
    return Design(name, mode, load_claims().overrides(name), trace=trace)


def density_arg(design: Design, value: Value, causal: bool = True) -> float | None:
    """The density to run ``design`` at: ``None`` (its trace as captured) when ``value`` is the trace's own."""
    trace = load_trace(design.trace) if design.trace else trace_for(build(design), causal)
    return None if abs(float(value) - trace.density) < 5e-4 else float(value)


def pade_design(s: Setting, mode: str = "published") -> Design:
    """PADE under its accounting, with the setting's K-plane reuse."""
    base = accounted("pade", mode)
    return Design("pade", mode, tuple(sorted((*base.overrides, ("mapping.k_plane_reuse", str(s["pade_k_planes"]))))))


def a100_design(s: Setting) -> Design:
    over = (("busy_power_w", float(s["a100_busy_w"])), ("eager.gemm_efficiency", float(s["a100_gemm_efficiency"])),
            ("eager.launch_us", float(s["a100_launch_us"])), ("eager.matmul_dtype", str(s["a100_precision"])),
            ("energy", "dynamic"), ("idle_power_w", float(s["a100_idle_w"])), ("kernel", "eager"),
            ("power_scaling", str(s["gpu_power_scaling"])))
    return Design("a100", overrides=over)


def h100_design(s: Setting) -> Design:
    over = (("busy_power_w", float(s["h100_busy_w"])), ("compute_efficiency", float(s["h100_efficiency"])),
            ("idle_power_w", float(s["h100_idle_w"])), ("power_scaling", str(s["gpu_power_scaling"])))
    return Design("h100", overrides=over)


# ------------------------------------------------------------------------------------------------ evaluators
def _a100(spec: ClaimSpec, s: Setting) -> dict[str, float]:
    acc = accounted(spec.paper)
    return ratios(acc, a100_design(s), SOFA_SET, spec.metric, Run(batch=int(float(s["a100_batch"]))),
                  density_arg(acc, s["sofa_density"]))


def _table2(spec: ClaimSpec, s: Setting) -> dict[str, float]:
    acc = accounted(spec.paper)
    row = simulated_row(spec.paper, density=density_arg(acc, s["sofa_density"]), design=acc)
    return per_baseline(row, load_table(), spec.metric)


def _h100(spec: ClaimSpec, s: Setting) -> dict[str, float]:
    acc = pade_design(s)
    run = Run(int(float(s["h100_batch"])), int(float(s["h100_decode_steps"])))
    return ratios(acc, h100_design(s), PADE_SET, spec.metric, run, density_arg(acc, s["pade_density"]))


def iso_baseline(name: str, s: Setting) -> tuple[Design, float | None]:
    """The baseline of an iso claim and the density it runs at, under the setting's operating point."""
    if name == "dota":
        base = accounted("dota", "iso")
        return base, density_arg(base, s["dota_density"])
    point = str(s["iso_operating_point"])
    if point == "equal-accuracy":
        return accounted(name, "iso", EQUAL_ACCURACY[name]), None
    base = accounted(name, "iso")
    return base, (float(s["pade_density"]) if point == "equal-density" else None)


def _iso(spec: ClaimSpec, s: Setting) -> dict[str, float]:
    pade = pade_design(s, "iso")
    pade_density = density_arg(pade, s["pade_density"])
    base, density = iso_baseline(str(spec.baseline), s)
    return {f"{m}@{n}": sim(base, m, n, density).energy_j / sim(pade, m, n, pade_density).energy_j
            for m, n in PADE_SET}


@lru_cache(maxsize=16)
def spatial_tokens_per_s(design: str, gather: str = "tile") -> float:
    """Tokens per second of a prefill of :data:`SPATIAL_POINT` on the mesh running ``design``."""
    mesh, model, seq = SPATIAL_POINT
    arch = load_mesh(mesh)
    orch = arch.orchestration.model_copy(update={"gather": gather})
    arch = arch.model_copy(update={"design": design, "orchestration": orch})
    shape = workload(model, seq, "prefill")
    return simulate_mesh(arch, trace_for(arch, shape.causal), shape).tokens_per_s


def _spatial(spec: ClaimSpec, s: Setting) -> dict[str, float]:
    variant = str(s["spatial_baseline"])
    design, gather = ("stage-isolated", "row") if variant == "stage-isolated-row" else (variant, "tile")
    _, model, seq = SPATIAL_POINT
    return {f"{model}@{seq}": spatial_tokens_per_s("spatial-star") / spatial_tokens_per_s(design, gather)}


EVALUATORS: dict[str, Callable[[ClaimSpec, Setting], dict[str, float]]] = {
    "a100": _a100, "table2": _table2, "h100": _h100, "iso": _iso, "spatial": _spatial}


def evaluate(spec: ClaimSpec, setting: Setting | None = None) -> dict[str, float]:
    """Per-item values of ``spec`` at ``setting`` (default: every choice at its point)."""
    return EVALUATORS[spec.evaluate](spec, setting or load_claims().points())


def value(spec: ClaimSpec, setting: Setting) -> float:
    return aggregate(spec.aggregate, evaluate(spec, setting))


def bracket(spec: ClaimSpec) -> Bracket:
    """``spec`` at the point, each of its choices over its range (one at a time), and its corner pairs."""
    file = load_claims()
    point = file.points()
    per = evaluate(spec, point)
    centre = aggregate(spec.aggregate, per)
    swings = []
    for name in spec.choices:
        ch = file.choices[name]
        swings.append(Swing(name, {ch.label(v): (centre if v == ch.point else value(spec, {**point, name: v}))
                                   for v in ch.values}))
    corners = {}
    for a, b in spec.corners:
        for va, vb in product(file.choices[a].values, file.choices[b].values):
            corners[f"{a}={va}, {b}={vb}"] = value(spec, {**point, a: va, b: vb})
    every = [centre, *(v for s in swings for v in s.values.values()), *corners.values()]
    return Bracket(centre, per, min(every), max(every), swings, corners)
