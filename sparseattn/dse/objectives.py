"""Objectives a search minimises: any subset of them (several give a Pareto front).

Hardware (from the simulation's ``SimResult.summary()``): ``latency_ms``, ``energy_mj``, ``area_mm2``,
``dram_mb`` (DRAM traffic), ``power_w``, ``edp`` (energy x latency, mJ.ms).

Accuracy (from the cached accuracy table, :mod:`~sparseattn.dse.accuracy`; never a model run in a trial):
``nll`` (cross-entropy of the bundled model, nats per token), ``ppl`` (its perplexity).

``sofa``: SOFA's own tiling objective ``L_CE + alpha L_cmp + beta L_exp`` (:mod:`~sparseattn.dse.sofa_objective`);
needs no simulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .sofa_objective import alpha_beta, sofa_terms
from .space import ObjectiveSpec, SpaceError


@dataclass
class Measured:
    """What a trial measured, that objectives read: the simulation summary (``None`` when no objective needs
    one), the point's method parameters, its cross-entropy (``None`` without accuracy objectives)."""

    summary: dict[str, float] | None
    method_params: dict[str, Any]
    nll: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Objective:
    """A minimised quantity; ``fn`` reads a :class:`Measured` (and the objective's options)."""

    name: str
    unit: str
    needs_sim: bool
    needs_accuracy: bool
    fn: Callable[[Measured, ObjectiveSpec, dict[str, Any]], float]
    description: str


def _summary(key: str) -> Callable[[Measured, ObjectiveSpec, dict[str, Any]], float]:
    return lambda m, spec, ctx: float(m.summary[key])


def _edp(m: Measured, spec: ObjectiveSpec, ctx: dict[str, Any]) -> float:
    return float(m.summary["energy_mj"] * m.summary["latency_ms"])


def _nll(m: Measured, spec: ObjectiveSpec, ctx: dict[str, Any]) -> float:
    return float(m.nll)


def _ppl(m: Measured, spec: ObjectiveSpec, ctx: dict[str, Any]) -> float:
    return math.exp(float(m.nll))


def _sofa(m: Measured, spec: ObjectiveSpec, ctx: dict[str, Any]) -> float:
    alpha, beta = alpha_beta(spec.paper_model, ctx["shape_name"], spec.alpha, spec.beta)
    terms = sofa_terms(float(m.nll), m.method_params, ctx["layers"], alpha, beta, spec.exp_cost, ctx["defaults"])
    m.extra.update({"sofa_l_ce": terms.l_ce, "sofa_l_cmp": terms.l_cmp, "sofa_l_exp": terms.l_exp})
    return terms.total


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("latency_ms", "ms", True, False, _summary("latency_ms"), "simulated latency"),
    Objective("energy_mj", "mJ", True, False, _summary("energy_mj"), "simulated energy"),
    Objective("area_mm2", "mm2", True, False, _summary("area_mm2"), "area"),
    Objective("dram_mb", "MB", True, False, _summary("dram_mb"), "DRAM traffic"),
    Objective("power_w", "W", True, False, _summary("power_w"), "average power"),
    Objective("edp", "mJ.ms", True, False, _edp, "energy-delay product"),
    Objective("nll", "nats", False, True, _nll, "cross-entropy of the bundled model (accuracy table)"),
    Objective("ppl", "", False, True, _ppl, "perplexity of the bundled model (accuracy table)"),
    Objective("sofa", "", False, True, _sofa, "SOFA's tiling objective L_CE + a L_cmp + b L_exp (section III-E)"),
)}


def get_objective(spec: ObjectiveSpec) -> Objective:
    """The objective ``spec`` names; options given to an objective that takes none are an error."""
    if spec.name not in OBJECTIVES:
        raise SpaceError(f"unknown objective {spec.name!r}; available: {', '.join(OBJECTIVES)}")
    sofa_options = spec.paper_model is not None or spec.alpha is not None or spec.beta is not None
    if spec.name != "sofa" and (sofa_options or spec.exp_cost != "paper"):
        raise SpaceError(f"objective {spec.name!r} takes no options (paper_model, alpha, beta, exp_cost are sofa's)")
    if spec.name == "sofa":
        try:
            alpha_beta(spec.paper_model, "", spec.alpha, spec.beta)
        except ValueError as err:
            raise SpaceError(str(err)) from None
    return OBJECTIVES[spec.name]
