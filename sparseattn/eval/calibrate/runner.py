"""Calibrate a method to loss budgets on one text and judge it on another (equal-accuracy comparison).

For each budget the method's primary knob is searched (:func:`~.search.search`) on the *calibration* scorer, once
per value of each secondary knob's grid (PADE's alpha in its paper's 0.5-0.6); the setting kept is the one with the
lowest measured density among those on budget (the sparsest on budget; PADE, HPCA'26 Sec. VI-A). That setting is
then measured on the *judgement* scorer -- a different text -- and both are reported with the gap between them
(a setting that does not transfer is a finding, not something to tune away). A budget that the knob's densest end
cannot meet is reported unreached, with its closest point (the lowest loss measured); one met only at the knob's
densest end says so, with the closest sparser point measured; and a knob that leaves the density unchanged over its
whole range on this window (a block-sparse method whose blocks cover a short window) is reported not measurable
there rather than as a calibrated setting.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ...core.errors import InvalidParameterError, SparseAttnError
from ...methods.registry import Knob, knobs_of
from .scorer import Point, Scorer
from .search import Found, knob_value, search

OnPoint = Callable[[str, Point], None]


@dataclass
class CalibrationRow:
    """A method at one budget: its calibrated setting, loss and density on the calibration text and the judged
    text. ``loss`` is the relative perplexity increase (decoder) or 1 - embedding cosine (encoder)."""

    model: str
    kind: str  # "decoder" | "encoder"
    method: str
    budget: float
    reached: bool  # False: no setting in the knob's range meets the budget (params: the closest point), or the knob
    # does not change the density on this window (measurable False)
    params: dict[str, Any]
    calib_text: str
    calib_loss: float
    calib_density: float
    judge_text: str
    judge_loss: float
    judge_density: float
    evaluations: int  # distinct settings measured on the calibration text for this method
    seconds: float  # wall time of this method's calibration and judgement (cache hits are fast)
    note: str = ""
    measurable: bool = True  # False: the knob leaves the density unchanged on this window; nothing was calibrated
    calib_layer_density: dict[int, float] = field(default_factory=dict)
    judge_layer_density: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("budget", "calib_loss", "calib_density", "judge_loss", "judge_density", "seconds"):
            if not math.isfinite(getattr(self, name)):
                raise SparseAttnError(f"{self.method} at budget {self.budget}: {name} is not finite")

    @property
    def gap(self) -> float:
        """Judged loss minus calibrated loss (positive: the setting costs more on the held-out text)."""
        return self.judge_loss - self.calib_loss

    @property
    def judged_on_budget(self) -> bool | None:
        """Whether the calibrated setting stays on budget on the judged text; ``None`` when nothing was calibrated
        (an unreached budget's closest point is not a setting on the budget, whatever it scores elsewhere)."""
        return self.judge_loss <= self.budget if self.reached else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gap": self.gap, "judged_on_budget": self.judged_on_budget}


def _grid(knobs: tuple[Knob, ...]) -> list[dict[str, float]]:
    """Every combination of the secondary knobs' grid values (one empty dict for a one-knob method)."""
    secondary = knobs[1:]
    return [dict(zip([k.name for k in secondary], values, strict=True))
            for values in itertools.product(*(k.grid for k in secondary))]


def _search_one(method: str, primary: Knob, fixed: dict[str, Any], scorer: Scorer, budgets: list[float], tol: float,
                on_point: OnPoint | None) -> tuple[list[Found], dict[float, Point]]:
    points: dict[float, Point] = {}

    def loss_at(t: float) -> float:
        p = scorer.measure(method, {**fixed, primary.name: knob_value(primary, t)})
        points[t] = p
        if on_point is not None:
            on_point(method, p)
        return p.loss

    return search(loss_at, budgets, tol, density_at=lambda t: points[t].density), points


def _flat(per_grid: list[tuple[list[Found], dict[float, Point]]]) -> Point | None:
    """The densest end's point when no grid value's sparsest end is any sparser (the knob moves nothing)."""
    ends = [(pts[0.0], pts[1.0]) for _, pts in per_grid if 1.0 in pts]
    if len(ends) == len(per_grid) and all(sparse.density >= dense.density for dense, sparse in ends):
        return ends[0][0]
    return None


def _flat_note(method: str, knob: Knob, point: Point, tokens: int) -> str:
    from ...methods.registry import parse_params

    why = "the knob does not change which pairs are kept"
    params = parse_params(method, point.params)
    block = getattr(params, "block_size", None) or getattr(params, "block_k", None)
    if isinstance(block, int) and block > 0:
        why = (f"the {tokens}-token window holds at most {math.ceil(tokens / block)} key blocks of {block} tokens "
               "(block_size), and the blocks always kept leave none to skip")
    return (f"not measurable at this window: density {point.density:.3f} at both ends of {knob.name} [{knob.low}, "
            f"{knob.high}]; {why}")


def _dense_end_note(knob: Knob, point: Point, pts: dict[float, Point]) -> str:
    """For an answer at the densest end: the closest sparser point measured, over budget."""
    sparser = [t for t in pts if t > 0.0]
    if not sparser:
        return ""
    p = pts[min(sparser)]
    return (f"only the densest end meets the budget: the closest sparser point measured, {knob.name}="
            f"{p.params[knob.name]:g}, keeps {p.density:.3f} of the pairs at loss {p.loss:+.4f}")


def _non_monotone_note(knob: Knob, budget: float, pts: dict[float, Point]) -> str:
    """For an answer whose grid value's densest end is over the budget: say so (the loss is not monotone there)."""
    dense = pts[0.0]
    if dense.loss <= budget:
        return ""
    return (f"the densest end, {knob.name}={dense.params[knob.name]:g} (density {dense.density:.3f}), is over the "
            f"budget at loss {dense.loss:+.4f} while this sparser setting is on it: the loss is not monotone in "
            f"{knob.name} here")


def _choose(budget: float, results: list[tuple[Found, dict[float, Point]]]) -> tuple[Found, Point, dict[float, Point]]:
    """The sparsest (lowest measured density) on-budget point over the grid, else the lowest-loss point; with its
    search outcome and the points of its grid value."""
    reached = [(f, pts[f.t], pts) for f, pts in results if f.t is not None]
    if reached:
        return min(reached, key=lambda x: (x[1].density, x[1].loss))
    return min(((f, pts[f.closest], pts) for f, pts in results), key=lambda x: (x[1].loss, x[1].density))


def calibrate_method(method: str, calib: Scorer, judge: Scorer, budgets: list[float], tol: float = 1 / 32,
                     fixed: dict[str, Any] | None = None, on_point: OnPoint | None = None) -> list[CalibrationRow]:
    """One :class:`CalibrationRow` per budget for ``method`` (module docstring); ``fixed``: other parameters held."""
    if calib.label == judge.label and calib.items[0].shape == judge.items[0].shape and \
            all(bool((a == b).all()) for a, b in zip(calib.items, judge.items, strict=False)):
        raise InvalidParameterError(f"calibration and judgement use the same text ({calib.label}); judge on another")
    if not budgets or any(not (0 < b < 1) for b in budgets):
        raise InvalidParameterError(f"loss budgets must lie in (0, 1) (0.01 = +1% perplexity or cosine 0.99), "
                                    f"got {budgets}")
    knobs = knobs_of(method)
    fixed = dict(fixed or {})
    clash = [k.name for k in knobs if k.name in fixed]
    if clash:
        raise InvalidParameterError(f"{method}: {', '.join(clash)} is the calibrated knob; do not also fix it")
    start = time.perf_counter()
    order = sorted(budgets)
    per_grid = [_search_one(method, knobs[0], {**fixed, **secondary}, calib, order, tol, on_point)
                for secondary in _grid(knobs)]
    evaluations = sum(len(points) for _, points in per_grid)
    flat = _flat(per_grid)
    rows = []
    for b in budgets:
        i = order.index(b)
        found, point, pts = _choose(b, [(founds[i], points) for founds, points in per_grid])
        reached = found.reached and flat is None
        if flat is not None:
            point = flat
            note = _flat_note(method, knobs[0], flat, int(calib.items[0].shape[-1]))
        elif not reached:
            note = (f"cannot reach the budget in {knobs[0].name} [{knobs[0].low}, {knobs[0].high}]: closest loss "
                    f"{point.loss:.4f} at {point.params}")
        else:
            note = _dense_end_note(knobs[0], point, pts) if found.t == 0.0 else _non_monotone_note(knobs[0], b, pts)
        judged = judge.measure(method, point.params)
        rows.append(CalibrationRow(
            model=calib.lm.name, kind=calib.kind, method=method, budget=b, reached=reached, params=point.params,
            calib_text=calib.label, calib_loss=point.loss, calib_density=point.density, judge_text=judge.label,
            judge_loss=judged.loss, judge_density=judged.density, evaluations=evaluations,
            seconds=time.perf_counter() - start, note=note, measurable=flat is None,
            calib_layer_density=point.layer_density,
            judge_layer_density=judged.layer_density))
    return rows


def expected_points(method: str, n_budgets: int, tol: float = 1 / 32) -> int:
    """About how many settings calibrating ``method`` measures: per grid value both ends and ``log2(1/tol)``
    bisections for the first budget, about half as many more for each further budget, and one more per budget where
    the density is resolved past ``tol`` (SmolLM2 at 128 tokens measured 7 to 15 per grid value over two budgets,
    mean 11: ``benchmarks/results/calibrate/``); then one judgement per budget (for progress estimates only)."""
    steps = math.ceil(math.log2(1 / tol))
    per_grid = 2 + steps + (n_budgets - 1) * (steps // 2) + n_budgets
    return len(_grid(knobs_of(method))) * per_grid + n_budgets
