"""What a reproduced claim is (paper value, our point and bracket, the method, the choices, derivations) and the
simulations the claims share (:class:`Design`, :func:`sim`, cached across claims and the brackets' settings)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from ..core.shape import Shape
from ..hw.normalise import at_node, iso
from ..hw.overrides import with_overrides
from ..hw.replicate import split_heads
from ..hw.result import SimResult
from ..hw.schema import load_arch
from ..hw.shapes import load_model_shape
from ..hw.simulator import simulate
from ..hw.traces import load_trace, trace_for, trace_name, with_density

TOLERANCE = 0.25


@dataclass
class Claim:
    """One headline claim: the paper's value, our point (``ours``) under the paper's stated evaluation ``method`` and
    its bracket ``[low, high]`` over every unstated choice, the ratio, the choices at their points
    (``assumptions``), per-item values, each choice's swing, and derivations of what the paper's number implies."""

    paper: str
    id: str
    text: str
    paper_value: float
    ours: float
    assumptions: list[str]
    per_item: dict[str, float] = field(default_factory=dict)
    method: str = ""  # the paper's evaluation method ours follows
    check: float | None = None  # the paper's own arithmetic redone on its published figures (Table II claims)
    derivation: list[str] = field(default_factory=list)
    low: float | None = None  # the bracket over every unstated choice (report/brackets.py)
    high: float | None = None
    swings: dict[str, dict[str, float]] = field(default_factory=dict)  # choice -> {value: claim}
    most: str = ""  # the choice that moves the claim most
    aggregate: str = ""  # mean, geomean or max ("up to") over the items
    before: float | None = None  # our point before claims were brackets

    @property
    def in_bracket(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low * (1 - 1e-9) <= self.paper_value <= self.high * (1 + 1e-9)

    @property
    def ratio(self) -> float:
        return self.ours / self.paper_value

    @property
    def within(self) -> bool:
        return abs(self.ratio - 1) <= TOLERANCE


def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


# ------------------------------------------------------------------------------------------------ simulation
@dataclass(frozen=True)
class Design:
    """A design as simulated: a bundled architecture, its setting (``published``, ``iso`` for iso-PADE, ``28nm``),
    dotted-path overrides (:func:`~sparseattn.hw.overrides.with_overrides`), identical copies splitting the heads
    (:func:`~sparseattn.hw.replicate.split_heads`) and the bundled trace it runs (default: its method's).
    Hashable, so results cache across claims and settings."""

    name: str
    mode: str = "published"
    overrides: tuple[tuple[str, Any], ...] = ()
    copies: float = 1.0
    trace: str | None = None


def build(design: Design) -> Any:
    arch = load_arch(design.name)
    if design.overrides:
        arch = with_overrides(arch, dict(design.overrides))
    if design.mode == "iso":
        arch = iso(arch)
    elif design.mode == "28nm":
        arch = at_node(arch, 28)
    return arch


def design_trace(design: Design, causal: bool):
    """The bundled trace a design runs: its own name (``sofa-iso``) or its method's, causal or bidirectional."""
    if design.trace is not None:
        return load_trace(trace_name(design.trace, causal))
    return trace_for(build(design), causal)


@lru_cache(maxsize=4096)
def sim_shape(design: Design, shape: Shape, density: float | None = None) -> SimResult:
    """``design`` on ``shape``, running its bundled trace (rescaled to ``density``)."""
    if design.copies != 1:
        return split_heads(sim_shape(replace(design, copies=1.0), shape, density), design.copies)
    trace = design_trace(design, shape.causal)
    if density is not None:
        trace = with_density(trace, density)
    return simulate(build(design), trace, shape)


def sim(design: Design, model: str, seq: int, density: float | None = None, batch: int = 1) -> SimResult:
    """``design`` on ``model`` at ``seq`` tokens (a prefill of ``batch`` sequences)."""
    return sim_shape(design, load_model_shape(model).shape(seq, batch), density)


def decode_shape(model: str, context: int, batch: int = 1) -> Shape:
    """One decode step of ``model`` against a KV cache of ``context`` tokens (one query row per sequence)."""
    s = load_model_shape(model).shape(context, batch)
    return s.replace(q_len=1)
