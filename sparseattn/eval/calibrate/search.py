"""The search behind calibration: the sparsest setting of a monotone density knob whose loss stays on a budget.

A knob (:class:`~sparseattn.methods.registry.Knob`) is walked along a *sparseness coordinate* ``t`` in [0, 1]:
``t = 0`` is its densest end, ``t = 1`` its sparsest, linear or logarithmic in the knob's value as the knob
declares. The loss is expected to grow with ``t`` (PADE's evaluation picks its threshold the same way: the most
aggressive setting within the accuracy budget, HPCA'26 Sec. VI-A), but it need not: a method that quantises or
approximates at its densest end can lose more there than a little sparser (PADE's bit-serial scores at its
largest radius on SmolLM2, ``benchmarks/results/calibrate/``), and over a few hundred tokens the perplexity moves
by a few percent either way from noise alone. The budgets are therefore searched largest first, and every point
measured counts. For each budget:

1. the densest end is measured; when it is over the budget and no point measured so far is on it, the budget is
   unreachable and the closest point (the lowest loss measured) is reported instead;
2. the sparsest end is measured; when it is on budget it is the answer;
3. otherwise the bracket ``[lo, hi]`` -- ``lo`` the sparsest point measured on budget, ``hi`` the first point
   measured beyond it that is over -- is bisected until it is at most ``tol`` wide and, when the caller gives each
   point's density, until its two ends differ by at most ``density_tol`` in density (the quantity the comparison
   reports; where the density moves fast along the knob a ``tol``-wide bracket can span 0.05 or more of it), down
   to ``min_tol``; ``lo`` is the answer.

Measurements are shared between budgets (a memo keyed by ``t``), and ``t`` only takes dyadic values, so the knob
values, and the cache keys built from them, repeat exactly between runs (a rerun is all cache hits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...core.errors import InvalidParameterError
from ...methods.registry import Knob

DENSITY_TOL = 0.02  # a bracket is resolved when its ends differ by at most this much density (2 points of 100)
MIN_TOL = 1 / 256  # ... or when it is this narrow (a jump in density is not bisected forever)
SIGNIFICANT = 4  # knob values are rounded to this many significant digits (stable cache keys, readable tables)


def knob_value(knob: Knob, t: float) -> float:
    """The knob's value at sparseness ``t`` (0: densest end, 1: sparsest end), rounded to 4 significant digits."""
    if not 0.0 <= t <= 1.0:
        raise InvalidParameterError(f"sparseness coordinate must lie in [0, 1], got {t}")
    s = 1.0 - t if knob.denser == "up" else t  # 0 at low, 1 at high
    if knob.scale == "log":
        x = math.exp(math.log(knob.low) + s * (math.log(knob.high) - math.log(knob.low)))
    else:
        x = knob.low + s * (knob.high - knob.low)
    return float(f"{x:.{SIGNIFICANT}g}")


def knob_coordinate(knob: Knob, value: float) -> float:
    """The inverse of :func:`knob_value` (before rounding): the sparseness of ``value`` (inside the range)."""
    if not knob.low <= value <= knob.high:
        raise InvalidParameterError(f"{knob.name}={value} is outside its calibration range [{knob.low}, {knob.high}]")
    if knob.scale == "log":
        s = (math.log(value) - math.log(knob.low)) / (math.log(knob.high) - math.log(knob.low))
    else:
        s = (value - knob.low) / (knob.high - knob.low)
    return 1.0 - s if knob.denser == "up" else s


@dataclass(frozen=True)
class Found:
    """The outcome of one budget: the sparsest ``t`` on budget, or (``t is None``) the closest point measured."""

    budget: float
    t: float | None  # None: the densest end is already over the budget
    closest: float  # the ``t`` of the point returned (= t when reached; the lowest-loss point otherwise)
    loss: float  # the loss at ``closest``
    evaluations: int  # distinct points measured so far (shared between budgets)

    @property
    def reached(self) -> bool:
        return self.t is not None


def _bracket(memo: dict[float, float], budget: float) -> tuple[float, float]:
    lo = max(t for t, loss in memo.items() if loss <= budget)
    hi = min(t for t, loss in memo.items() if t > lo and loss > budget)
    return lo, hi


def _resolved(lo: float, hi: float, tol: float, min_tol: float,
              density_at: Callable[[float], float] | None, density_tol: float) -> bool:
    if hi - lo <= min_tol:
        return True
    if hi - lo > tol:
        return False
    return density_at is None or density_at(lo) - density_at(hi) <= density_tol


def search(loss_at: Callable[[float], float], budgets: Sequence[float], tol: float = 1 / 32,
           memo: dict[float, float] | None = None, density_at: Callable[[float], float] | None = None,
           density_tol: float = DENSITY_TOL, min_tol: float = MIN_TOL) -> list[Found]:
    """The sparsest on-budget ``t`` for each budget (module docstring), in the order given; ``loss_at(t)`` measures
    one point, ``density_at(t)`` (optional) reads the density of a point already measured."""
    if not 0 < tol < 1 or not 0 < min_tol <= tol:
        raise InvalidParameterError(f"tol must lie in (0, 1) and min_tol in (0, tol], got {tol} and {min_tol}")
    memo = {} if memo is None else memo

    def at(t: float) -> float:
        if t not in memo:
            loss = float(loss_at(t))
            if math.isnan(loss):
                raise InvalidParameterError(f"the loss at sparseness {t} is NaN")
            memo[t] = loss
        return memo[t]

    found: dict[int, Found] = {}
    for i in sorted(range(len(budgets)), key=lambda j: -budgets[j]):  # largest first: its points serve the rest
        budget = budgets[i]
        if at(0.0) > budget and all(loss > budget for loss in memo.values()):
            t_best = min(memo, key=lambda t: (memo[t], t))
            found[i] = Found(budget, None, t_best, memo[t_best], len(memo))
            continue
        if at(1.0) <= budget:
            found[i] = Found(budget, 1.0, 1.0, memo[1.0], len(memo))
            continue
        lo, hi = _bracket(memo, budget)
        while not _resolved(lo, hi, tol, min_tol, density_at, density_tol):
            at((lo + hi) / 2)
            lo, hi = _bracket(memo, budget)
        found[i] = Found(budget, lo, lo, memo[lo], len(memo))
    return [found[i] for i in range(len(budgets))]
