"""One trial: a point's values -> constraints, simulation, objectives (:class:`TrialOutcome`).

This is what runs in a worker (a local process, a Ray task or the driver itself): :func:`evaluate_point` takes
the space as JSON (picklable and small) and the decoded values, builds (once per process) an :class:`Evaluator`,
and returns a plain dataclass. Order of work: build the candidate, check the constraints (an infeasible point is
never simulated), simulate when an objective needs it (on the computed trace of the point's method parameters,
or the space's trace), look the accuracy up in the cached table, compute the objectives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..core.errors import SparseAttnError
from ..hw import simulate
from .accuracy import AccuracyTable
from .constraints import Feasibility
from .objectives import Measured
from .qkv import method_trace
from .resolve import Space, resolve
from .space import SpaceFile


@dataclass
class TrialOutcome:
    """What one trial gives back: objective values (``None`` when infeasible or failed), the constraint values
    (``<= 0`` satisfied; ``valid`` is the schema accepting the point), reasons for infeasibility, metrics (the
    simulation summary and objective terms), an error for a failed evaluation, and its wall time."""

    values: list[float] | None
    constraints: dict[str, float]
    feasible: bool
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def constraint_names(space: Space) -> list[str]:
    """The constraint keys every trial of ``space`` reports (the same for all, as the GP sampler requires)."""
    limits = space.file.constraints
    return ["valid", "buffers"] + (["area"] if limits.area_mm2_max else []) + (["sram"] if limits.sram_kb_max else [])


class Evaluator:
    """Evaluates points of one space (holds its trace and accuracy table; see the module docstring)."""

    def __init__(self, space: Space):
        self.space = space
        self.names = constraint_names(space)
        self.table = AccuracyTable(space.file.accuracy, space.method, space.accuracy_layers) \
            if space.needs_accuracy else None
        self._trace = space.base_trace() if space.needs_sim and not space.computed_trace else None
        self.context = space.objective_context()

    def _infeasible(self, feas: Feasibility, start: float) -> TrialOutcome:
        values = {n: feas.values.get(n, 0.0) for n in self.names}
        return TrialOutcome(None, values, False, reasons=list(feas.reasons), seconds=time.perf_counter() - start)

    def _trace_for(self, params: dict[str, Any]) -> Any:
        if self._trace is not None:
            return self._trace
        s = self.space
        return method_trace(s.file.accuracy, s.method, params, s.shape.causal)

    def _measure(self, candidate: Any) -> Measured:
        summary = None
        if self.space.needs_sim:
            trace = self._trace_for(candidate.method_params)
            summary = simulate(candidate.arch, trace, self.space.shape).summary()
        nll = self.table.nll(candidate.method_params) if self.table is not None else None
        return Measured(summary=summary, method_params=candidate.method_params, nll=nll)

    def __call__(self, values: dict[str, Any]) -> TrialOutcome:
        start = time.perf_counter()
        try:
            candidate = self.space.candidate(values)
        except (SparseAttnError, ValueError) as err:
            return self._infeasible(Feasibility({"valid": 1.0}, [f"refused by the schema: {err}"]), start)
        feas = self.space.feasibility(candidate)
        feas.values["valid"] = 0.0
        if not feas.feasible:
            return self._infeasible(feas, start)
        try:
            measured = self._measure(candidate)
            objectives = [obj.fn(measured, spec, self.context) for obj, spec in self.space.objectives]
        except (SparseAttnError, ValueError) as err:
            return TrialOutcome(None, {n: feas.values.get(n, 0.0) for n in self.names}, True, error=str(err),
                                seconds=time.perf_counter() - start)
        metrics = {**(measured.summary or {}), **measured.extra}
        if measured.nll is not None:
            metrics["nll"] = measured.nll
        return TrialOutcome(objectives, {n: feas.values.get(n, 0.0) for n in self.names}, True, metrics=metrics,
                            seconds=time.perf_counter() - start)


@lru_cache(maxsize=4)
def _evaluator(space_json: str) -> Evaluator:
    return Evaluator(resolve(SpaceFile.model_validate_json(space_json), check_values=False,
                             check_constraints=False))


def evaluate_point(space_json: str, values: dict[str, Any]) -> TrialOutcome:
    """Evaluate decoded ``values`` of the space given as :class:`SpaceFile` JSON (the worker entry point)."""
    return _evaluator(space_json)(values)
