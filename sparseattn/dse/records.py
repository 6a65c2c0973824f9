"""What a study stored, read back: one :class:`TrialRecord` per trial (from Optuna's trial and the user attributes
the study writes), the feasible best point(s) and the Pareto front.

User attributes of a trial (JSON): ``driver`` (who asked it: resume), and, once told, ``dse``: ``point`` (the
decoded values), ``feasible``, ``reasons``, ``objectives`` (the measured values, ``null`` when not measured -- an
infeasible trial is told the worst feasible values so far, so the sampler sees a bad region, but its record keeps
``null``), ``constraints``, ``metrics``, ``seconds``, ``error``, ``duplicate_of`` (a point seen before is not
evaluated again). One attribute, so a trial costs one storage write for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .evaluate import TrialOutcome


@dataclass
class TrialRecord:
    """One trial as the study recorded it (see the module docstring)."""

    number: int
    state: str
    point: dict[str, Any]
    objectives: dict[str, float] | None
    feasible: bool
    reasons: list[str] = field(default_factory=list)
    constraints: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    duplicate_of: int | None = None

    @property
    def ok(self) -> bool:
        """Finished, feasible and measured."""
        return self.state == "COMPLETE" and self.feasible and self.objectives is not None

    def outcome(self) -> TrialOutcome:
        """The outcome this record stores (to answer a repeated point without evaluating it)."""
        values = list(self.objectives.values()) if self.objectives is not None else None
        return TrialOutcome(values, dict(self.constraints), self.feasible, list(self.reasons), dict(self.metrics),
                            self.error, 0.0)


def record(trial: FrozenTrial, objective_names: list[str]) -> TrialRecord:
    a = trial.user_attrs["dse"]
    values = a.get("objectives")
    return TrialRecord(
        number=trial.number, state=trial.state.name, point=dict(a.get("point", {})),
        objectives=dict(zip(objective_names, values, strict=True)) if values is not None else None,
        feasible=bool(a.get("feasible", False)), reasons=list(a.get("reasons", [])),
        constraints=dict(a.get("constraints", {})), metrics=dict(a.get("metrics", {})),
        seconds=float(a.get("seconds", 0.0)), error=a.get("error"), duplicate_of=a.get("duplicate_of"),
    )


def records(study: optuna.Study, objective_names: list[str]) -> list[TrialRecord]:
    """Every told trial of ``study`` (running and queued trials have no record yet)."""
    return [record(t, objective_names) for t in study.get_trials(deepcopy=False)
            if "dse" in t.user_attrs and t.state != TrialState.WAITING]


def dominates(a: list[float], b: list[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_front(recs: list[TrialRecord]) -> list[TrialRecord]:
    """The feasible non-dominated records (all objectives minimised); of points with equal objectives, the
    earliest only."""
    seen: set[tuple[float, ...]] = set()
    ok = []
    for r in sorted((r for r in recs if r.ok and r.duplicate_of is None), key=lambda r: r.number):
        key = tuple(r.objectives.values())
        if key not in seen:
            seen.add(key)
            ok.append(r)
    vals = [list(r.objectives.values()) for r in ok]
    return [r for r, v in zip(ok, vals, strict=True) if not any(dominates(w, v) for w in vals if w is not v)]


def best(recs: list[TrialRecord]) -> list[TrialRecord]:
    """The best feasible record for one objective (earliest on ties), or the Pareto front for several."""
    ok = [r for r in recs if r.ok and r.duplicate_of is None]
    if not ok:
        return []
    if len(next(iter(ok)).objectives) == 1:
        return [min(ok, key=lambda r: (next(iter(r.objectives.values())), r.number))]
    return sorted(pareto_front(recs), key=lambda r: list(r.objectives.values()))
